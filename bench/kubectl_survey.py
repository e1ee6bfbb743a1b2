"""kubectl survey of the simulated API server: 181 everyday kubectl commands against
`python -m agent sim serve --scenario seed`, each checked as kube-apiserver would answer it, and
classed as

- works: the exit code, the output and the cluster's state afterwards are what a real cluster
  gives (a dry run works only if nothing changed; a refusal works if kube refuses the same way);
- degraded: it runs and exits 0, but shows less than a real cluster would (no Events from the
  control plane, no node Lease);
- fails, resource not served: the command needs a resource or subresource the simulator does not
  serve (deployments, services, pods/log, metrics, authorization reviews);
- fails, wrong behaviour: a served resource answers differently from kube-apiserver.

Prints a Markdown table (command, expected, class, note) and the counts.

    python bench/kubectl_survey.py              # the whole table
    python bench/kubectl_survey.py --only drain # rows whose command contains "drain"

Rows run in order against one server, and later rows rely on what earlier ones made (pods
named survey-*); `drain` runs last because it evicts the Ray head, which nothing recreates yet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKS = "works"
DEGRADED = "degraded"
UNSERVED = "fails: resource not served"
WRONG = "fails: wrong behaviour"
COMMAND_SECONDS = 60.0


@dataclass
class Run:
    """One finished command: exit code and output."""

    rc: int
    out: str
    err: str


@dataclass
class Cluster:
    """The served cluster: where kubectl finds it, the seed's objects, and the manifests dir."""

    kubeconfig: Path
    home: Path
    files: Path
    names: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        # HOME holds kubectl's discovery cache, fresh for each survey
        env.update(KUBECONFIG=str(self.kubeconfig), HOME=str(self.home), NO_PROXY="127.0.0.1")
        return env

    def fill(self, text: str) -> str:
        """`text` with {head}, {worker}, {node} and {dir} filled in."""
        return text.format(**self.names, dir=self.files)

    def sh(self, command: str, timeout: float = COMMAND_SECONDS) -> Run:
        """A shell command line (kubectl and pipes), its placeholders filled in."""
        line = self.fill(command)
        try:
            done = subprocess.run(
                ["bash", "-c", line],
                capture_output=True,
                text=True,
                env=self.env(),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return Run(124, str(expired.stdout or ""), f"timed out after {timeout:g} s")
        return Run(done.returncode, done.stdout, done.stderr)

    def get(self, ref: str, namespace: str = "default") -> dict[str, Any] | None:
        """The live object (`kind/name`, placeholders allowed) as JSON, or None when absent."""
        run = self.sh(f"kubectl get {ref} -n {namespace} -o json --ignore-not-found")
        if run.rc != 0:
            raise RuntimeError(f"get {ref}: {run.err.strip()}")
        return json.loads(run.out) if run.out.strip() else None


# -- checks: each says what it expects (the table's column) and returns (passed, note) --------

Verdict = tuple[str, str]  # (class, note)


@dataclass
class Part:
    """One expectation: what it expects (the table's column) and its test."""

    expect: str
    test: Callable[[Run, Cluster, Any], str | None]  # None when met, else what was wrong
    degrades: bool = False  # unmet means degraded, not failed (when the command exited 0)
    before: Callable[[Cluster], Any] | None = None  # state captured before the command


@dataclass
class Check:
    """Expectations all to be met; `a & b` combines two checks."""

    parts: list[Part]

    @property
    def expect(self) -> str:
        return "; ".join(part.expect for part in self.parts)

    def __and__(self, other: Check) -> Check:
        return Check([*self.parts, *other.parts])


def check(expect: str, test: Callable[[Run, Cluster, Any], str | None], **kw: Any) -> Check:
    return Check([Part(expect, test, **kw)])


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:140] if lines else ""


def ok(*needles: str) -> Check:
    """Exit 0 and every needle in stdout."""

    def test(run: Run, cluster: Cluster, _b: Any) -> str | None:
        if run.rc != 0:
            return f"exit {run.rc}: {first_line(run.err) or first_line(run.out)}"
        missing = [cluster.fill(n) for n in needles if cluster.fill(n) not in run.out]
        return f"output lacks {missing}" if missing else None

    shown = ", ".join(repr(n) for n in needles)
    return check(f"exit 0, prints {shown}" if needles else "exit 0", test)


def refused(*needles: str) -> Check:
    """A non-zero exit whose message has every needle: kube refuses the same way."""

    def test(run: Run, cluster: Cluster, _b: Any) -> str | None:
        if run.rc == 0:
            return "exit 0, expected a refusal"
        text = run.out + run.err
        missing = [cluster.fill(n) for n in needles if cluster.fill(n) not in text]
        return f"error lacks {missing}: {first_line(run.err)}" if missing else None

    return check(f"refused with {', '.join(repr(n) for n in needles)}", test)


