"""The two deploy descriptions of the decision function, read as the tests compare them with the
code package: template.yml (ROS, `ALIYUN::FC3::Function` + `ALIYUN::FC3::Trigger`) and s.yaml
(Serverless Devs, component fc3). ROS short-form tags (`!Ref`, `!GetAtt`, ...) are read as the
long form's one-key mapping, so either spelling parses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import REPO

TEMPLATE = REPO / "template.yml"
S_YAML = REPO / "s.yaml"
# The agentless reconcile function: its own code package, so apart from the decide functions.
RECONCILE_HANDLER = "index.reconcile"


class _RosLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into `{"Ref": X}` and `!GetAtt a.b` into
    `{"Fn::GetAtt": ...}`, as ROS reads its short-form tags."""


def _ros_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    key = tag_suffix if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return {key: value}


_RosLoader.add_multi_constructor("!", _ros_tag)


def read_yaml(path: Path) -> dict[str, Any]:
    # A SafeLoader subclass: only the ROS tags are added to what it constructs.
    loaded = yaml.load(path.read_text(), Loader=_RosLoader)
    assert isinstance(loaded, dict), path
    return loaded


@dataclass(frozen=True)
class DeployedFunction:
    """One function as a deploy file describes it (property names normalised)."""

    source: str  # "template.yml" or "s.yaml"
    name: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, str]
    code: Any
    http_trigger: dict[str, Any] | None = field(default=None)  # authType, methods


def ros_functions() -> list[DeployedFunction]:
    """template.yml's ALIYUN::FC3::Function resources, each with its ALIYUN::FC3::Trigger."""
    template = read_yaml(TEMPLATE)
    assert template["ROSTemplateFormatVersion"] == "2015-09-01"
    assert "Transform" not in template, "Funcraft's Transform is unmaintained"
    resources = template["Resources"]
    triggers: dict[str, dict[str, Any]] = {}
    for resource in resources.values():
        if (
            resource["Type"] == "ALIYUN::FC3::Trigger"
            and resource["Properties"]["TriggerType"] == "http"
        ):
            target = resource["Properties"]["FunctionName"]["Fn::GetAtt"]
            assert target[1] == "FunctionName", target
            triggers[target[0]] = resource["Properties"]
    found = []
    for logical, resource in resources.items():
        if resource["Type"] != "ALIYUN::FC3::Function":
            continue
        props = resource["Properties"]
        if props["Handler"] == RECONCILE_HANDLER:
            continue
        trigger = triggers.get(logical)
        if trigger is not None:
            assert trigger["TriggerType"] == "http"
        found.append(
            DeployedFunction(
                source="template.yml",
                name=props["FunctionName"],
                handler=props["Handler"],
                runtime=props["Runtime"],
                memory_mb=props["MemorySize"],
                timeout_seconds=props["Timeout"],
                environment=props["EnvironmentVariables"],
                code=props["Code"],
                http_trigger=None if trigger is None else trigger["TriggerConfig"],
            )
        )
    assert found, "template.yml declares no ALIYUN::FC3::Function"
    return found


def s_yaml_functions() -> list[DeployedFunction]:
    """s.yaml's fc3 resources with their http triggers."""
    config = read_yaml(S_YAML)
    assert str(config["edition"]) == "3.0.0"
    found = []
    for resource in config["resources"].values():
        assert resource["component"] == "fc3"
        props = resource["props"]
        if props["handler"] == RECONCILE_HANDLER:
            continue
        http = [t for t in props.get("triggers") or () if t["triggerType"] == "http"]
        assert len(http) <= 1
        found.append(
            DeployedFunction(
                source="s.yaml",
                name=props["functionName"],
                handler=props["handler"],
                runtime=props["runtime"],
                memory_mb=props["memorySize"],
                timeout_seconds=props["timeout"],
                environment=props["environmentVariables"],
                code=props["code"],
                http_trigger=http[0]["triggerConfig"] if http else None,
            )
        )
    return found


def deployed_functions() -> list[DeployedFunction]:
    """Every function both files deploy."""
    return ros_functions() + s_yaml_functions()


@dataclass(frozen=True)
class DeployedReconcile:
    """The reconcile function as one deploy file describes it, its triggers by type."""

    source: str
    handler: str
    runtime: str
    code: Any
    environment: dict[str, str]
    triggers: dict[str, dict[str, Any]]  # triggerType -> triggerConfig


def ros_reconcile() -> tuple[DeployedReconcile, dict[str, Any]]:
    """template.yml's reconcile function with its triggers, and its role's resource."""
    resources = read_yaml(TEMPLATE)["Resources"]
    (logical,) = [
        name
        for name, r in resources.items()
        if r["Type"] == "ALIYUN::FC3::Function" and r["Properties"]["Handler"] == RECONCILE_HANDLER
    ]
    props = resources[logical]["Properties"]
    triggers = {
        r["Properties"]["TriggerType"]: r["Properties"]["TriggerConfig"]
        for r in resources.values()
        if r["Type"] == "ALIYUN::FC3::Trigger"
        and r["Properties"]["FunctionName"] == {"Fn::GetAtt": [logical, "FunctionName"]}
    }
    role = props["Role"]["Fn::GetAtt"]
    assert role[1] == "Arn", role
    deployed = DeployedReconcile(
        "template.yml",
        props["Handler"],
        props["Runtime"],
        props["Code"],
        props["EnvironmentVariables"],
        triggers,
    )
    return deployed, resources[role[0]]


def s_yaml_reconcile() -> DeployedReconcile:
    """s.yaml's reconcile resource with its triggers."""
    (props,) = [
        r["props"]
        for r in read_yaml(S_YAML)["resources"].values()
        if r["props"]["handler"] == RECONCILE_HANDLER
    ]
    return DeployedReconcile(
        "s.yaml",
        props["handler"],
        props["runtime"],
        props["code"],
        props["environmentVariables"],
        {t["triggerType"]: t["triggerConfig"] for t in props["triggers"]},
    )
