# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smoke-test report: per-node results of the CUDA vector-add and nvidia-smi test pods,
from the cluster's JSON and the pods' logs, as a table and as failure sentences. Pure;
exposed as filters in ``plugins/filter/gpu_addons.py``. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime

from ansible_collections.k3s_gpu.cluster.plugins.module_utils._gpu_nodes import GPU_RESOURCE
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._nvidia_smi import parse_table
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._gpu_readiness import (
    describe_pod, gpu_allocatable, int_quantity, items_of, of_kind,
)


def _parse_time(value):
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def pod_seconds(pod):
    """Run time of a pod's first container (terminated), else pod start to now-less None."""
    status = pod.get("status") or {}
    for c in status.get("containerStatuses") or []:
        term = (c.get("state") or {}).get("terminated") or {}
        start, end = _parse_time(term.get("startedAt")), _parse_time(term.get("finishedAt"))
        if start and end:
            return int((end - start).total_seconds())
    return None


SMOKE_TESTS = {
    "vector-add": "Test PASSED",
    "nvidia-smi": "Driver Version",
}


def smoke_results(doc, logs, expected_nodes, runtime_class="", test_label="k3s-gpu.io/smoke-test"):
    """Per-node smoke test results from ``kubectl get nodes,pods -o json`` and pod logs.

    Test pods carry the labels ``<test_label>=<test name>`` and
    ``k3s-gpu.io/node=<node name>``. Returns dict with ``nodes`` (list of per-node dicts:
    node, gpu_model, gpu_count, driver, cuda, runtime_handler, allocatable, tests: list of
    name/result/seconds/detail, passed) and ``passed``.
    """
    items = items_of(doc)
    logs = logs or {}
    node_objs = dict(((n.get("metadata") or {}).get("name"), n) for n in of_kind(items, "Node"))
    pods = of_kind(items, "Pod")
    results = []
    for name in [str(n).lower() for n in expected_nodes or []]:
        node = node_objs.get(name) or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        capacity = ((node.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE)
        entry = {
            "node": name,
            "gpu_model": labels.get("nvidia.com/gpu.product") or "",
            "gpu_count": int_quantity(labels.get("nvidia.com/gpu.count") or capacity or 0),
            "driver": "",
            "cuda": "",
            "runtime_handler": runtime_class or "default",
            "allocatable": gpu_allocatable(node) if node else 0,
            "tests": [],
        }
        for test, needle in sorted(SMOKE_TESTS.items()):
            pod = next((p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(
                test_label) == test and ((p.get("metadata") or {}).get("labels") or {}).get(
                "k3s-gpu.io/node") == name), None)
            if pod is None:
                entry["tests"].append({"name": test, "result": "FAIL", "seconds": None,
                                       "detail": "test pod not found"})
                continue
            key = "%s/%s" % (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])
            text = logs.get(key) or ""
            phase = (pod.get("status") or {}).get("phase") or "Unknown"
            ok = phase == "Succeeded" and needle in text
            if ok:
                detail = "found %r in the log" % needle
            elif phase != "Succeeded":
                info = describe_pod(pod)
                reasons = ["%s %s" % (c["state"], c["reason"]) for c in info["containers"]
                           if c["reason"]]
                detail = "pod phase %s%s" % (phase, ": " + "; ".join(reasons) if reasons else "")
            else:
                detail = "%r not in the log" % needle
            if test == "nvidia-smi":
                smi = parse_table(text)
                entry["driver"] = smi["driver_version"] or ""
                entry["cuda"] = smi["cuda_version"] or ""
                if smi["gpus"] and not entry["gpu_model"]:
                    entry["gpu_model"] = smi["gpus"][0]
            entry["tests"].append({"name": test, "result": "PASS" if ok else "FAIL",
                                   "seconds": pod_seconds(pod), "detail": detail})
        if entry["allocatable"] < 1:
            entry["tests"].append({"name": "allocatable", "result": "FAIL", "seconds": None,
                                   "detail": "0 allocatable %s" % GPU_RESOURCE})
        else:
            entry["tests"].append({"name": "allocatable", "result": "PASS", "seconds": None,
                                   "detail": "%d allocatable" % entry["allocatable"]})
        entry["passed"] = all(t["result"] == "PASS" for t in entry["tests"])
        entry["by_test"] = dict((t["name"], t) for t in entry["tests"])
        results.append(entry)
    return {"nodes": results, "passed": bool(results) and all(r["passed"] for r in results)}


def failed_tests(results):
    """"node test: detail" for every failed test, for the failure message."""
    return ["%s %s: %s" % (r["node"], t["name"], t["detail"])
            for r in (results or {}).get("nodes") or [] for t in r["tests"]
            if t["result"] != "PASS"]


def summary_table(results):
    """Plain-text table (list of lines) for the play output."""
    header = ("node", "gpu", "driver", "cuda", "runtime", "alloc", "vector-add", "nvidia-smi")
    rows = [header]
    for r in results.get("nodes") or []:
        tests = dict((t["name"], t) for t in r["tests"])
        rows.append((
            r["node"], "%sx %s" % (r["gpu_count"], r["gpu_model"] or "?"), r["driver"] or "?",
            r["cuda"] or "?", r["runtime_handler"], str(r["allocatable"]),
            tests.get("vector-add", {}).get("result", "-"),
            tests.get("nvidia-smi", {}).get("result", "-"),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