def timed_out_with(*needles: str) -> Check:
    """A watch cut by `timeout`: exit 124 with the needles streamed before it."""

    def test(run: Run, cluster: Cluster, _b: Any) -> str | None:
        if run.rc != 124:
            return f"exit {run.rc}: {first_line(run.err)}"
        missing = [cluster.fill(n) for n in needles if cluster.fill(n) not in run.out]
        return f"stream lacks {missing}" if missing else None

    return check(f"streams {', '.join(repr(n) for n in needles)} until cut", test)


def richer(*needles: str) -> Check:
    """Output a real cluster has (control-plane Events, Leases): missing means degraded."""

    def test(run: Run, cluster: Cluster, _b: Any) -> str | None:
        missing = [cluster.fill(n) for n in needles if cluster.fill(n) not in run.out]
        return f"no {missing} (a real cluster shows them)" if missing else None

    return check(f"shows {', '.join(repr(n) for n in needles)}", test, degrades=True)


def state(expect: str, predicate: Callable[[Cluster], bool]) -> Check:
    """A condition on the cluster after the command."""

    def test(_r: Run, cluster: Cluster, _b: Any) -> str | None:
        return None if predicate(cluster) else f"afterwards not: {cluster.fill(expect)}"

    return check(expect, test)


def exists(ref: str, namespace: str = "default") -> Check:
    return state(f"{ref} exists", lambda c: c.get(ref, namespace) is not None)


def absent(ref: str, namespace: str = "default", *, within: float = 0.0) -> Check:
    def gone(cluster: Cluster) -> bool:
        deadline = time.monotonic() + within
        while cluster.get(ref, namespace) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    return state(f"{ref} absent", gone)


def field_is(ref: str, path: str, value: Any, namespace: str = "default") -> Check:
    """`path` (dotted, list indexes as numbers) of the live object equals `value`."""

    def holds(cluster: Cluster) -> bool:
        return dig(cluster.get(ref, namespace), path) == value

    return state(f"{ref} {path} = {value!r}", holds)


def dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        if isinstance(obj, list):
            obj = obj[int(part)] if part.isdigit() and int(part) < len(obj) else None
        else:
            obj = obj.get(part)
    return obj


def unchanged(*refs: str, namespace: str = "default") -> Check:
    """Each object, present before the command, exactly as it was: same resourceVersion, no new
    deletionTimestamp. What a dry run must leave."""

    def capture(cluster: Cluster) -> Any:
        return [version_of(cluster.get(ref, namespace)) for ref in refs]

    def test(_r: Run, cluster: Cluster, before: Any) -> str | None:
        missing = [ref for ref, version in zip(refs, before, strict=True) if version is None]
        if missing:  # nothing to compare: the check would pass vacuously
            return f"missing before the command: {missing}"
        after = [version_of(cluster.get(ref, namespace)) for ref in refs]
        changed = [cluster.fill(r) for r, b, a in zip(refs, before, after, strict=True) if b != a]
        return f"changed: {changed}" if changed else None

    return check(f"{', '.join(refs)} unchanged", test, before=capture)


def version_of(obj: dict[str, Any] | None) -> Any:
    if obj is None:
        return None
    metadata = obj["metadata"]
    return (metadata.get("resourceVersion"), metadata.get("deletionTimestamp"))


def labelled(selector: str, expect: Callable[[list[dict[str, Any]]], bool], text: str) -> Check:
    def holds(cluster: Cluster) -> bool:
        run = cluster.sh(f"kubectl get pods -l {shlex.quote(selector)} -o json")
        return run.rc == 0 and expect(json.loads(run.out)["items"])

    return state(text, holds)


# -- the rows ---------------------------------------------------------------------------------


@dataclass
class Row:
    command: str
    check: Check
    served: bool = True  # False: needs a resource or subresource the simulator does not serve
    setup: str = ""  # run first, unjudged: the objects this row needs, made afresh


def rows() -> list[Row]:
    """The survey, in the order it runs (later rows use what earlier ones made)."""
    return [
        *discovery_rows(),
        *read_rows(),
        *unserved_rows(),
        *describe_and_explain_rows(),
        *create_rows(),
        *label_and_patch_rows(),
        *namespace_and_policy_rows(),
        *delete_and_wait_rows(),
        *node_rows(),
    ]


