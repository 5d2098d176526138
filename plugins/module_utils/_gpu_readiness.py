# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of the GPU add-ons, decided from the cluster's JSON (``k3s kubectl get
nodes,pods -o json``) that the roles fetch: GPUs allocatable per node, pods ready per GPU
node, failing pods described with their logs, node labels to change. Pure; exposed as
filters in ``plugins/filter/gpu_addons.py``. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils._gpu_nodes import GPU_RESOURCE

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


def items_of(doc):
    """The objects of a ``kubectl get -o json`` document: a List's items, or one object."""
    if isinstance(doc, dict):
        if "items" in doc:
            return doc.get("items") or []
        if doc.get("kind"):
            return [doc]
        return []
    return list(doc or [])


def of_kind(items, kind):
    """The objects of one ``kind`` (Node, Pod) among ``items``."""
    return [i for i in items if isinstance(i, dict) and i.get("kind") == kind]


def int_quantity(value):
    """A whole-number Kubernetes quantity ("2") as an int; 0 when it is not one."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def gpu_allocatable(node):
    """GPUs the scheduler can hand out on a node: nvidia.com/gpu plus MIG resources."""
    allocatable = ((node or {}).get("status") or {}).get("allocatable") or {}
    total = 0
    for key, value in allocatable.items():
        if key == GPU_RESOURCE or key.startswith("nvidia.com/mig-"):
            total += int_quantity(value)
    return total


def _pod_ready(pod):
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    containers = status.get("containerStatuses") or []
    return bool(containers) and all(c.get("ready") for c in containers)


def _container_state(container):
    state = container.get("state") or {}
    for name in ("waiting", "terminated", "running"):
        if name in state:
            detail = state[name] or {}
            return name, detail.get("reason") or "", detail.get("message") or ""
    return "unknown", "", ""


def describe_pod(pod):
    """Names, phase and container states of a pod, as a dict for reports."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = []
    for kind, key in (("init", "initContainerStatuses"), ("main", "containerStatuses")):
        for c in status.get(key) or []:
            state, reason, message = _container_state(c)
            containers.append({
                "name": c.get("name"),
                "kind": kind,
                "ready": bool(c.get("ready")),
                "state": state,
                "reason": reason,
                "message": message,
                "restarts": c.get("restartCount", 0),
            })
    reason = status.get("reason") or ""
    conditions = [c for c in status.get("conditions") or []
                  if c.get("type") == "PodScheduled" and c.get("status") == "False"]
    if conditions and not reason:
        reason = conditions[0].get("reason") or ""
        if conditions[0].get("message"):
            containers.append({"name": "-", "kind": "scheduling", "ready": False,
                               "state": "pending", "reason": reason,
                               "message": conditions[0]["message"], "restarts": 0})
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "node": (pod.get("spec") or {}).get("nodeName") or "",
        "phase": status.get("phase") or "Unknown",
        "reason": reason,
        "containers": containers,
    }


