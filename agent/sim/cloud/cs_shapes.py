"""The JSON shapes of the ACK CS API (ROA, 2015-12-15) for the emulator's replies.

Node pools, nodes and tasks as alibabacloud_cs20151215's response models read them (field names
taken from its models/): `pool_json` for DescribeClusterNodePools' items and
DescribeClusterNodePoolDetail, `node_json` for DescribeClusterNodes, `task_json` for
DescribeTaskInfo. The HTTP façade that serves them is `cs_api`.
"""

from __future__ import annotations

import time
from typing import Any

from agent.sim.cloud.cloud_model import NodeView, PoolView, TaskView


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def pool_json(
    pool: PoolView, *, region_id: str, now: float, created: float = 0.0
) -> dict[str, Any]:
    """A node pool in the shape of DescribeClusterNodePools' `nodepools[]` items."""
    scaling = pool.initial_nodes > 0 or pool.removing_nodes > 0 or pool.total_nodes != pool.desired
    return {
        "nodepool_info": {
            "nodepool_id": pool.pool_id,
            "name": pool.name,
            "region_id": region_id,
            "type": "ess",
            "is_default": False,
            "resource_group_id": "",
            "created": _rfc3339(created),
            "updated": _rfc3339(now),
        },
        "scaling_group": {
            "desired_size": pool.desired,
            "instance_types": list(pool.instance_types),
            "vswitch_ids": list(pool.vswitch_ids),
            "scaling_group_id": f"asg-{pool.pool_id}",
            "instance_charge_type": "PostPaid",
            "multi_az_policy": "BALANCE",
            "system_disk_category": "cloud_essd",
            "system_disk_size": 120,
            "spot_strategy": "NoSpot",
            "image_type": "AliyunLinux3",
            "tags": [],
        },
        "auto_scaling": {
            "enable": pool.auto_scaling_enabled,
            "min_instances": pool.min_size,
            "max_instances": pool.max_size,
            "type": "cpu",
        },
        "status": {
            "total_nodes": pool.total_nodes,
            "healthy_nodes": pool.healthy_nodes,
            "serving_nodes": pool.serving_nodes,
            "initial_nodes": pool.initial_nodes,
            "failed_nodes": pool.failed_nodes,
            "removing_nodes": pool.removing_nodes,
            "offline_nodes": 0,
            "state": "scaling" if scaling else "active",
        },
        "kubernetes_config": {
            "labels": [{"key": k, "value": v} for k, v in sorted(pool.labels.items())],
            "taints": [
                {
                    "key": t.get("key", ""),
                    "value": t.get("value", ""),
                    "effect": t.get("effect", ""),
                }
                for t in pool.taints
            ],
            "runtime": "containerd",
            "runtime_version": "1.6.28",
            "cpu_policy": "none",
            "cms_enabled": False,
            "unschedulable": False,
        },
        "max_nodes": pool.max_size,
    }


def node_json(node: NodeView) -> dict[str, Any]:
    """A node in the shape of DescribeClusterNodes' `nodes[]` items."""
    return {
        "instance_id": node.instance_id,
        "instance_name": node.node_name,
        "node_name": node.node_name,
        "host_name": node.node_name,
        "nodepool_id": node.pool_id,
        "instance_type": node.instance_type,
        "instance_type_family": node.instance_type.rsplit(".", 1)[0],
        "ip_address": [node.ip] if node.ip else [],
        "state": node.state,
        "node_status": node.node_status,
        "instance_status": "Running" if node.state == "running" else "Pending",
        "instance_role": "Worker",
        "instance_charge_type": "PostPaid",
        "spot_strategy": "NoSpot",
        "is_aliyun_node": True,
        "source": "ess_attach",
        "creation_time": node.creation_time,
        "expired_time": "",
        "error_message": "",
    }


def task_json(task: TaskView, *, cluster_id: str) -> dict[str, Any]:
    """A task in the shape of DescribeTaskInfo's body."""
    body: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "state": task.state,
        "created": task.created,
        "updated": task.updated,
        "cluster_id": cluster_id,
        "target": {"id": cluster_id, "type": "cluster"},
    }
    if task.error:
        # Services report failures as "Code: message" (e.g. ECS's OperationDenied.NoStock).
        code, sep, message = task.error.partition(": ")
        if not sep or " " in code:
            # No code is known for this failure (e.g. a failed drain): the message alone, rather
            # than a made-up code that looks real.
            body["error"] = {"message": task.error}
        else:
            body["error"] = {"code": code, "message": message}
    return body