def discovery_rows() -> list[Row]:
    return [
        Row("kubectl version", ok("Client Version", "Server Version: v1.")),
        Row("kubectl version -o json", ok('"serverVersion"', '"gitVersion"')),
        Row("kubectl api-versions", ok("v1", "policy/v1", "coordination.k8s.io/v1")),
        Row("kubectl api-resources", ok("pods", "nodes", "events", "leases")),
        Row("kubectl api-resources -o wide | grep -w ^pods", ok("deletecollection", "all")),
        Row("kubectl api-resources --namespaced=false -o name", ok("nodes", "namespaces")),
        Row("kubectl api-resources --api-group=policy -o name", ok("poddisruptionbudgets.policy")),
        Row("kubectl api-resources --verbs=list -o name", ok("pods", "leases.coordination.k8s.io")),
        Row("kubectl api-resources --categories=all -o name", ok("pods")),
        Row("kubectl cluster-info", ok("is running at"), served=False),
        Row("kubectl get --raw /version", ok('"gitVersion"')),
        Row("kubectl get --raw /version/", ok('"gitVersion"')),
        Row("kubectl get --raw /healthz", ok("ok")),
        Row("kubectl get --raw /healthz/", ok("ok")),
        Row("kubectl get --raw /livez", ok("ok")),
        Row("kubectl get --raw /readyz", ok("ok")),
        Row("kubectl get --raw /openapi/v2 | head -c 300", ok('"swagger"')),
        Row("kubectl get --raw /openapi/v3", ok('"api/v1"')),
        Row("kubectl get --raw '/api/v1/namespaces/default/pods?limit=1'", ok('"continue"')),
        Row(
            "kubectl get --raw '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1'",
            ok('"ADDED"'),
        ),
        Row("kubectl config view --minify", ok("server: http://127.0.0.1:")),
        Row("kubectl auth can-i list pods", ok("yes"), served=False),
        Row("kubectl auth whoami", ok("Username"), served=False),
    ]


def read_rows() -> list[Row]:
    return [
        Row("kubectl get nodes", ok("{node}", "Ready")),
        Row("kubectl get nodes -o wide", ok("{node}", "INTERNAL-IP")),
        Row("kubectl get nodes --show-labels", ok("node.kubernetes.io/instance-type=")),
        Row(
            "kubectl get nodes -l node-role.ray-ack-scaler.io/system=true -o name",
            ok("node/{node}"),
        ),
        Row("kubectl get node {node} -o yaml", ok("allocatable:", "kind: Node")),
        Row("kubectl get node {node} -o jsonpath='{{.status.allocatable.cpu}}'", ok()),
        Row(
            "kubectl get nodes -o custom-columns=NAME:.metadata.name,CPU:.status.capacity.cpu",
            ok("{node}"),
        ),
        Row("kubectl get nodes --sort-by=.metadata.creationTimestamp", ok("{node}")),
        Row("kubectl get node {node} --subresource=status", ok("{node}")),
        Row("kubectl get no", ok("{node}")),
        Row("kubectl get pods", ok("{head}", "Running", "Pending")),
        Row("kubectl get pods -A", ok("NAMESPACE", "{head}")),
        Row("kubectl get pods -o wide", ok("{head}", "{node}")),
        Row("kubectl get pods -n kube-system", ok()),
        Row("kubectl get pods --show-labels", ok("ray.io/node-type=head")),
        Row("kubectl get pods -l ray.io/node-type=worker -o name", ok("pod/{worker}")),
        Row("kubectl get pods -l 'ray.io/node-type in (head)' -o name", ok("pod/{head}")),
        Row("kubectl get pods --field-selector=status.phase=Pending -o name", ok("pod/{worker}")),
        Row("kubectl get pods --field-selector=spec.nodeName={node} -o name", ok("pod/{head}")),
        Row("kubectl get pods -o json", ok('"kind": "List"', "{head}")),
        Row("kubectl get pods -o yaml", ok("kind: List", "{head}")),
        Row("kubectl get pods -o jsonpath='{{.items[*].metadata.name}}'", ok("{head}")),
        Row("kubectl get pod {head} -o go-template='{{{{.metadata.name}}}}'", ok("{head}")),
        Row("kubectl get pods --sort-by=.metadata.creationTimestamp", ok("{head}")),
        Row("kubectl get pods --chunk-size=2", ok("{head}", "{worker}")),
        Row("kubectl get pods --no-headers", ok("{head}")),
        Row("kubectl get pod {head} -o yaml", ok("kind: Pod", "nodeName: {node}")),
        Row(
            "kubectl get pod {worker} -o jsonpath="
            "'{{.status.conditions[?(@.type==\"PodScheduled\")].reason}}'",
            ok("Unschedulable"),
        ),
        Row("kubectl get po,no -o name", ok("pod/{head}", "node/{node}")),
        Row("timeout 3 kubectl get pods -w", timed_out_with("{head}")),
        Row("timeout 3 kubectl get nodes -w", timed_out_with("{node}")),
        Row("timeout 3 kubectl get pods -A -w --output-watch-events", timed_out_with("ADDED")),
        Row("kubectl get namespaces", ok("default", "kube-system", "kube-node-lease")),
        Row("kubectl get ns default -o yaml", ok("phase: Active")),
        Row("kubectl get events", ok() & richer("FailedScheduling")),
        Row("kubectl get events -A", ok() & richer("FailedScheduling")),
        Row(
            "kubectl get events --field-selector reason=FailedScheduling",
            ok() & richer("{worker}"),
        ),
        Row("kubectl get events --sort-by=.lastTimestamp", ok() & richer("Scheduled")),
        Row("kubectl get ev -o wide", ok() & richer("default-scheduler")),
        Row("kubectl events", ok() & richer("FailedScheduling")),
        Row("kubectl events --for pod/{worker}", ok() & richer("FailedScheduling")),
        Row("kubectl events --types=Warning -A", ok() & richer("FailedScheduling")),
        Row("kubectl get leases -A", ok()),
        Row("kubectl get leases -n kube-node-lease", ok() & richer("{node}")),
        Row("kubectl get pdb -A", ok()),
        # kubectl prefixes names with their kind only when several kinds are listed
        Row("kubectl get all", ok("{head}")),
        Row("kubectl get all -A", ok("{head}")),
    ]


