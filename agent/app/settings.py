"""The catalogue of the agent's settings: the frozen `AgentConfig` they fill and `SETTINGS`, one
`Setting` per field (name, value reader, help text, metavar), from which the flag, the env var
name (`RAY_ACK_SCALER_<NAME>`) and the file key derive, so they cannot drift apart; plus the
readers that turn one raw value into a typed one. Reading the sources is agent/app/config.py's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from agent.model import PoolBounds
from functions.contract import DEFAULT_STRATEGY
from functions.contract import STRATEGIES as STRATEGIES  # agent.dev.run offers them too

ENV_PREFIX = "RAY_ACK_SCALER_"
DECIDER_KINDS = ("local", "fc", "http")
# Function Compute 3.0 (API 2023-03-30, functions only) is current; 2.0 (services) still invokes.
FC_API_VERSIONS = ("3.0", "2.0")
LOG_FORMATS = ("json", "console")
CREDENTIAL_SOURCES = ("chain", "access-key")


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent is told from outside. Field names are the setting names."""

    # Kubernetes
    kubeconfig: str | None = None
    kube_context: str | None = None
    in_cluster: bool = False
    api_url: str | None = None
    # Alibaba Cloud
    cluster_id: str = ""
    region: str = ""
    cs_endpoint: str | None = None  # default cs.<region>.aliyuncs.com
    credentials: str = "chain"
    # decisions
    decider: str = "local"
    fc_api_version: str = "3.0"
    fc_endpoint: str | None = None
    fc_service: str | None = None
    fc_function: str | None = None
    fc_qualifier: str | None = None
    http_url: str | None = None
    decider_timeout_seconds: float = 10.0
    decider_retries: int = 2
    # FC's synchronous invocation payload limit, 32 MB (docs/cloud-facts.md); larger requests
    # are decided in parts (agent/decide/split.py).
    decider_max_payload_bytes: int = 32 * 1024 * 1024
    fallback_to_local: bool = True
    # pools and prices
    # The pools the agent scales and their bounds; empty: no pool (ECI only).
    managed_pools: tuple[PoolBounds, ...] = ()
    allow_ack_autoscaled_pools: bool = False  # manage listed pools even with ACK autoscaling on
    # Pools with ACK's own node autoscaling on are companions: decided for, never written
    # (agent/app/managed_pools.py). Off: a listed one is refused at start-up, as before.
    companion_pools: bool = True
    ack_scan_interval_seconds: float = 30.0  # ACK cluster-autoscaler's scan interval (facts.md)
    node_quota_fallback: int = 100  # when DescribeUserQuota cannot be read (ACK's default)
    prices: Mapping[str, float] = field(default_factory=dict)  # pool id or instance type -> /hour
    eci_enabled: bool = True
    eci_price_per_vcpu_second: float = 0.000049
    eci_price_per_gib_second: float = 0.00000613
    eci_start_seconds: float = 30.0
    eci_max_pods: int = 500
    # policy (decision-contract.md)
    strategy: str = DEFAULT_STRATEGY
    latency_budget_seconds: float = 120.0
    expected_run_seconds: float = 600.0
    max_new_nodes_per_decision: int = 100
    max_provision_seconds: float = 600.0
    # rhythm
    batch_idle_seconds: float = 0.2
    batch_max_seconds: float = 2.0
    resync_seconds: float = 30.0
    pool_refresh_seconds: float = 60.0
    new_pod_grace_seconds: float = 0.0
    # scale-in (docs/scale-in-contract.md)
    scale_in_enabled: bool = True
    scale_in_interval_seconds: float = 10.0
    scale_down_unneeded_seconds: float = 60.0
    scale_down_utilization_threshold: float = 0.5
    scale_down_delay_after_add_seconds: float = 120.0
    scale_down_delay_after_failure_seconds: float = 180.0
    scale_in_max_nodes_per_decision: int = 10
    scale_in_drain_non_empty: bool = False
    # what to watch
    pod_selector: str = "ray.io/node-type=worker"
    ray_cluster: str | None = None
    namespace: str | None = None  # None: all namespaces
    # Watch RayClusters and anticipate the workers they want before KubeRay creates the pods
    # (agent/ingest/rayclusters.py); turned off by itself when ray.io/v1 is not served.
    raycluster_watch: bool = True
    watch_timeout_seconds: int = 300
    watch_read_timeout_seconds: float = 330.0
    list_page_size: int = 500
    # agents sharing a pool take turns through one Lease per pool (agent/actuate/pool_lock.py)
    pool_lock_enabled: bool = True
    pool_lock_namespace: str | None = None  # None: the agent's own namespace, else kube-system
    pool_lock_identity: str | None = None  # None: the pod name (hostname)
    # operations
    dry_run: bool = False
    # Unauthenticated: loopback by default (`kubectl exec` / port-forward reach it). Probes and
    # Prometheus reach the pod IP, so they get their own, explicitly opted-in listener.
    ops_address: str = "127.0.0.1:8080"
    probe_address: str | None = None  # None: no second listener
    status_details: bool = False  # /status shows pod names and error texts
    log_format: str = "console"
    log_level: str = "info"

    @property
    def label_selector(self) -> str:
        """The pod selector, narrowed to one Ray cluster when one is configured."""
        parts = [
            p
            for p in (
                self.pod_selector,
                f"ray.io/cluster={self.ray_cluster}" if self.ray_cluster else "",
            )
            if p
        ]
        return ",".join(parts)

    @property
    def pool_bounds(self) -> dict[str, PoolBounds]:
        """The managed pools' bounds by pool id (what the CS client stamps on each pool)."""
        return {bounds.pool_id: bounds for bounds in self.managed_pools}

    @property
    def cs_endpoint_or_default(self) -> str:
        return self.cs_endpoint or f"cs.{self.region}.aliyuncs.com"

    @property
    def ops_host_port(self) -> tuple[str, int]:
        return host_port(self.ops_address)

    @property
    def probe_host_port(self) -> tuple[str, int] | None:
        return None if self.probe_address is None else host_port(self.probe_address)


