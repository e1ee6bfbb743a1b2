"""The field tables of the served types: every field the simulated API server stores or returns
for pods, nodes, events, namespaces, leases and PodDisruptionBudgets, with its type, whether it
is required, and a one-line description.

One table, several readers: the OpenAPI v2 and v3 documents (openapi.py) are generated from it,
so `kubectl explain` and kubectl's client-side validation see exactly the fields the server
keeps, and the server's own create validation (write_rules.validate_new_pod) takes the required
fields of a pod from it. Names and types follow the Kubernetes API reference (k8s.io/api,
k8s.io/apimachinery); the descriptions are ours, shortened. Sub-objects the simulator passes
through without looking inside (volumes, probes, security contexts, env sources) are typed `any`:
kept as sent, and accepted by validation whatever they hold, rather than half-described.

Type notation: `string`, `integer`, `boolean`, `number`; `time` (meta/v1 Time), `microtime`,
`quantity`, `intstr` (IntOrString); `map` (string to string), `quantities` (name to quantity),
`times` (name to time); `any`; `[T]` a list of T; any other name a type of this table. A
trailing `!` marks a required field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
COORDINATION = "io.k8s.api.coordination.v1."
POLICY = "io.k8s.api.policy.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the notation above, without the `!`
    required: bool
    description: str


@dataclass(frozen=True)
class TypeDef:
    """One object type: its definition name (e.g. io.k8s.api.core.v1.Pod), description, fields,
    and for a top-level kind its (group, version, kind)."""

    name: str
    description: str
    fields: tuple[Field, ...]
    gvk: tuple[str, str, str] | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


_TABLE: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    # -- meta/v1 --------------------------------------------------------------------------
    META + "ObjectMeta": (
        "Metadata every persisted object has: name, namespace, labels, and the server's bookkeeping.",
        {
            "name": ("string", "Unique name within the namespace; may not change."),
            "generateName": (
                "string",
                "Prefix the server completes to a unique name when name is empty.",
            ),
            "namespace": (
                "string",
                "The namespace the object lives in; empty for cluster-scoped objects.",
            ),
            "uid": ("string", "Unique id the server assigns on create; read-only."),
            "resourceVersion": (
                "string",
                "Opaque version of the object, for optimistic concurrency and watches.",
            ),
            "generation": ("integer", "Sequence number of the desired state; set by the server."),
            "creationTimestamp": ("time", "When the server created the object; read-only."),
            "deletionTimestamp": (
                "time",
                "When the object will be deleted; set by a graceful delete.",
            ),
            "deletionGracePeriodSeconds": (
                "integer",
                "Seconds allowed for a graceful termination.",
            ),
            "labels": ("map", "Key/value pairs for selecting and organising objects."),
            "annotations": ("map", "Key/value pairs for tools and extensions; not for selecting."),
            "ownerReferences": (
                "[" + META + "OwnerReference]",
                "Objects this one depends on; the garbage collector deletes it after them.",
            ),
            "finalizers": (
                "[string]",
                "Entries that must be removed before the object is deleted.",
            ),
            "managedFields": ("[any]", "Which manager set which field (server-side apply)."),
        },
    ),
    META + "OwnerReference": (
        "Identifies an owning object in the same namespace.",
        {
            "apiVersion": ("string!", "API version of the owner."),
            "kind": ("string!", "Kind of the owner."),
            "name": ("string!", "Name of the owner."),
            "uid": ("string!", "UID of the owner."),
            "controller": ("boolean", "True for the managing controller."),
            "blockOwnerDeletion": (
                "boolean",
                "If true, the owner cannot be deleted before this object is.",
            ),
        },
    ),
    META + "ListMeta": (
        "Metadata of a list: its resourceVersion and the continue token of a paged list.",
        {
            "resourceVersion": ("string", "The version the list was read at; watch from it."),
            "continue": ("string", "Token for the next page of a paged list."),
            "remainingItemCount": ("integer", "How many items the next pages hold, when known."),
            "selfLink": ("string", "Deprecated; not set."),
        },
    ),
    META + "LabelSelector": (
        "A label query: matchLabels and matchExpressions, ANDed.",
        {
            "matchLabels": ("map", "Labels that must all be present with these values."),
            "matchExpressions": (
                "[" + META + "LabelSelectorRequirement]",
                "Requirements that must all hold.",
            ),
        },
    ),
    META + "LabelSelectorRequirement": (
        "A label key, an operator and values.",
        {
            "key": ("string!", "The label key."),
            "operator": ("string!", "In, NotIn, Exists or DoesNotExist."),
            "values": ("[string]", "Values for In and NotIn; empty for Exists and DoesNotExist."),
        },
    ),
    META + "Condition": (
        "One aspect of an object's current state.",
        {
            "type": ("string!", "Type of condition."),
            "status": ("string!", "True, False or Unknown."),
            "observedGeneration": ("integer", "The generation the condition was set from."),
            "lastTransitionTime": ("time!", "When the status last changed."),
            "reason": ("string!", "Machine-readable reason for the last transition."),
            "message": ("string!", "Human-readable detail."),
        },
    ),
    # -- core/v1 Pod ----------------------------------------------------------------------
    CORE + "Pod": (
        "A collection of containers that run together on a host.",
        {
            "apiVersion": ("string", "Versioned schema of this representation: v1."),
            "kind": ("string", "The REST resource this object represents: Pod."),
            "metadata": (META + "ObjectMeta", "Standard object metadata."),
            "spec": (CORE + "PodSpec", "The desired behaviour of the pod."),
            "status": (CORE + "PodStatus", "The most recently observed status; read-only."),
        },
    ),
    CORE + "PodSpec": (
        "The specification of a pod.",
        {
            "containers": ("[" + CORE + "Container]!", "The containers of the pod; at least one."),
            "initContainers": (
                "[" + CORE + "Container]",
                "Containers run in order before the others start.",
            ),
            "ephemeralContainers": ("[any]", "Debugging containers added to a running pod."),
            "nodeName": ("string", "The node the pod is bound to; set by the scheduler."),
            "nodeSelector": ("map", "Labels a node must have for the pod to fit on it."),
            "affinity": (CORE + "Affinity", "The pod's scheduling constraints."),
            "tolerations": ("[" + CORE + "Toleration]", "The taints the pod tolerates."),
            "schedulerName": (
                "string",
                "The scheduler that places the pod; default-scheduler if empty.",
            ),
            "schedulingGates": (
                "[" + CORE + "PodSchedulingGate]",
                "Gates that keep the pod from being scheduled while present.",
            ),
            "priority": ("integer", "The priority value, from priorityClassName."),
            "priorityClassName": ("string", "The name of the pod's PriorityClass."),
            "preemptionPolicy": ("string", "Never or PreemptLowerPriority."),
            "restartPolicy": ("string", "Always, OnFailure or Never."),
            "terminationGracePeriodSeconds": (
                "integer",
                "Seconds the pod gets to stop gracefully.",
            ),
            "activeDeadlineSeconds": (
                "integer",
                "Seconds the pod may be active before it is failed.",
            ),
            "dnsPolicy": ("string", "ClusterFirst, ClusterFirstWithHostNet, Default or None."),
            "dnsConfig": ("any", "DNS parameters added to those of dnsPolicy."),
            "serviceAccountName": ("string", "The ServiceAccount the pod runs as."),
            "serviceAccount": ("string", "Deprecated alias of serviceAccountName."),
            "automountServiceAccountToken": (
                "boolean",
                "Whether to mount the service account token.",
            ),
            "enableServiceLinks": (
                "boolean",
                "Whether service information is injected as environment variables.",
            ),
            "hostNetwork": ("boolean", "Use the host's network namespace."),
            "hostPID": ("boolean", "Use the host's PID namespace."),
            "hostIPC": ("boolean", "Use the host's IPC namespace."),
            "hostname": ("string", "The pod's hostname."),
            "subdomain": ("string", "The pod's DNS subdomain."),
            "volumes": ("[any]", "Volumes the containers may mount."),
            "securityContext": ("any", "Pod-level security attributes."),
            "imagePullSecrets": ("[any]", "Secrets for pulling the images."),
            "overhead": ("quantities", "Resources the pod's sandbox takes beyond its containers."),
            "runtimeClassName": ("string", "The RuntimeClass to run the pod with."),
            "topologySpreadConstraints": ("[any]", "How the pods spread across topology domains."),
            "readinessGates": ("[any]", "Extra conditions for pod readiness."),
            "shareProcessNamespace": ("boolean", "One process namespace for all containers."),
        },
    ),
    CORE + "Container": (
        "A single application container of a pod.",
        {
            "name": ("string!", "Name of the container, unique within the pod."),
            "image": ("string", "Container image name; required for a pod's containers."),
            "imagePullPolicy": ("string", "Always, Never or IfNotPresent."),
            "command": ("[string]", "Entrypoint array; the image's ENTRYPOINT if empty."),
            "args": ("[string]", "Arguments to the entrypoint."),
            "workingDir": ("string", "The container's working directory."),
            "ports": ("[" + CORE + "ContainerPort]", "Ports the container exposes."),
            "env": ("[" + CORE + "EnvVar]", "Environment variables to set."),
            "envFrom": ("[any]", "Sources of environment variables."),
            "resources": (
                CORE + "ResourceRequirements",
                "Compute resources the container requests and is limited to.",
            ),
            "volumeMounts": ("[" + CORE + "VolumeMount]", "Volumes mounted into the container."),
            "livenessProbe": ("any", "Probe of the container's liveness."),
            "readinessProbe": ("any", "Probe of the container's readiness."),
            "startupProbe": ("any", "Probe of the container's start-up."),
            "lifecycle": ("any", "Actions on container start and stop."),
            "securityContext": ("any", "Container-level security attributes."),
            "terminationMessagePath": (
                "string",
                "File the container's termination message is read from.",
            ),
            "terminationMessagePolicy": ("string", "File or FallbackToLogsOnError."),
            "restartPolicy": ("string", "For init containers: Always makes a sidecar."),
            "stdin": ("boolean", "Allocate a buffer for stdin."),
            "stdinOnce": ("boolean", "Close stdin after the first attach."),
            "tty": ("boolean", "Allocate a TTY."),
        },
    ),
    CORE + "ContainerPort": (
        "A network port of a container.",
        {
            "containerPort": ("integer!", "Port number on the pod's IP address."),
            "name": ("string", "An IANA_SVC_NAME for the port."),
            "protocol": ("string", "UDP, TCP or SCTP; TCP if empty."),
            "hostPort": ("integer", "Port number on the host."),
            "hostIP": ("string", "Host IP to bind the port to."),
        },
    ),
    CORE + "EnvVar": (
        "An environment variable of a container.",
        {
            "name": ("string!", "Name of the variable."),
            "value": ("string", "Value of the variable."),
            "valueFrom": ("any", "Source of the value, instead of value."),
        },
    ),
    CORE + "VolumeMount": (
        "A mount of a volume into a container.",
        {
            "name": ("string!", "The volume's name."),
            "mountPath": ("string!", "Path in the container."),
            "readOnly": ("boolean", "Mount read-only."),
            "subPath": ("string", "Path within the volume."),
            "subPathExpr": ("string", "subPath with environment variables expanded."),
            "mountPropagation": ("string", "How mounts propagate between host and container."),
        },
    ),
    CORE + "ResourceRequirements": (
        "Compute resource requests and limits.",
        {
            "requests": (
                "quantities",
                "The minimum resources the container needs; the scheduler reserves them.",
            ),
            "limits": ("quantities", "The maximum resources the container may use."),
            "claims": ("[any]", "Dynamically allocated resources the container uses."),
        },
    ),
    CORE + "Toleration": (
        "The pod this Toleration is attached to tolerates any taint that matches the triple "
        "<key,value,effect> using the matching operator <operator>.",
        {
            "key": (
                "string",
                "The taint key the toleration applies to. Empty matches all keys; "
                "then operator must be Exists.",
            ),
            "operator": ("string", "Exists or Equal (default): Exists is a wildcard for value."),
            "value": ("string", "The taint value the toleration matches; empty for Exists."),
            "effect": (
                "string",
                "The taint effect to match: NoSchedule, PreferNoSchedule or "
                "NoExecute; empty matches all effects.",
            ),
            "tolerationSeconds": (
                "integer",
                "For NoExecute: how long the pod stays bound after "
                "the taint appears; unset is forever, zero or less is at once.",
            ),
        },
    ),
    CORE + "PodSchedulingGate": (
        "A gate that keeps a pod from being scheduled while present.",
        {"name": ("string!", "Name of the gate.")},
    ),
    CORE + "Affinity": (
        "Scheduling constraints of a pod.",
        {
            "nodeAffinity": (CORE + "NodeAffinity", "Node affinity scheduling rules."),
            "podAffinity": ("any", "Rules to co-locate the pod with other pods."),
            "podAntiAffinity": ("any", "Rules to keep the pod away from other pods."),
        },
    ),
    CORE + "NodeAffinity": (
        "Node affinity scheduling rules.",
        {
            "requiredDuringSchedulingIgnoredDuringExecution": (
                CORE + "NodeSelector",
                "Terms a node must match for the pod to be placed on it.",
            ),
            "preferredDuringSchedulingIgnoredDuringExecution": (
                "[" + CORE + "PreferredSchedulingTerm]",
                "Terms the scheduler prefers, by weight.",
            ),
        },
    ),
    CORE + "NodeSelector": (
        "A union of node selector terms: a node matches if any term does.",
        {"nodeSelectorTerms": ("[" + CORE + "NodeSelectorTerm]!", "The terms, ORed.")},
    ),
    CORE + "NodeSelectorTerm": (
        "Requirements on a node's labels and fields, ANDed.",
        {
            "matchExpressions": (
                "[" + CORE + "NodeSelectorRequirement]",
                "Requirements on node labels.",
            ),
            "matchFields": (
                "[" + CORE + "NodeSelectorRequirement]",
                "Requirements on node fields.",
            ),
        },
    ),
    CORE + "NodeSelectorRequirement": (
        "A key, an operator and values.",
        {
            "key": ("string!", "The label key."),
            "operator": ("string!", "In, NotIn, Exists, DoesNotExist, Gt or Lt."),
            "values": ("[string]", "The values."),
        },
    ),
    CORE + "PreferredSchedulingTerm": (
        "A weighted node selector term.",
        {
            "weight": ("integer!", "Weight 1-100."),
            "preference": (CORE + "NodeSelectorTerm!", "The term."),
        },
    ),
    CORE + "PodStatus": (
        "The observed state of a pod.",
        {
            "phase": ("string", "Pending, Running, Succeeded, Failed or Unknown."),
            "conditions": ("[" + CORE + "PodCondition]", "The pod's current conditions."),
            "message": ("string", "Why the pod is in this condition."),
            "reason": ("string", "A brief reason, e.g. Evicted."),
            "nominatedNodeName": ("string", "The node preemption made room on."),
            "hostIP": ("string", "IP address of the pod's host."),
            "hostIPs": ("[" + CORE + "HostIP]", "IP addresses of the host."),
            "podIP": ("string", "IP address of the pod."),
            "podIPs": ("[" + CORE + "PodIP]", "IP addresses of the pod."),
            "startTime": ("time", "When the kubelet acknowledged the pod."),
            "initContainerStatuses": (
                "[" + CORE + "ContainerStatus]",
                "Status of the init containers.",
            ),
            "containerStatuses": ("[" + CORE + "ContainerStatus]", "Status of the containers."),
            "ephemeralContainerStatuses": ("[any]", "Status of the ephemeral containers."),
            "qosClass": ("string", "Guaranteed, Burstable or BestEffort."),
            "resize": ("string", "Status of a requested in-place resize."),
        },
    ),
    CORE + "PodCondition": (
        "One aspect of a pod's state.",
        {
            "type": (
                "string!",
                "PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady or Ready.",
            ),
            "status": ("string!", "True, False or Unknown."),
            "reason": ("string", "Machine-readable reason for the last transition."),
            "message": ("string", "Human-readable detail."),
            "lastProbeTime": ("time", "When the condition was last probed."),
            "lastTransitionTime": ("time", "When the status last changed."),
        },
    ),
    CORE + "HostIP": ("An IP address of the host.", {"ip": ("string", "The address.")}),
    CORE + "PodIP": ("An IP address of the pod.", {"ip": ("string", "The address.")}),
    CORE + "ContainerStatus": (
        "The state of one container.",
        {
            "name": ("string!", "The container's name."),
            "image": ("string!", "The image the container runs."),
            "imageID": ("string!", "The image's ID."),
            "containerID": ("string", "The runtime's container ID."),
            "ready": ("boolean!", "Whether the container passes its readiness probe."),
            "started": ("boolean", "Whether the container passed its startup probe."),
            "restartCount": ("integer!", "How many times the container restarted."),
            "state": (CORE + "ContainerState", "The container's current state."),
            "lastState": (CORE + "ContainerState", "The container's last termination."),
        },
    ),
    CORE + "ContainerState": (
        "Waiting, running or terminated: one of them is set.",
        {
            "waiting": (CORE + "ContainerStateWaiting", "The container is waiting to start."),
            "running": (CORE + "ContainerStateRunning", "The container is running."),
            "terminated": (CORE + "ContainerStateTerminated", "The container has terminated."),
        },
    ),
    CORE + "ContainerStateWaiting": (
        "A waiting container.",
        {
            "reason": ("string", "Why it is waiting, e.g. ContainerCreating."),
            "message": ("string", "Detail."),
        },
    ),
    CORE + "ContainerStateRunning": (
        "A running container.",
        {"startedAt": ("time", "When the container started.")},
    ),
    CORE + "ContainerStateTerminated": (
        "A terminated container.",
        {
            "exitCode": ("integer!", "Exit status."),
            "signal": ("integer", "Signal that ended it."),
            "reason": ("string", "Why it ended, e.g. Completed."),
            "message": ("string", "Detail."),
            "startedAt": ("time", "When it started."),
            "finishedAt": ("time", "When it ended."),
            "containerID": ("string", "The runtime's container ID."),
        },
    ),
    # -- core/v1 Node ---------------------------------------------------------------------
    CORE + "Node": (
        "A worker machine of the cluster.",
        {
            "apiVersion": ("string", "Versioned schema of this representation: v1."),
            "kind": ("string", "The REST resource this object represents: Node."),
            "metadata": (META + "ObjectMeta", "Standard object metadata."),
            "spec": (CORE + "NodeSpec", "The desired behaviour of the node."),
            "status": (CORE + "NodeStatus", "The most recently observed status."),
        },
    ),
    CORE + "NodeSpec": (
        "The specification of a node.",
        {
            "podCIDR": ("string", "The pod IP range assigned to the node."),
            "podCIDRs": ("[string]", "The pod IP ranges assigned to the node."),
            "providerID": ("string", "The cloud provider's ID of the node."),
            "taints": ("[" + CORE + "Taint]", "The node's taints."),
            "unschedulable": ("boolean", "Whether new pods are kept off the node (cordon)."),
        },
    ),
    CORE + "Taint": (
        "A taint keeps pods that do not tolerate it off the node.",
        {
            "key": ("string!", "The taint key."),
            "value": ("string", "The taint value."),
            "effect": ("string!", "NoSchedule, PreferNoSchedule or NoExecute."),
            "timeAdded": ("time", "When a NoExecute taint was added."),
        },
    ),
    CORE + "NodeStatus": (
        "The observed state of a node.",
        {
            "capacity": ("quantities", "The node's total resources."),
            "allocatable": ("quantities", "The resources available to pods."),
            "conditions": ("[" + CORE + "NodeCondition]", "The node's current conditions."),
            "addresses": ("[" + CORE + "NodeAddress]", "The node's addresses."),
            "nodeInfo": (CORE + "NodeSystemInfo", "Versions and ids of the node."),
            "phase": ("string", "Deprecated."),
            "daemonEndpoints": ("any", "Ports of the node's daemons."),
            "images": ("[any]", "Images on the node."),
            "volumesInUse": ("[string]", "Volumes attached and mounted."),
            "volumesAttached": ("[any]", "Volumes attached to the node."),
            "config": ("any", "The node's dynamic config status."),
            "runtimeHandlers": ("[any]", "The runtime handlers available."),
            "features": ("any", "Features the node supports."),
        },
    ),
    CORE + "NodeCondition": (
        "One aspect of a node's state.",
        {
            "type": (
                "string!",
                "Ready, MemoryPressure, DiskPressure, PIDPressure or NetworkUnavailable.",
            ),
            "status": ("string!", "True, False or Unknown."),
            "reason": ("string", "Machine-readable reason for the last transition."),
            "message": ("string", "Human-readable detail."),
            "lastHeartbeatTime": ("time", "When the condition was last reported."),
            "lastTransitionTime": ("time", "When the status last changed."),
        },
    ),
    CORE + "NodeAddress": (
        "An address of a node.",
        {
            "type": ("string!", "Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS."),
            "address": ("string!", "The address."),
        },
    ),
    CORE + "NodeSystemInfo": (
        "Versions and ids a node's kubelet reports.",
        {
            "machineID": ("string!", "The machine ID."),
            "systemUUID": ("string!", "The system UUID."),
            "bootID": ("string!", "The boot ID."),
            "kernelVersion": ("string!", "Kernel version."),
            "osImage": ("string!", "OS image."),
            "containerRuntimeVersion": ("string!", "Container runtime and version."),
            "kubeletVersion": ("string!", "Kubelet version."),
            "kubeProxyVersion": ("string!", "Kube-proxy version."),
            "operatingSystem": ("string!", "Operating system."),
            "architecture": ("string!", "Architecture."),
        },
    ),
    # -- core/v1 Event --------------------------------------------------------------------
    CORE + "Event": (
        "A report of something that happened in the cluster.",
        {
            "apiVersion": ("string", "Versioned schema of this representation: v1."),
            "kind": ("string", "The REST resource this object represents: Event."),
            "metadata": (META + "ObjectMeta!", "Standard object metadata."),
            "involvedObject": (CORE + "ObjectReference!", "The object this event is about."),
            "reason": ("string", "Short machine-readable reason, e.g. FailedScheduling."),
            "message": ("string", "Human-readable description."),
            "source": (CORE + "EventSource", "The component that reported the event."),
            "firstTimestamp": ("time", "When the event was first recorded."),
            "lastTimestamp": ("time", "When the event was most recently recorded."),
            "count": ("integer", "How many times the event has occurred."),
            "type": ("string", "Normal or Warning."),
            "eventTime": ("microtime", "When the event was first observed (events.k8s.io/v1)."),
            "series": (CORE + "EventSeries", "Data about the series this event represents."),
            "action": ("string", "What action was taken or failed."),
            "related": (CORE + "ObjectReference", "A secondary object."),
            "reportingComponent": ("string", "The controller that emitted the event."),
            "reportingInstance": ("string", "The instance of that controller."),
        },
    ),
    CORE + "ObjectReference": (
        "A reference to an object, or a part of it.",
        {
            "kind": ("string", "Kind of the referent."),
            "namespace": ("string", "Namespace of the referent."),
            "name": ("string", "Name of the referent."),
            "uid": ("string", "UID of the referent."),
            "apiVersion": ("string", "API version of the referent."),
            "resourceVersion": ("string", "The referent's version this reference is about."),
            "fieldPath": ("string", "Part of the object, e.g. spec.containers{name}."),
        },
    ),
    CORE + "EventSource": (
        "The component that reported an event.",
        {
            "component": ("string", "Component name."),
            "host": ("string", "Node name."),
        },
    ),
    CORE + "EventSeries": (
        "A series of occurrences of an event.",
        {
            "count": ("integer", "Occurrences so far."),
            "lastObservedTime": ("microtime", "Time of the last occurrence."),
        },
    ),
    # -- core/v1 Namespace ----------------------------------------------------------------
    CORE + "Namespace": (
        "A scope for names.",
        {
            "apiVersion": ("string", "Versioned schema of this representation: v1."),
            "kind": ("string", "The REST resource this object represents: Namespace."),
            "metadata": (META + "ObjectMeta", "Standard object metadata."),
            "spec": (CORE + "NamespaceSpec", "The desired behaviour of the namespace."),
            "status": (CORE + "NamespaceStatus", "The observed status of the namespace."),
        },
    ),
    CORE + "NamespaceSpec": (
        "The specification of a namespace.",
        {"finalizers": ("[string]", "Must be empty before the namespace is removed.")},
    ),
    CORE + "NamespaceStatus": (
        "The observed status of a namespace.",
        {
            "phase": ("string", "Active or Terminating."),
            "conditions": ("[any]", "The namespace's conditions."),
        },
    ),
    # -- coordination.k8s.io/v1 Lease -----------------------------------------------------
    COORDINATION + "Lease": (
        "A lease: node heartbeats and leader election.",
        {
            "apiVersion": (
                "string",
                "Versioned schema of this representation: coordination.k8s.io/v1.",
            ),
            "kind": ("string", "The REST resource this object represents: Lease."),
            "metadata": (META + "ObjectMeta", "Standard object metadata."),
            "spec": (COORDINATION + "LeaseSpec", "The lease's specification."),
        },
    ),
    COORDINATION + "LeaseSpec": (
        "The specification of a lease.",
        {
            "holderIdentity": ("string", "The identity of the current holder."),
            "leaseDurationSeconds": (
                "integer",
                "How long candidates wait before taking the lease over.",
            ),
            "acquireTime": ("microtime", "When the current holder acquired the lease."),
            "renewTime": ("microtime", "When the current holder last renewed the lease."),
            "leaseTransitions": ("integer", "How many times the holder changed."),
            "preferredHolder": ("string", "The holder the lease should go to."),
            "strategy": ("string", "How the holder is chosen."),
        },
    ),
    # -- policy/v1 PodDisruptionBudget ----------------------------------------------------
    POLICY + "PodDisruptionBudget": (
        "The most disruption a collection of pods may take.",
        {
            "apiVersion": ("string", "Versioned schema of this representation: policy/v1."),
            "kind": ("string", "The REST resource this object represents: PodDisruptionBudget."),
            "metadata": (META + "ObjectMeta", "Standard object metadata."),
            "spec": (POLICY + "PodDisruptionBudgetSpec", "The desired behaviour of the budget."),
            "status": (POLICY + "PodDisruptionBudgetStatus", "The observed status of the budget."),
        },
    ),
    POLICY + "PodDisruptionBudgetSpec": (
        "The specification of a PodDisruptionBudget.",
        {
            "minAvailable": (
                "intstr",
                "Pods that must stay available after an eviction: a number or a percentage.",
            ),
            "maxUnavailable": (
                "intstr",
                "Pods that may be unavailable after an eviction: a number or a percentage.",
            ),
            "selector": (META + "LabelSelector", "The pods the budget covers."),
            "unhealthyPodEvictionPolicy": ("string", "IfHealthyBudget or AlwaysAllow."),
        },
    ),
    POLICY + "PodDisruptionBudgetStatus": (
        "The observed status of a PodDisruptionBudget.",
        {
            "observedGeneration": ("integer", "The generation the status was computed from."),
            "disruptedPods": ("times", "Pods evicted but not yet seen deleted, with when."),
            "disruptionsAllowed": ("integer!", "Disruptions allowed now."),
            "currentHealthy": ("integer!", "Healthy pods now."),
            "desiredHealthy": ("integer!", "Healthy pods wanted."),
            "expectedPods": ("integer!", "Pods the budget counts."),
            "conditions": ("[" + META + "Condition]", "The budget's conditions."),
        },
    ),
}

# The served kinds: definition -> (group, version, kind, list description)
KINDS: dict[str, tuple[str, str, str]] = {
    CORE + "Pod": ("", "v1", "Pod"),
    CORE + "Node": ("", "v1", "Node"),
    CORE + "Event": ("", "v1", "Event"),
    CORE + "Namespace": ("", "v1", "Namespace"),
    COORDINATION + "Lease": ("coordination.k8s.io", "v1", "Lease"),
    POLICY + "PodDisruptionBudget": ("policy", "v1", "PodDisruptionBudget"),
}


def _parse(name: str, description: str, raw: Mapping[str, tuple[str, str]]) -> TypeDef:
    fields = tuple(
        Field(field, kind.rstrip("!"), kind.endswith("!"), text)
        for field, (kind, text) in raw.items()
    )
    gvk = KINDS.get(name)
    return TypeDef(name, description, fields, gvk)


def _lists() -> Iterator[TypeDef]:
    for name, (group, version, kind) in KINDS.items():
        api_version = f"{group}/{version}" if group else version
        yield TypeDef(
            name + "List",
            f"A list of {kind} objects.",
            (
                Field(
                    "apiVersion",
                    "string",
                    False,
                    f"Versioned schema of this representation: {api_version}.",
                ),
                Field(
                    "kind",
                    "string",
                    False,
                    f"The REST resource this object represents: {kind}List.",
                ),
                Field("metadata", META + "ListMeta", False, "Standard list metadata."),
                Field("items", f"[{name}]", True, f"The {kind} objects."),
            ),
            (group, version, kind + "List"),
        )


TYPES: dict[str, TypeDef] = {
    name: _parse(name, description, raw) for name, (description, raw) in _TABLE.items()
}
TYPES.update((t.name, t) for t in _lists())


def required_fields(definition: str) -> tuple[str, ...]:
    return TYPES[definition].required