def unserved_rows() -> list[Row]:
    """Everyday commands on kinds the simulator does not serve: kube answers them."""
    gets = [
        "deployments", "services", "configmaps", "secrets", "serviceaccounts", "replicasets",
        "statefulsets", "daemonsets -A", "jobs", "ingress", "pvc", "rayclusters", "crd",
    ]  # fmt: skip
    return [
        *(Row(f"kubectl get {kind}", ok(), served=False) for kind in gets),
        Row("kubectl create deployment survey-web --image=nginx", ok("created"), served=False),
        Row("kubectl scale deployment survey-web --replicas=2", ok("scaled"), served=False),
        Row("kubectl rollout status deployment/survey-web --timeout=5s", ok(), served=False),
        Row("kubectl rollout restart deployment/survey-web", ok("restarted"), served=False),
        Row(
            "kubectl expose pod {head} --port=8265 --name=survey-dash",
            ok("exposed"),
            served=False,
        ),
        Row("kubectl create configmap survey-cm --from-literal=a=b", ok("created"), served=False),
        Row("kubectl create job survey-job --image=busybox", ok("created"), served=False),
        Row("kubectl create token default", ok("ey"), served=False),
        Row("kubectl top nodes", ok("{node}"), served=False),
        Row("kubectl top pods", ok("{head}"), served=False),
        Row("kubectl logs {head}", ok(), served=False),
        Row("kubectl logs -l ray.io/node-type=head --tail=5", ok(), served=False),
        Row("kubectl exec {head} -- true", ok(), served=False),
        Row("kubectl cp {head}:/etc/hostname {dir}/hostname", ok(), served=False),
        Row("timeout 5 kubectl port-forward pod/{head} 18265:8265", ok(), served=False),
        Row("kubectl debug {head} --image=busybox -- true", ok(), served=False),
        Row("kubectl cluster-info dump --output-directory={dir}/dump", ok(), served=False),
    ]


def describe_and_explain_rows() -> list[Row]:
    return [
        Row(
            "kubectl describe pod {worker}",
            ok("Status:", "Pending") & richer("FailedScheduling"),
        ),
        Row("kubectl describe pod {head}", ok("Node:", "{node}") & richer("Scheduled", "Started")),
        Row("kubectl describe pods -l ray.io/node-type=head", ok("{head}")),
        Row(
            "kubectl describe node {node}",
            ok("Allocated resources:") & richer("HolderIdentity:"),
        ),
        Row("kubectl describe ns default", ok("Status:", "Active")),
        Row("kubectl explain pods", ok("KIND:", "Pod")),
        Row("kubectl explain pod.spec.tolerations", ok("tolerationSeconds")),
        Row("kubectl explain node.spec.taints", ok("effect")),
        Row("kubectl explain pod.spec.containers.resources", ok("requests")),
        Row("kubectl explain poddisruptionbudget.spec --api-version=policy/v1", ok("minAvailable")),
    ]


def pod_manifest(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "survey", **labels}},
        "spec": {"containers": [{"name": name, "image": "busybox"}]},
    }


def write_manifests(files: Path) -> None:
    """The files `-f` rows read (JSON is YAML, so kubectl reads them as written)."""
    manifests: dict[str, Any] = {
        "survey-b.json": pod_manifest("survey-b"),
        "survey-e.json": pod_manifest("survey-e"),
        "survey-c.json": pod_manifest("survey-c"),
        "survey-c2.json": pod_manifest("survey-c", stage="two"),
        "survey-c3.json": pod_manifest("survey-c", stage="three"),
        "survey-d.json": pod_manifest("survey-d"),
        "list.json": {
            "apiVersion": "v1",
            "kind": "List",
            "items": [pod_manifest("survey-l1"), pod_manifest("survey-l2")],
        },
        "many/one.json": pod_manifest("survey-m1"),
        "many/two.json": pod_manifest("survey-m2"),
        "lease.json": {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "survey-lease"},
            "spec": {"holderIdentity": "survey", "leaseDurationSeconds": 15},
        },
    }
    for name, body in manifests.items():
        path = files / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2))