def host_port(address: str) -> tuple[str, int]:
    """`HOST:PORT` (an empty host means 127.0.0.1; `[::1]:8080` for IPv6) → (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


# --- parsing of one value ---------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("expected a single value")
    return str(value)


def _optional_text(value: Any) -> str | None:
    text = _text(value).strip()
    return text or None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    number = float(value)
    if number < 0 or number != number:
        raise ValueError("expected a non-negative number")
    return number


def _count(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("expected a whole number")
    number = int(value)
    if number < 0:
        raise ValueError("expected a non-negative whole number")
    return number


def _payload_bytes(value: Any) -> int:
    number = _count(value)
    if number < 1024:
        raise ValueError("expected at least 1024 bytes (one request without pods takes ~1 KB)")
    return number


def parse_managed_pools(value: Any) -> tuple[PoolBounds, ...]:
    """`np-cpu:0:20,np-gpu:0:8` (cluster-autoscaler's `--nodes=min:max:id`, id first) or a
    YAML list of such items: the pools the agent scales, each with the bounds it keeps."""
    items = value if isinstance(value, (list, tuple)) else _text(value).split(",")
    pools: dict[str, PoolBounds] = {}
    for raw in items:
        item = _text(raw).strip()
        if not item:
            continue
        pool_id, sep, rest = item.partition(":")
        low, sep2, high = rest.partition(":")
        if not (sep and sep2 and pool_id.strip()):
            raise ValueError(f"expected POOL_ID:MIN:MAX, e.g. np-cpu:0:20, got {item!r}")
        try:
            bounds = PoolBounds(pool_id.strip(), _count(low.strip()), _count(high.strip()))
        except ValueError:
            raise ValueError(f"{item!r}: MIN and MAX must be whole numbers ≥ 0") from None
        if bounds.min_size > bounds.max_size:
            raise ValueError(f"{item!r}: MIN {bounds.min_size} is above MAX {bounds.max_size}")
        if bounds.pool_id in pools:
            raise ValueError(f"pool {bounds.pool_id!r} is listed twice")
        pools[bounds.pool_id] = bounds
    return tuple(pools.values())


def _prices(value: Any) -> dict[str, float]:
    """`np-cpu=0.9,ecs.g7.xlarge=1.2` or a mapping (YAML)."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = []
        for item in _text(value).split(","):
            if not item.strip():
                continue
            key, sep, price = item.partition("=")
            if not sep:
                raise ValueError(f"expected KEY=PRICE, got {item.strip()!r}")
            pairs.append((key.strip(), price))
    prices: dict[str, float] = {}
    for key, price in pairs:
        if not str(key):
            raise ValueError("empty pool id or instance type")
        prices[str(key)] = _number(price)
    return prices


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).strip()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text

    return parse


def _address(value: Any) -> str:
    text = _text(value).strip()
    _host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT")
    return text