def _labels_match(obj, selector):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def rollout_status(doc, expected_nodes=None, pod_selector=None, namespace=None,
                   failing_selector=None):
    """Decide whether a GPU add-on is up, from ``kubectl get nodes,pods -o json``.

    The add-on is ready when every expected GPU node (names; when empty: the nodes
    labelled nvidia.com/gpu.present=true) has a ready pod matching ``pod_selector``
    and a non-zero GPU allocatable. Returns ready, nodes (per-node detail), problems
    (sentences) and failing_pods (pods in ``namespace`` matching ``failing_selector``,
    default all, that are neither ready nor done).
    """
    items = items_of(doc)
    node_objs = dict(((n.get("metadata") or {}).get("name"), n) for n in of_kind(items, "Node"))
    pods = [p for p in of_kind(items, "Pod")
            if namespace is None or (p.get("metadata") or {}).get("namespace") == namespace]
    expected = [str(n).lower() for n in (expected_nodes or [])]
    if not expected:
        expected = sorted(name for name, n in node_objs.items()
                          if ((n.get("metadata") or {}).get("labels") or {}).get(
                              GPU_PRESENT_LABEL) == "true")
    problems = []
    nodes = []
    if not expected:
        problems.append("no GPU node is known: none in the inventory has k3s_gpu_node: true "
                        "and no cluster node carries the label %s=true" % GPU_PRESENT_LABEL)
    for name in expected:
        node = node_objs.get(name)
        entry = {"name": name, "registered": node is not None, "pod": "",
                 "pod_ready": False, "allocatable": 0}
        if node is None:
            problems.append("node %s is not registered in the cluster (known nodes: %s); check "
                            "that its K3s agent runs and that k3s_node_name matches"
                            % (name, ", ".join(sorted(node_objs)) or "none"))
            nodes.append(entry)
            continue
        entry["allocatable"] = gpu_allocatable(node)
        candidates = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name
                      and _labels_match(p, pod_selector)]
        ready = [p for p in candidates if _pod_ready(p)]
        if ready:
            entry["pod"] = ready[0]["metadata"]["name"]
            entry["pod_ready"] = True
        elif candidates:
            entry["pod"] = candidates[0]["metadata"]["name"]
            problems.append("pod %s on node %s is not ready (phase %s)" % (
                entry["pod"], name, (candidates[0].get("status") or {}).get("phase")))
        else:
            problems.append("no pod matching %s is scheduled on node %s" % (
                ",".join("%s=%s" % kv for kv in sorted((pod_selector or {}).items())) or "*",
                name))
        if entry["allocatable"] < 1:
            problems.append("node %s has 0 allocatable %s" % (name, GPU_RESOURCE))
        nodes.append(entry)
    failing = [describe_pod(p) for p in pods
               if _labels_match(p, failing_selector) and not _pod_ready(p) and (p.get("status") or {}).get("phase") != "Succeeded"]
    ready = bool(expected) and all(n["pod_ready"] and n["allocatable"] > 0 for n in nodes)
    return {"ready": ready, "nodes": nodes, "problems": problems, "failing_pods": failing}


def failure_report(status, logs=None, title="GPU add-on is not ready", tail=10):
    """One readable message: problems, failing pods with container states and last lines
    of their logs (``logs``: "namespace/name" -> log text)."""
    logs = logs or {}
    lines = [title + ":"]
    for problem in status.get("problems") or []:
        lines.append("  - " + problem)
    for pod in status.get("failing_pods") or []:
        key = "%s/%s" % (pod["namespace"], pod["name"])
        lines.append("  pod %s on %s: %s%s" % (key, pod["node"] or "(unscheduled)", pod["phase"],
                                               " (%s)" % pod["reason"] if pod["reason"] else ""))
        for c in pod["containers"]:
            if c["ready"] or (c["kind"] == "init" and c["state"] == "terminated"
                              and c["reason"] == "Completed"):
                continue
            lines.append("    %s container %s: %s %s%s, restarts %s" % (
                c["kind"], c["name"], c["state"], c["reason"],
                (" - " + c["message"].strip().splitlines()[0]) if c["message"] else "",
                c["restarts"]))
        text = (logs.get(key) or "").rstrip()
        if text:
            lines.append("    last log lines:")
            lines.extend("      " + line for line in text.splitlines()[-tail:])
    return "\n".join(lines)


def label_changes(doc, wanted, label="nvidia.com/device-plugin.config"):
    """Nodes whose ``label`` differs from ``wanted`` (node name -> value); nodes not in the
    cluster are left out. Returns a sorted list of {"node", "value", "current"}."""
    current = {}
    for node in of_kind(items_of(doc), "Node"):
        meta = node.get("metadata") or {}
        current[meta.get("name")] = (meta.get("labels") or {}).get(label)
    return [{"node": name, "value": value, "current": current[name]}
            for name, value in sorted((wanted or {}).items())
            if name in current and current[name] != value]


def logs_by_pod(results):
    """"namespace/name" -> log text, from a looped command result whose items are pod dicts
    (namespace, name) as returned by describe_pod()."""
    logs = {}
    for result in results or []:
        item = result.get("item") or {}
        if isinstance(item, dict) and item.get("name"):
            text = result.get("stdout") or ""
            if result.get("rc", 0) != 0 and result.get("stderr"):
                text = (text + "\n" + result["stderr"]).strip()
            logs["%s/%s" % (item.get("namespace", ""), item["name"])] = text
    return logs