def run_pod(name: str, *labels: str, app: str = "survey", ready: bool = True) -> str:
    """Setup: the pod `name` (busybox, labelled app=`app` and `labels`), made unless it exists,
    and by default waited for until Ready, so the kubelet no longer changes it under a row."""
    flags = ",".join((f"app={app}", *labels))
    # doubled braces: the command line is a format string ({node}, {dir}, ...) before bash
    made = (
        f"{{{{ kubectl get pod {name} || kubectl run {name} --image=busybox --labels={flags}; }}}}"
    )
    if ready:
        made += f" && kubectl wait --for=condition=Ready pod/{name} --timeout=60s"
    return made


def last_applied(ref: str) -> Callable[[Cluster], bool]:
    def holds(cluster: Cluster) -> bool:
        annotations = dig(cluster.get(ref), "metadata.annotations") or {}
        return "kubectl.kubernetes.io/last-applied-configuration" in annotations

    return holds


def create_rows() -> list[Row]:
    c = "pod/survey-c"
    return [
        Row(
            "kubectl run survey-a --image=busybox --labels=app=survey,tier=web",
            ok("created") & exists("pod/survey-a"),
        ),
        Row(
            "kubectl run survey-dry --image=busybox --dry-run=server",
            ok("(server dry run)") & absent("pod/survey-dry"),
        ),
        Row(
            "kubectl run survey-cli --image=busybox --dry-run=client -o yaml",
            ok("kind: Pod") & absent("pod/survey-cli"),
        ),
        Row("kubectl create -f {dir}/survey-b.json", ok("created") & exists("pod/survey-b")),
        Row("kubectl create -f {dir}/survey-b.json", refused("AlreadyExists")),
        Row(
            "kubectl create -f {dir}/survey-e.json --dry-run=server",
            ok() & absent("pod/survey-e"),
        ),
        Row("kubectl apply -f {dir}/survey-c.json", ok("created") & exists(c)),
        Row("kubectl apply -f {dir}/survey-c.json", ok("unchanged")),
        Row(
            "kubectl apply -f {dir}/survey-c2.json",
            ok("configured") & field_is(c, "metadata.labels.stage", "two"),
        ),
        # The pod settles first: the kubelet's status writes while it starts (Pulling, Running)
        # move its resourceVersion, which `unchanged` would blame on the command.
        Row(f"kubectl wait --for=condition=Ready {c} --timeout=60s", ok("condition met")),
        Row(
            "kubectl diff -f {dir}/survey-c3.json; test $? -eq 1", ok("stage: three") & unchanged(c)
        ),
        Row("kubectl apply -f {dir}/survey-c3.json --dry-run=server", ok() & unchanged(c)),
        Row(
            "kubectl apply --server-side -f {dir}/survey-d.json",
            ok("serverside-applied") & exists("pod/survey-d"),
        ),
        Row(
            "kubectl apply -f {dir}/list.json",
            ok() & exists("pod/survey-l1") & exists("pod/survey-l2"),
        ),
        Row(
            "kubectl create -f {dir}/many/",
            ok() & exists("pod/survey-m1") & exists("pod/survey-m2"),
        ),
        Row(
            "kubectl get pods -l app=survey -o yaml | kubectl apply -f -",
            # live objects lack the last-applied annotation: apply adds it (a change, as on kube)
            ok("pod/survey-b")
            & state(
                "pod/survey-b has kubectl's last-applied annotation", last_applied("pod/survey-b")
            ),
        ),
        Row(
            "kubectl get pod survey-r -o yaml"
            " | sed 's/image: busybox$/image: busybox:1.36/' | kubectl replace -f -",
            ok("replaced") & field_is("pod/survey-r", "spec.containers.0.image", "busybox:1.36"),
            setup=run_pod("survey-r"),
        ),
        Row(
            "kubectl replace --force -f {dir}/survey-b.json",
            ok("replaced") & exists("pod/survey-b"),
        ),
        Row("kubectl apply -f {dir}/lease.json", ok("created") & exists("lease/survey-lease")),
        Row("kubectl get lease survey-lease -o yaml", ok("holderIdentity: survey")),
    ]