def _optional_address(value: Any) -> str | None:
    return _address(value) if _text(value).strip() else None


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Any], Any]
    help: str
    metavar: str = "VALUE"
    is_flag: bool = False  # a boolean switch: --x / --no-x

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("kubeconfig", _optional_text, "kubeconfig file to use", "PATH"),
    Setting("kube_context", _optional_text, "context in the kubeconfig file", "NAME"),
    Setting(
        "in_cluster", _boolean, "use the pod's service account (in-cluster config)", is_flag=True
    ),
    Setting(
        "api_url",
        _optional_text,
        "plain Kubernetes API URL without auth (the simulator), e.g. http://127.0.0.1:6443",
        "URL",
    ),
    Setting("cluster_id", _text, "ACK cluster id (required)", "ID"),
    Setting("region", _text, "Alibaba Cloud region, e.g. cn-hangzhou (required)", "REGION"),
    Setting(
        "cs_endpoint",
        _optional_text,
        "CS API endpoint: a host (HTTPS) or a URL (default cs.<region>.aliyuncs.com; a local "
        "emulator needs http://, an IP address or localhost without a scheme is refused)",
        "URL",
    ),
    Setting(
        "credentials",
        _choice(CREDENTIAL_SOURCES),
        "'chain': alibabacloud-credentials default chain (RRSA, env, profile, ECS role); "
        "'access-key': ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET from the environment",
        "SOURCE",
    ),
    Setting(
        "decider",
        _choice(DECIDER_KINDS),
        "where decisions are computed: local (in-process), fc (Function Compute SDK), "
        "http (HTTP trigger)",
        "KIND",
    ),
    Setting(
        "fc_api_version",
        _choice(FC_API_VERSIONS),
        "Function Compute API of the fc and http deciders: 3.0 (functions, no services; "
        "ACS3-signed HTTP trigger) or 2.0 (a service holds the function, --fc-service needed; "
        "FC-signed trigger)",
        "VERSION",
    ),
    Setting(
        "fc_endpoint",
        _optional_text,
        "Function Compute endpoint, e.g. "
        "<account>.cn-hangzhou.fc.aliyuncs.com (HTTPS), or a URL (a local emulator needs "
        "http://)",
        "URL",
    ),
    Setting("fc_service", _optional_text, "Function Compute 2.0 service name", "NAME"),
    Setting("fc_function", _optional_text, "Function Compute function name", "NAME"),
    Setting("fc_qualifier", _optional_text, "Function Compute version or alias", "QUALIFIER"),
    Setting("http_url", _optional_text, "decision function HTTP trigger URL", "URL"),
    Setting("decider_timeout_seconds", _number, "timeout of one decision call", "SECONDS"),
    Setting("decider_retries", _count, "retries of a failed decision call", "N"),
    Setting(
        "decider_max_payload_bytes",
        _payload_bytes,
        "largest request body the fc and http deciders send in one call (Function Compute's "
        "synchronous payload limit, 32 MB); a larger request is decided in parts that do not "
        "share capacity",
        "BYTES",
    ),
    Setting(
        "fallback_to_local",
        _boolean,
        "decide in-process while the remote decider is failing",
        is_flag=True,
    ),
    Setting(
        "managed_pools",
        parse_managed_pools,
        "node pools to scale, with the bounds to keep each in, e.g. np-cpu:0:20,np-gpu:0:8 "
        "(with ACK's auto scaling off; one where it is on is a companion pool instead, see "
        "companion_pools; default: none)",
        "ID:MIN:MAX,...",
    ),
    Setting(
        "allow_ack_autoscaled_pools",
        _boolean,
        "manage listed pools even where ACK's own node autoscaling is on "
        "(two autoscalers then fight over the pool's size)",
        is_flag=True,
    ),
    Setting(
        "companion_pools",
        _boolean,
        "decide with the pools ACK's own node autoscaling scales (auto_scaling.enable, bounds "
        "min/max_instances) and leave their pods to it, never writing them; off: a pool in "
        "managed_pools with ACK autoscaling on is refused at start-up",
        is_flag=True,
    ),
    Setting(
        "ack_scan_interval_seconds",
        _number,
        "scan interval of ACK's cluster-autoscaler the decision assumes for companion pools",
        "SECONDS",
    ),
    Setting(
        "node_quota_fallback",
        _count,
        "cluster node quota to assume when DescribeUserQuota cannot be read",
        "N",
    ),
    Setting(
        "prices",
        _prices,
        "price per hour by pool id or instance type, e.g. np-cpu=0.9,ecs.g7.xlarge=1.2",
        "KEY=PRICE,...",
    ),
    Setting("eci_enabled", _boolean, "allow placing pods on ECI", is_flag=True),
    Setting("eci_price_per_vcpu_second", _number, "ECI price per vCPU-second", "PRICE"),
    Setting("eci_price_per_gib_second", _number, "ECI price per GiB-second", "PRICE"),
    Setting("eci_start_seconds", _number, "expected ECI pod start time", "SECONDS"),
    Setting("eci_max_pods", _count, "pods the ECI virtual node accepts", "N"),
    Setting(
        "strategy", _choice(STRATEGIES), "placement strategy: " + ", ".join(STRATEGIES), "STRATEGY"
    ),
    Setting(
        "latency_budget_seconds",
        _number,
        "how long a pod may wait for capacity (cost strategy)",
        "SECONDS",
    ),
    Setting(
        "expected_run_seconds", _number, "expected pod run time, for cost estimates", "SECONDS"
    ),
    Setting("max_new_nodes_per_decision", _count, "cap on nodes added by one decision", "N"),
    Setting(
        "max_provision_seconds",
        _number,
        "after this long, upcoming nodes are not counted on",
        "SECONDS",
    ),
    Setting(
        "batch_idle_seconds", _number, "a batch closes after this long without a new pod", "SECONDS"
    ),
    Setting(
        "batch_max_seconds",
        _number,
        "a batch closes at the latest this long after it opened",
        "SECONDS",
    ),
    Setting("resync_seconds", _number, "decide again this often even without events", "SECONDS"),
    Setting("pool_refresh_seconds", _number, "re-read node pools this often", "SECONDS"),
    Setting(
        "new_pod_grace_seconds",
        _number,
        "ignore pods unschedulable for less than this (0: react at once)",
        "SECONDS",
    ),
    Setting(
        "scale_in_enabled", _boolean, "give back nodes that stay unneeded (scale-in)", is_flag=True
    ),
    Setting("scale_in_interval_seconds", _number, "look for unneeded nodes this often", "SECONDS"),
    Setting(
        "scale_down_unneeded_seconds",
        _number,
        "a node must be empty (or under the threshold) this long before it is removed",
        "SECONDS",
    ),
    Setting(
        "scale_down_utilization_threshold",
        _number,
        "a node whose requests are below this share of allocatable is underutilized (0-1)",
        "SHARE",
    ),
    Setting(
        "scale_down_delay_after_add_seconds",
        _number,
        "no node of a pool is removed this long after its desired size was raised",
        "SECONDS",
    ),
    Setting(
        "scale_down_delay_after_failure_seconds",
        _number,
        "a node whose removal failed (its drain did not finish) is not removed again this long",
        "SECONDS",
    ),
    Setting("scale_in_max_nodes_per_decision", _count, "cap on nodes removed by one decision", "N"),
    Setting(
        "scale_in_drain_non_empty",
        _boolean,
        "also remove underutilized nodes whose pods fit elsewhere (drained first); "
        "otherwise only empty nodes go",
        is_flag=True,
    ),
    Setting("pod_selector", _text, "label selector of the pods to scale for", "SELECTOR"),
    Setting(
        "ray_cluster", _optional_text, "only pods of this Ray cluster (ray.io/cluster)", "NAME"
    ),
    Setting("namespace", _optional_text, "only pods in this namespace (default: all)", "NAME"),
    Setting(
        "raycluster_watch",
        _boolean,
        "watch RayClusters (ray.io/v1) and treat workers they want but have no pod yet as demand "
        "at once (off by itself when the CRD is not served)",
        is_flag=True,
    ),
    Setting("watch_timeout_seconds", _count, "server-side timeout of one watch request", "SECONDS"),
    Setting(
        "watch_read_timeout_seconds",
        _number,
        "a watch silent this long is presumed dead and reconnected",
        "SECONDS",
    ),
    Setting("list_page_size", _count, "objects per LIST page", "N"),
    Setting(
        "pool_lock_enabled",
        _boolean,
        "write a pool only while holding its Lease, so agents sharing it never interleave writes",
        is_flag=True,
    ),
    Setting(
        "pool_lock_namespace",
        _optional_text,
        "namespace of the pool Leases (default: the agent's namespace, else kube-system)",
        "NAME",
    ),
    Setting(
        "pool_lock_identity",
        _optional_text,
        "holder identity written in the pool Leases (default: the pod name)",
        "NAME",
    ),
    Setting("dry_run", _boolean, "decide and report, never write", is_flag=True),
    Setting(
        "ops_address",
        _address,
        "listen address of /healthz, /readyz, /metrics and /status (no authentication: "
        "keep it on loopback and reach it with kubectl exec or port-forward)",
        "HOST:PORT",
    ),
    Setting(
        "probe_address",
        _optional_address,
        "a second listen address, serving only /healthz, /readyz and /metrics, for the "
        "kubelet's probes and Prometheus, e.g. 0.0.0.0:8081",
        "HOST:PORT",
    ),
    Setting(
        "status_details",
        _boolean,
        "/status shows pod names and error texts (otherwise they are redacted)",
        is_flag=True,
    ),
    Setting(
        "log_format", _choice(LOG_FORMATS), "log format: json (in cluster) or console", "FORMAT"
    ),
    Setting("log_level", _choice(("debug", "info", "warning", "error")), "log level", "LEVEL"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
assert set(SETTINGS_BY_NAME) == {f.name for f in fields(AgentConfig)}, (
    "SETTINGS and AgentConfig differ"
)