def label_and_patch_rows() -> list[Row]:
    p = "pod/survey-p"
    fresh = run_pod("survey-p", "tier=web")

    def patch(flags: str, body: str) -> str:
        return f"kubectl patch pod survey-p {flags}-p '{body}'"

    return [
        Row(
            "kubectl label pod survey-p color=blue",
            ok("labeled") & field_is(p, "metadata.labels.color", "blue"),
            setup=fresh,
        ),
        Row(
            "kubectl label pod survey-p color=red --overwrite",
            ok() & field_is(p, "metadata.labels.color", "red"),
            setup=fresh,
        ),
        Row(
            "kubectl label pod survey-p color=green",
            refused("already has a value") & field_is(p, "metadata.labels.color", "red"),
            setup=fresh,
        ),
        Row(
            "kubectl label pod survey-p color-",
            ok() & field_is(p, "metadata.labels.color", None),
            setup=fresh,
        ),
        Row(
            "kubectl label pod survey-p dry=run --dry-run=server", ok() & unchanged(p), setup=fresh
        ),
        Row(
            "kubectl label pods -l app=survey batch=one",
            ok()
            & labelled(
                "app=survey",
                lambda pods: (
                    bool(pods) and all(p["metadata"]["labels"].get("batch") == "one" for p in pods)
                ),
                "every app=survey pod has batch=one",
            ),
        ),
        Row(
            "kubectl annotate pod survey-p note=hello",
            ok("annotated") & field_is(p, "metadata.annotations.note", "hello"),
            setup=fresh,
        ),
        Row(
            "kubectl annotate pod survey-p note=dry --overwrite --dry-run=server",
            ok() & unchanged(p),
            setup=fresh,
        ),
        Row(
            "kubectl annotate pod survey-p note-",
            ok() & field_is(p, "metadata.annotations.note", None),
            setup=fresh,
        ),
        Row(
            patch("", '{{"metadata":{{"labels":{{"patched":"strategic"}}}}}}'),
            ok("patched") & field_is(p, "metadata.labels.patched", "strategic"),
            setup=fresh,
        ),
        Row(
            patch("--type=merge ", '{{"metadata":{{"labels":{{"patched":"merge"}}}}}}'),
            ok("patched") & field_is(p, "metadata.labels.patched", "merge"),
            setup=fresh,
        ),
        Row(
            patch(
                "--type=json ",
                '[{{"op":"replace","path":"/metadata/labels/patched","value":"json"}}]',
            ),
            ok("patched") & field_is(p, "metadata.labels.patched", "json"),
            setup=fresh,
        ),
        Row(
            patch(
                "--type=json ", '[{{"op":"test","path":"/metadata/labels/patched","value":"no"}}]'
            ),
            refused("test") & unchanged(p),
            setup=fresh,
        ),
        Row(
            patch("", '{{"spec":{{"containers":[{{"name":"survey-p","image":"busybox:1.37"}}]}}}}'),
            ok("patched") & field_is(p, "spec.containers.0.image", "busybox:1.37"),
            setup=fresh,
        ),
        Row(
            patch("--dry-run=server ", '{{"metadata":{{"labels":{{"dry":"patch"}}}}}}'),
            ok() & unchanged(p),
            setup=fresh,
        ),
        Row(
            "kubectl set image pod/survey-p survey-p=busybox:1.36",
            ok("image updated") & field_is(p, "spec.containers.0.image", "busybox:1.36"),
            setup=fresh,
        ),
        Row(
            "KUBE_EDITOR=\"sed -i 's/tier: web/tier: edited/'\" kubectl edit pod survey-p",
            ok("edited") & field_is(p, "metadata.labels.tier", "edited"),
            setup=fresh,
        ),
        Row("kubectl label node {node} survey=yes", ok("labeled")),
        Row("kubectl label node {node} survey-", ok("unlabeled")),
    ]


def namespace_and_policy_rows() -> list[Row]:
    return [
        Row("kubectl create namespace survey-ns", ok("created") & exists("namespace/survey-ns")),
        Row(
            "kubectl create namespace survey-dry --dry-run=server",
            ok() & absent("namespace/survey-dry"),
        ),
        Row(
            "kubectl delete namespace survey-ns --wait=false"
            " && kubectl get ns survey-ns -o jsonpath='{{.status.phase}}'",
            ok("Terminating"),
            setup="kubectl run survey-n --image=busybox -n survey-ns"
            " && kubectl wait --for=condition=Ready pod/survey-n -n survey-ns --timeout=30s",
        ),
        Row(
            "kubectl wait --for=delete namespace/survey-ns --timeout=60s",
            ok() & absent("namespace/survey-ns"),
        ),
        Row(
            "kubectl delete namespace survey-ns2",
            ok("deleted") & absent("namespace/survey-ns2"),
            setup="kubectl create namespace survey-ns2",
        ),
        Row(
            "kubectl create poddisruptionbudget survey-pdb --selector=app=survey --min-available=1",
            ok("created") & exists("pdb/survey-pdb"),
        ),
        Row("kubectl get pdb survey-pdb", ok("survey-pdb", "ALLOWED DISRUPTIONS")),
        Row("kubectl describe pdb survey-pdb", ok("Min available:")),
        Row("kubectl delete pdb survey-pdb", ok("deleted") & absent("pdb/survey-pdb")),
        Row("kubectl delete lease survey-lease", ok("deleted") & absent("lease/survey-lease")),
    ]


def delete_and_wait_rows() -> list[Row]:
    w = "pod/survey-w"
    return [
        Row(
            "kubectl wait --for=condition=Ready pod/survey-w --timeout=60s",
            ok("condition met"),
            setup=run_pod("survey-w", ready=False),
        ),
        Row(
            "kubectl wait --for=jsonpath='{{.status.phase}}'=Running pod/survey-w --timeout=60s",
            ok("condition met"),
            setup=run_pod("survey-w", ready=False),
        ),
        Row(
            "kubectl wait --for=condition=PodScheduled=false pod/{worker} --timeout=20s",
            ok("condition met"),
        ),
        Row(
            "kubectl wait --for=delete pod/survey-w --timeout=60s",
            ok() & absent(w),
            setup=run_pod("survey-w", ready=False) + " ; kubectl delete pod survey-w --wait=false",
        ),
        Row(
            "kubectl delete pod survey-d1 --dry-run=server",
            ok("(server dry run)") & unchanged("pod/survey-d1"),
            setup=run_pod("survey-d1"),
        ),
        Row(
            "kubectl delete pods -l app=survey --dry-run=server",
            ok() & unchanged("pod/survey-d1", "pod/survey-b", "pod/survey-c"),
            setup=run_pod("survey-d1"),
        ),
        Row(
            "kubectl delete pods -l app=x",
            ok("deleted")
            & absent("pod/survey-x1")
            & absent("pod/survey-x2")
            & exists("pod/survey-d1"),
            setup=" ; ".join(
                (run_pod("survey-x1", app="x"), run_pod("survey-x2", app="x"), run_pod("survey-d1"))
            ),
        ),
        Row(
            "kubectl delete pod survey-d2",
            ok("deleted") & absent("pod/survey-d2"),
            setup=run_pod("survey-d2"),
        ),
        Row(
            "kubectl delete pod survey-d3 --grace-period=0 --force",
            ok("deleted") & absent("pod/survey-d3"),
            setup=run_pod("survey-d3"),
        ),
        Row(
            "kubectl delete pod survey-d4 --wait=false",
            ok("deleted") & absent("pod/survey-d4", within=30),
            setup=run_pod("survey-d4"),
        ),
        Row("kubectl delete pod survey-does-not-exist", refused("not found")),
        Row(
            "kubectl delete -f {dir}/list.json",
            ok("deleted") & absent("pod/survey-l1") & absent("pod/survey-l2"),
            setup="kubectl create -f {dir}/list.json --validate=false",
        ),
        Row(
            "kubectl delete pods -l app=survey",
            ok() & labelled("app=survey", lambda pods: not pods, "no app=survey pod left"),
            setup=run_pod("survey-d5"),
        ),
    ]


def node_rows() -> list[Row]:
    node = "node/{node}"

    def on_node(cluster: Cluster) -> list[str]:
        run = cluster.sh("kubectl get pods -A --field-selector=spec.nodeName={node} -o name")
        return sorted(run.out.split())

    return [
        Row("kubectl cordon {node} --dry-run=server", ok() & unchanged(node)),
        Row("kubectl cordon {node}", ok("cordoned") & field_is(node, "spec.unschedulable", True)),
        Row(
            "kubectl uncordon {node}", ok("uncordoned") & field_is(node, "spec.unschedulable", None)
        ),
        Row(
            "kubectl taint nodes {node} survey=yes:NoSchedule",
            ok("tainted")
            & state(
                "the node has the survey taint",
                lambda c: any(
                    t.get("key") == "survey" for t in dig(c.get(node), "spec.taints") or ()
                ),
            ),
        ),
        Row(
            "kubectl taint nodes {node} survey:NoSchedule-",
            ok("untainted")
            & state(
                "the survey taint is gone",
                lambda c: (
                    not any(t.get("key") == "survey" for t in dig(c.get(node), "spec.taints") or ())
                ),
            ),
        ),
        Row(
            "kubectl drain {node} --ignore-daemonsets --force --dry-run=client",
            ok("(dry run)") & unchanged(node),
        ),
        Row(
            "kubectl drain {node} --ignore-daemonsets --force --dry-run=server",
            ok() & unchanged(node, "pod/{head}"),
        ),
        Row(
            "kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --force --timeout=60s",
            ok("drained")
            & field_is(node, "spec.unschedulable", True)
            & state("no pod left on the node", lambda c: not on_node(c)),
        ),
        Row("kubectl uncordon {node}", ok("uncordoned")),
    ]


# -- running ----------------------------------------------------------------------------------


@contextlib.contextmanager
def served(workdir: Path, scenario: str, speed: float) -> Iterator[Cluster]:
    """`sim serve --scenario SCENARIO --speed SPEED`, until the block ends."""
    kubeconfig, info = workdir / "kubeconfig", workdir / "info.json"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO)
    command = [
        *(sys.executable, "-m", "agent", "sim", "serve", "--scenario", scenario),
        *("--speed", str(speed), "--kubeconfig-out", str(kubeconfig), "--info-out", str(info)),
    ]
    with (workdir / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while not info.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"sim serve did not start: {(workdir / 'serve.log').read_text()}")
            time.sleep(0.1)
        home = workdir / "home"
        home.mkdir()
        files = workdir / "files"
        write_manifests(files)
        yield Cluster(kubeconfig, home, files)
    finally:
        process.terminate()
        process.wait(timeout=20)


def learn_names(cluster: Cluster) -> bool:
    """The seed's Running head, its node, and a Pending (Unschedulable) worker; True when all
    three are there. The worker picked is the last by name: the KubeRay stand-in removes spare
    workers first by name as tasks finish, so it lasts longest."""
    pods = json.loads(cluster.sh("kubectl get pods -o json").out or "{}").get("items", [])
    heads = [
        p for p in pods
        if p["metadata"]["labels"].get("ray.io/node-type") == "head"
        and p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]  # fmt: skip
    pending = sorted(
        p["metadata"]["name"] for p in pods
        if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
        and any(c.get("reason") == "Unschedulable" for c in p["status"].get("conditions", ()))
    )  # fmt: skip
    if heads:
        cluster.names.update(head=heads[0]["metadata"]["name"], node=heads[0]["spec"]["nodeName"])
    if pending and cluster.names.get("worker") not in pending:
        cluster.names["worker"] = pending[-1]
    return bool(heads and pending)


def wait_for_workload(cluster: Cluster) -> None:
    deadline = time.monotonic() + 60
    while not learn_names(cluster):
        if time.monotonic() > deadline:
            raise SystemExit("the seed workload did not start: no Running head and Pending worker")
        time.sleep(0.5)


def judge(row: Row, cluster: Cluster) -> Verdict:
    """Run the row's command and class it by which of its expectations are unmet."""
    parts = row.check.parts
    if row.setup:
        cluster.sh(row.setup)
    befores = [part.before(cluster) if part.before else None for part in parts]
    run = cluster.sh(row.command)
    unmet = [
        (part, problem)
        for part, before in zip(parts, befores, strict=True)
        if (problem := part.test(run, cluster, before)) is not None
    ]
    if not unmet:
        return WORKS, ""
    note = "; ".join(problem for _part, problem in unmet)
    if run.rc == 0 and all(part.degrades for part, _problem in unmet):
        return DEGRADED, note
    return (WRONG if row.served else UNSERVED), note


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="seed", help="the scenario sim serve runs (seed)")
    parser.add_argument("--only", help="run only rows whose command contains this text")
    parser.add_argument(
        "--speed",
        type=float,
        default=2.0,
        help="simulated seconds per real second (2: the seed's Pending workers outlive the run)",
    )
    args = parser.parse_args(argv)
    client = subprocess.run(
        ["kubectl", "version", "--client"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    counts = dict.fromkeys((WORKS, DEGRADED, UNSERVED, WRONG), 0)
    with (
        tempfile.TemporaryDirectory(prefix="kubectl-survey-") as tmp,
        served(Path(tmp), args.scenario, args.speed) as cluster,
    ):
        wait_for_workload(cluster)
        names = cluster.names
        print(f"kubectl survey: {client[0] if client else 'kubectl ?'}; ", end="")
        print(f"sim serve --scenario {args.scenario} --speed {args.speed:g}")
        print(f"head {names['head']}, Pending worker {names['worker']}, node {names['node']}\n")
        print("| # | command | expected | class | note |")
        print("|---|---|---|---|---|")
        for index, row in enumerate(rows(), 1):
            if args.only and args.only not in row.command:
                continue
            learn_names(cluster)  # the worker may have been removed, the head drained
            verdict, note = judge(row, cluster)
            counts[verdict] += 1
            command = cell(row.command.format(**cluster.names, dir="DIR"))
            expect = cell(row.check.expect.format(**cluster.names, dir="DIR"))
            print(f"| {index} | `{command}` | {expect} | {verdict} | {cell(note)} |", flush=True)
    fails = counts[UNSERVED] + counts[WRONG]
    print(
        f"\n{sum(counts.values())} commands: {counts[WORKS]} works, {counts[DEGRADED]} degraded, "
        f"{fails} fails ({counts[UNSERVED]} resource not served, {counts[WRONG]} wrong behaviour)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
