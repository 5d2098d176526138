# -*- coding: utf-8 -*-
"""The decisions behind the add-on roles: values, sharing, rollout, smoke test results."""

from __future__ import absolute_import, division, print_function

import json
import os

import jinja2
import pytest
import yaml
import yaml_expr

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_nodes
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_readiness
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_smoke
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_values
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _nvidia_smi

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PROBE = os.path.join(HERE, "..", "fixtures", "h100-ubuntu2404", "host-probe.txt")


def _node(name, replicas=None, nixos=False):
    return {"host": name, "node_name": name, "replicas": replicas, "nixos": nixos}


# ----------------------------------------------------------------------- inventory

def test_gpu_nodes_from_hostvars():
    hostvars = {
        "srv": {"k3s_gpu_node": False},
        "g1": {"k3s_gpu_node": True, "ansible_facts": {"nodename": "GPU-01", "distribution": "Ubuntu"}},
        "g2": {"k3s_gpu_node": "true", "k3s_node_name": "node-2", "gpu_time_slicing_replicas": "4"},
        "n1": {"k3s_gpu_node": True, "group_names": ["nixos", "agent"], "k3s_gpu_container_runtime": "containerd"},
        "j1": {"k3s_gpu_node": True, "group_names": ["jetson"]},
    }
    nodes = _gpu_nodes.gpu_nodes(hostvars, ["srv", "g1", "g2", "n1", "j1", "missing"])
    assert [n["node_name"] for n in nodes] == ["gpu-01", "node-2", "n1", "j1"]
    assert [n["replicas"] for n in nodes] == [None, 4, None, None]
    assert [n["nixos"] for n in nodes] == [False, False, True, False]
    assert nodes[3]["jetson"] is True


def test_gpu_nodes_are_described_by_the_host_profile():
    """Node name, data dir, runtime and OS group come from the host profile: the kernel's node
    name (what K3s registers, ansible_facts.nodename), not the short host name; the server's
    own K3s config node-name; the data dir and runtime of the contract."""
    hostvars = {
        "srv": {"k3s_gpu_node": True, "group_names": ["server"], "k3s_server_config": {"node-name": "Ctl-1"},
                "ansible_facts": {"nodename": "srv.example.com", "hostname": "srv"}},
        "g1": {"k3s_gpu_node": True, "group_names": ["agent"], "k3s_agent_config": {"node-name": "ignored"},
               "ansible_facts": {"nodename": "gpu-01.lab.example.com", "hostname": "gpu-01"},
               "k3s_data_dir": "/srv/k3s", "k3s_gpu_container_runtime": "docker"},
        "n1": {"k3s_gpu_node": True, "ansible_facts": {"distribution": "NixOS", "nodename": "n1"}},
    }
    groups = {"server": ["srv"], "agent": ["g1", "n1"]}
    nodes = _gpu_nodes.gpu_nodes(hostvars, ["srv", "g1", "n1"], groups)
    assert [n["node_name"] for n in nodes] == ["ctl-1", "ignored", "n1"]
    assert [n["data_dir"] for n in nodes] == ["/var/lib/rancher/k3s", "/srv/k3s", "/var/lib/rancher/k3s"]
    assert [n["container_runtime"] for n in nodes] == ["containerd", "docker", "containerd"]
    assert [n["nixos"] for n in nodes] == [False, False, True]
    # Without the agent's config: the kernel's node name, not the short host name.
    del hostvars["g1"]["k3s_agent_config"]
    assert _gpu_nodes.gpu_nodes(hostvars, ["g1"], groups)[0]["node_name"] == "gpu-01.lab.example.com"
    # groups from the hosts' own variables, as Ansible's hostvars carry them.
    hostvars["srv"]["groups"] = groups
    assert _gpu_nodes.gpu_nodes(hostvars, ["srv"])[0]["node_name"] == "ctl-1"
    with pytest.raises(_gpu_nodes.AddonError, match="k3s_gpu_container_runtime is 'crio' on g1"):
        _gpu_nodes.gpu_nodes({"g1": {"k3s_gpu_node": True, "k3s_gpu_container_runtime": "crio"}}, ["g1"])


@pytest.mark.parametrize("bad", ["0", -1, "two", "2.5"])
def test_gpu_nodes_rejects_bad_replicas(bad):
    with pytest.raises(_gpu_nodes.AddonError, match="gpu_time_slicing_replicas for g"):
        _gpu_nodes.gpu_nodes({"g": {"k3s_gpu_node": True, "gpu_time_slicing_replicas": bad}}, ["g"])


# ----------------------------------------------------------------------- sharing

def test_device_plugin_config_shapes():
    expected = {"version": "v1", "flags": {"migStrategy": "none", "failOnInitError": False}}
    assert _gpu_values.device_plugin_config(1) == expected
    cfg = _gpu_values.device_plugin_config(3, "mixed", True)
    assert cfg["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 3}]
    assert cfg["flags"] == {"migStrategy": "mixed", "failOnInitError": True}
    with pytest.raises(_gpu_nodes.AddonError, match="MIG strategy"):
        _gpu_values.device_plugin_config(1, "auto")


def test_sharing_plan_cluster_wide_and_per_node():
    plan = _gpu_values.sharing_plan([_node("a"), _node("b", 4), _node("c", 2), _node("d", 2)], 1)
    assert plan["default"] == "default"
    assert sorted(plan["configs"]) == ["default", "time-slicing-2", "time-slicing-4"]
    assert plan["node_configs"] == {"b": "time-slicing-4", "c": "time-slicing-2", "d": "time-slicing-2"}
    plan = _gpu_values.sharing_plan([_node("a"), _node("b", 1)], 4)
    assert plan["default"] == "time-slicing-4"
    assert plan["node_configs"] == {"b": "default"}


def test_device_plugin_variants():
    variants = _gpu_values.device_plugin_variants([_node("a"), _node("b", 4), _node("n", None, True),
                                                   _node("m", 2, True)], 1)
    by_name = dict((v["name"], v) for v in variants)
    assert sorted(by_name) == ["nvidia-device-plugin", "nvidia-device-plugin-nixos",
                               "nvidia-device-plugin-nixos-ts2", "nvidia-device-plugin-ts4"]
    assert by_name["nvidia-device-plugin"]["exclude_hostnames"] == ["b", "m", "n"]
    assert by_name["nvidia-device-plugin-nixos"]["hostnames"] == ["n"]
    assert by_name["nvidia-device-plugin-nixos-ts2"]["config"] == "time-slicing-2"
    # a uniform cluster gets one DaemonSet without any host list
    (only,) = _gpu_values.device_plugin_variants([_node("a"), _node("b")], 2)
    assert only["config"] == "time-slicing-2" and not only["hostnames"] and not only["exclude_hostnames"]


# ------------------------------------------------------------------------ values

def test_operator_values_defaults_trust_host_roles():
    out = _gpu_values.operator_values({}, [_node("a")])
    values = out["values"]
    assert values["driver"] == {"enabled": False}
    assert values["toolkit"] == {"enabled": False}
    assert values["cdi"] == {"enabled": True, "nriPluginEnabled": False}
    assert values["mig"] == {"strategy": "none"}
    assert values["operator"]["runtimeClass"] == "nvidia"
    assert "devicePlugin" not in values
    assert any("no probe data" in line for line in out["decisions"])


def test_operator_values_auto_from_probes():
    state = {"a": {"driver": True, "toolkit": True}, "b": {"driver": True, "toolkit": False}}
    out = _gpu_values.operator_values({"k3s_data_dir": "/data/k3s"}, [_node("a"), _node("b")], state)
    values = out["values"]
    assert values["driver"]["enabled"] is False
    assert values["toolkit"]["enabled"] is True
    env = dict((e["name"], e["value"]) for e in values["toolkit"]["env"])
    assert env == {
        "CONTAINERD_CONFIG": "/data/k3s/agent/etc/containerd/config.toml",
        "CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock",
        "RUNTIME_CONFIG_SOURCE": "file=/data/k3s/agent/etc/containerd/config.toml",
        "CONTAINERD_RUNTIME_CLASS": "nvidia",
        "CONTAINERD_SET_AS_DEFAULT": "false",
        # No probe of K3s's containerd config: the folder K3s releases with drop-ins import.
        "RUNTIME_DROP_IN_CONFIG": "/data/k3s/agent/etc/containerd/config-v3.toml.d/99-nvidia.toml",
    }
    assert "toolkit.enabled=true (host toolkit missing on b)" in out["decisions"]
    # explicit settings beat auto
    out = _gpu_values.operator_values({"driver_enabled": "true", "toolkit_enabled": False}, [_node("b")], state)
    assert out["values"]["driver"]["enabled"] is True and out["values"]["toolkit"]["enabled"] is False


def test_operator_values_registry_sharing_and_user_values_last():
    settings = {
        "image_registry": "mirror.local:5000/",
        "mig_strategy": "mixed",
        "dcgm_exporter": "yes",
        "time_slicing_replicas": 2,
        "user_values": {"mig": {"strategy": "single"}, "validator": {"repository": "x/y"},
                        "devicePlugin": {"config": {"default": "custom"}}},
    }
    out = _gpu_values.operator_values(settings, [_node("a"), _node("b", 8)])
    values = out["values"]
    assert values["operator"]["repository"] == "mirror.local:5000/nvidia"
    assert values["dcgmExporter"] == {"enabled": True, "repository": "mirror.local:5000/nvidia/k8s"}
    assert values["nodeStatusExporter"]["repository"] == "mirror.local:5000/nvidia"
    assert values["driver"]["manager"]["repository"] == "mirror.local:5000/nvidia/cloud-native"
    assert values["validator"]["repository"] == "x/y"  # user wins
    assert values["mig"]["strategy"] == "single"  # user wins
    config = values["devicePlugin"]["config"]
    assert config["default"] == "custom" and config["create"] is True
    assert sorted(config["data"]) == ["time-slicing-2", "time-slicing-8"]
    assert json.loads(config["data"]["time-slicing-8"])["flags"]["migStrategy"] == "mixed"
    assert out["node_configs"] == {"b": "time-slicing-8"}


def _cmd(node, rc, stdout=""):
    return {"item": {"node_name": node}, "rc": rc, "stdout": stdout}


def _stat(node, exists=True):
    return {"item": {"node_name": node}, "stat": {"exists": exists}}


IMPORTS = 'imports = ["/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/*.toml"]'
CTR_VERSION = ("Client:\n  Version:  v2.1.4-k3s1\n  Revision: abc\n  Go version: go1.24.6\n\n"
               "Server:\n  Version:  %s\n  Revision: abc\n  UUID: 1234\n")


def test_host_state_reads_the_k3s_drop_in_import_and_containerd_version():
    state = _gpu_nodes.host_state([_stat("a"), _stat("b"), _stat("c"), _stat("d")], [],
                                  [_cmd("a", 0, IMPORTS), _cmd("b", 1), _cmd("c", 2),
                                   _cmd("d", 0, 'imports = ["/etc/containerd/conf.d/*.toml"]')],
                                  [_cmd("a", 0, CTR_VERSION % "v2.1.4-k3s1"), _cmd("b", 1, "")])
    assert state["a"] == {"driver": True, "toolkit": False,
                          "drop_in": "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d",
                          "containerd": "v2.1.4-k3s1"}
    assert state["b"] == {"driver": True, "toolkit": False, "drop_in": None}
    assert "drop_in" not in state["c"]  # no config.toml: unknown
    assert state["d"]["drop_in"] is None


def test_operator_toolkit_drop_in_follows_what_k3s_imports():
    nodes = [_node("a"), _node("b")]
    folder = "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d"
    # One node imports the folder, the other not yet (an older K3s): the folder, said so.
    state = {"a": {"driver": True, "toolkit": False, "drop_in": folder},
             "b": {"driver": True, "toolkit": False, "drop_in": None}}
    out = _gpu_values.operator_values({}, nodes, state)
    env = dict((e["name"], e["value"]) for e in out["values"]["toolkit"]["env"])
    assert env["RUNTIME_DROP_IN_CONFIG"] == folder + "/99-nvidia.toml"
    assert any("not imported yet on b" in line for line in out["decisions"])
    # No node imports one: the operator's default.
    state = {"a": {"driver": True, "toolkit": False, "drop_in": None}}
    out = _gpu_values.operator_values({}, [_node("a")], state)
    assert "RUNTIME_DROP_IN_CONFIG" not in [e["name"] for e in out["values"]["toolkit"]["env"]]
    # Explicit file, or none.
    out = _gpu_values.operator_values({"toolkit_drop_in": "/x/99-nvidia.toml"}, [_node("a")], state)
    assert {"name": "RUNTIME_DROP_IN_CONFIG", "value": "/x/99-nvidia.toml"} in out["values"]["toolkit"]["env"]
    out = _gpu_values.operator_values({"toolkit_drop_in": "", "toolkit_enabled": True}, [_node("a")], {})
    assert "RUNTIME_DROP_IN_CONFIG" not in [e["name"] for e in out["values"]["toolkit"]["env"]]
    # Nodes with different folders: refused.
    state = {"a": {"driver": True, "toolkit": False, "drop_in": folder},
             "b": {"driver": True, "toolkit": False, "drop_in": "/srv/k3s/agent/etc/containerd/config-v3.toml.d"}}
    with pytest.raises(_gpu_nodes.AddonError, match="different containerd drop-in folders"):
        _gpu_values.operator_values({}, nodes, state)
    with pytest.raises(_gpu_nodes.AddonError, match="absolute file path"):
        _gpu_values.operator_values({"toolkit_drop_in": "99-nvidia.toml", "toolkit_enabled": True}, nodes, {})


@pytest.mark.parametrize("version,allowed", [
    ("v1.7.29", False), ("1.7.30", True), ("v1.7.31-k3s1", True), ("v1.6.40", False), ("v2.0.5-k3s1", False),
    ("v2.1.0", True), ("v2.3.2-k3s2", True), ("garbage", False),
])
def test_nri_allowed_by_containerd_version(version, allowed):
    assert _gpu_values.nri_allowed(_gpu_values.containerd_version(version)) is allowed


def test_operator_nri_plugin_where_containerd_allows_it():
    nodes = [_node("a"), _node("b")]
    state = {"a": {"driver": True, "toolkit": False, "containerd": "v2.3.2-k3s2"},
             "b": {"driver": True, "toolkit": False, "containerd": "v2.1.4-k3s1"}}
    out = _gpu_values.operator_values({"cdi_nri_plugin": True}, nodes, state)
    assert out["values"]["cdi"] == {"enabled": True, "nriPluginEnabled": True}
    assert "cdi.nriPluginEnabled=true (containerd v2.3.2-k3s2 on a, v2.1.4-k3s1 on b)" in out["decisions"]
    out = _gpu_values.operator_values({"cdi_nri_plugin": True, "toolkit_enabled": True, "containerd_version": "1.7.30"}, nodes)
    assert out["values"]["cdi"]["nriPluginEnabled"] is True


@pytest.mark.parametrize("settings,state,nodes,words", [
    ({"containerd_version": "v2.0.5-k3s1"}, {}, None, "a (containerd v2.0.5-k3s1)"),
    ({}, {"a": {"driver": True, "toolkit": False, "containerd": "v1.7.29"}}, None, "needs containerd 1.7.30"),
    ({}, {"a": {"driver": True, "toolkit": False}}, None, "cannot tell which containerd K3s runs on a"),
    ({"cdi_enabled": False, "containerd_version": "2.1.4"}, {}, None, "needs gpu_operator_cdi_enabled"),
    ({"containerd_version": "2.1.4", "toolkit_enabled": "auto"}, {"a": {"driver": True, "toolkit": True}}, None,
     "set gpu_operator_toolkit_enabled"),
    ({"containerd_version": "2.1.4"}, {}, [dict(_node("a"), container_runtime="docker")], "docker mode"),
])
def test_operator_nri_plugin_refused_with_the_reason(settings, state, nodes, words):
    settings = dict({"cdi_nri_plugin": True, "toolkit_enabled": True}, **settings)
    with pytest.raises(_gpu_nodes.AddonError) as refused:
        _gpu_values.operator_values(settings, nodes or [_node("a")], state)
    assert words in str(refused.value)


def test_operator_values_rejects_bad_input():
    with pytest.raises(_gpu_nodes.AddonError, match="gpu_operator_mig_strategy"):
        _gpu_values.operator_values({"mig_strategy": "all"})
    with pytest.raises(_gpu_nodes.AddonError, match="mapping"):
        _gpu_values.operator_values({"user_values": ["driver.enabled=false"]})


def test_deep_merge_replaces_lists_and_keeps_input():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = _gpu_values.deep_merge(base, {"a": {"c": [3]}, "e": {"f": 1}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


# ------------------------------------------------------------------------ cluster JSON

def _k8s_node(name, gpus="1", labels=None):
    meta = {"name": name, "labels": dict({"nvidia.com/gpu.present": "true"}, **(labels or {}))}
    status = {"allocatable": {"cpu": "16"}, "capacity": {"cpu": "16"}}
    if gpus is not None:
        status["allocatable"]["nvidia.com/gpu"] = gpus
        status["capacity"]["nvidia.com/gpu"] = gpus
    return {"kind": "Node", "metadata": meta, "status": status}


def _pod(name, node, labels, phase="Running", ready=True, ns="gpu-operator", waiting=None,
         init=None, terminated=None):
    state = {"running": {"startedAt": "2026-11-22T10:20:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    if terminated:
        state = {"terminated": terminated}
    status = {"phase": phase, "containerStatuses": [
        {"name": "main", "ready": ready, "restartCount": 3 if waiting else 0, "state": state}]}
    if init:
        status["initContainerStatuses"] = init
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node}, "status": status}


VALIDATOR = {"app": "nvidia-operator-validator"}


def test_rollout_ready():
    doc = {"kind": "List", "items": [
        _k8s_node("gpu-a"), _k8s_node("gpu-b", "4"), _k8s_node("cpu-1", None, {"nvidia.com/gpu.present": "false"}),
        _pod("nvidia-operator-validator-x1", "gpu-a", VALIDATOR),
        _pod("nvidia-operator-validator-x2", "gpu-b", VALIDATOR),
        _pod("nvidia-cuda-validator-z", "gpu-a", {"app": "nvidia-cuda-validator"}, phase="Succeeded", ready=False),
    ]}
    status = _gpu_readiness.rollout_status(doc, ["gpu-a", "GPU-B"], VALIDATOR, "gpu-operator")
    assert status["ready"] is True
    assert status["problems"] == [] and status["failing_pods"] == []
    assert [n["allocatable"] for n in status["nodes"]] == [1, 4]
    # without inventory names, the labelled nodes are expected
    assert _gpu_readiness.rollout_status(doc, [], VALIDATOR, "gpu-operator")["ready"] is True


def test_rollout_not_ready_explains_why():
    doc = {"items": [
        _k8s_node("gpu-a", "0"), _k8s_node("gpu-b"),
        _pod("nvidia-operator-validator-x1", "gpu-a", VALIDATOR, phase="Pending", ready=False,
             init=[{"name": "driver-validation", "ready": False, "restartCount": 0,
                    "state": {"terminated": {"reason": "Completed"}}},
                   {"name": "toolkit-validation", "ready": False, "restartCount": 0,
                    "state": {"running": {}}}]),
        _pod("nvidia-device-plugin-daemonset-k2", "gpu-a", {"app": "nvidia-device-plugin-daemonset"},
             ready=False, waiting=("CrashLoopBackOff", "back-off 5m0s restarting failed container")),
        _pod("coredns-x", "gpu-a", {"k8s-app": "kube-dns"}, ns="kube-system", ready=False),
    ]}
    status = _gpu_readiness.rollout_status(doc, ["gpu-a", "gpu-b", "gpu-c"], VALIDATOR, "gpu-operator")
    assert status["ready"] is False
    text = "\n".join(status["problems"])
    assert "nvidia-operator-validator-x1 on node gpu-a is not ready (phase Pending)" in text
    assert "node gpu-a has 0 allocatable nvidia.com/gpu" in text
    assert "no pod matching app=nvidia-operator-validator is scheduled on node gpu-b" in text
    assert "node gpu-c is not registered" in text
    assert [p["name"] for p in status["failing_pods"]] == [
        "nvidia-operator-validator-x1", "nvidia-device-plugin-daemonset-k2"]
    report = _gpu_readiness.failure_report(status, {
        "gpu-operator/nvidia-device-plugin-daemonset-k2":
            "line 1\nE1122 factory.go:112] Incompatible strategy detected auto\n"},
        title="GPU Operator not ready after 900s")
    assert report.startswith("GPU Operator not ready after 900s:")
    assert "main container main: waiting CrashLoopBackOff - back-off 5m0s" in report
    assert "init container toolkit-validation: running" in report
    assert "driver-validation" not in report  # completed init containers are not noise
    assert "Incompatible strategy detected auto" in report


def test_rollout_with_no_gpu_nodes_at_all():
    status = _gpu_readiness.rollout_status({"items": [_k8s_node("cpu", None, {"nvidia.com/gpu.present": "false"})]},
                                           [], VALIDATOR)
    assert status["ready"] is False
    assert "no GPU node is known" in status["problems"][0]


def test_failing_selector_limits_failing_pods():
    doc = {"items": [_k8s_node("gpu-a"),
                     _pod("coredns-x", "gpu-a", {"k8s-app": "kube-dns"}, ns="kube-system", ready=False),
                     _pod("nvidia-device-plugin-q", "gpu-a", {"app.kubernetes.io/name": "nvidia-device-plugin"},
                          ns="kube-system")]}
    sel = {"app.kubernetes.io/name": "nvidia-device-plugin"}
    status = _gpu_readiness.rollout_status(doc, ["gpu-a"], sel, "kube-system", sel)
    assert status["ready"] is True and status["failing_pods"] == []


def test_host_state_label_changes_logs_and_finished():
    n1, n2 = _node("a"), _node("b")
    driver = [{"item": n1, "stat": {"exists": True}}, {"item": n2, "stat": {"exists": False}},
              {"item": _node("c"), "failed": True, "msg": "unreachable"}]
    toolkit = [{"item": [n1, "/usr/bin/nvidia-container-runtime"], "stat": {"exists": False}},
               {"item": [n1, "/usr/local/nvidia/toolkit/nvidia-container-runtime"], "stat": {"exists": True}},
               {"item": [n2, "/usr/bin/nvidia-container-runtime"], "stat": {"exists": False}}]
    assert _gpu_nodes.host_state(driver, toolkit) == {"a": {"driver": True, "toolkit": True},
                                                      "b": {"driver": False, "toolkit": False}}
    nodes = {"items": [_k8s_node("a", labels={"nvidia.com/device-plugin.config": "time-slicing-4"}),
                       _k8s_node("b")]}
    assert _gpu_readiness.label_changes(nodes, {"a": "time-slicing-4", "b": "time-slicing-2", "z": "x"}) == [
        {"node": "b", "value": "time-slicing-2", "current": None}]
    logs = _gpu_readiness.logs_by_pod([{"item": {"namespace": "n", "name": "p"}, "rc": 0, "stdout": "ok"},
                                       {"item": {"namespace": "n", "name": "q"}, "rc": 1, "stdout": "",
                                        "stderr": "Error from server (BadRequest): container is waiting"}])
    assert logs == {"n/p": "ok", "n/q": "Error from server (BadRequest): container is waiting"}
    pods = {"items": [_pod("x", "a", {}, phase="Succeeded"), _pod("y", "a", {}, phase="Failed"),
                      _pod("z", "a", {}, phase="Running")]}
    assert _pods_finished(pods, 1) is True
    assert _pods_finished(pods, 2) is False
    assert _pods_finished(pods, 1, rc=1) is False


def _pods_finished(doc, gpu_nodes, rc=0):
    """The smoke test's wait (builtin filters in its until): two test pods per GPU node have
    finished (Succeeded or Failed)."""
    until = yaml_expr.task("roles/gpu_smoke_test/tasks/run.yml", "Poll the test pods until all have finished")["until"]
    return yaml_expr.condition(until, {"_gpu_smoke_test_pods": {"rc": rc, "stdout": json.dumps(doc)},
                                       "_gpu_smoke_test_nodes": [{"node_name": "n%d" % i} for i in range(gpu_nodes)]})


# ------------------------------------------------------------------------ smoke test

with open(PROBE) as _probe:
    SMI_LOG = _probe.read()
SMI_LOG = SMI_LOG.split("+ nvidia-smi -L")[0].split("+ nvidia-smi\n")[1]
VECTOR_LOG = ("[Vector addition of 50000 elements]\nCopy input data from the host memory to the CUDA device\n"
              "CUDA kernel launch with 196 blocks of 256 threads\nCopy output data from the CUDA device to the "
              "host memory\nTest PASSED\nDone\n")


def test_parse_nvidia_smi_real_capture():
    smi = _nvidia_smi.parse_table(SMI_LOG)
    assert smi == {"driver_version": "580.159.04", "cuda_version": "13.0",
                   "gpus": ["NVIDIA H100 80GB HBM3"]}
    assert _nvidia_smi.parse_table("NVIDIA-SMI has failed because it couldn't communicate") == {
        "driver_version": None, "cuda_version": None, "gpus": []}


def _smoke_pod(test, node, phase="Succeeded", start="2026-11-22T10:20:00Z", end="2026-11-22T10:20:04Z",
               waiting=None):
    labels = {"k3s-gpu.io/smoke-test": test, "k3s-gpu.io/node": node}
    term = {"reason": "Completed" if phase == "Succeeded" else "Error", "exitCode": 0,
            "startedAt": start, "finishedAt": end}
    return _pod("gpu-smoke-%s-%s" % (test, node), node, labels, phase=phase, ready=False, ns="default",
                terminated=None if waiting else term, waiting=waiting)


def _smoke_doc():
    return {"items": [
        _k8s_node("gpu-a"), _k8s_node("gpu-b", "0"),
        _smoke_pod("vector-add", "gpu-a"), _smoke_pod("nvidia-smi", "gpu-a", end="2026-11-22T10:20:02Z"),
        _smoke_pod("vector-add", "gpu-b", phase="Pending",
                   waiting=("ErrImagePull", "failed to pull image: dial tcp: lookup nvcr.io")),
    ]}


def test_smoke_results():
    logs = {"default/gpu-smoke-vector-add-gpu-a": VECTOR_LOG, "default/gpu-smoke-nvidia-smi-gpu-a": SMI_LOG}
    res = _gpu_smoke.smoke_results(_smoke_doc(), logs, ["gpu-a", "gpu-b"], "nvidia")
    assert res["passed"] is False
    good, bad = res["nodes"]
    assert good["passed"] is True
    assert (good["gpu_model"], good["gpu_count"], good["driver"], good["cuda"], good["runtime_handler"],
            good["allocatable"]) == ("NVIDIA H100 80GB HBM3", 1, "580.159.04", "13.0", "nvidia", 1)
    assert good["by_test"]["vector-add"]["seconds"] == 4
    assert good["by_test"]["nvidia-smi"]["seconds"] == 2
    assert bad["passed"] is False
    assert bad["by_test"]["vector-add"]["detail"].startswith("pod phase Pending: waiting ErrImagePull")
    assert bad["by_test"]["nvidia-smi"]["detail"] == "test pod not found"
    assert bad["by_test"]["allocatable"]["result"] == "FAIL"


def test_smoke_results_log_without_pass_line_fails():
    logs = {"default/gpu-smoke-vector-add-gpu-a": VECTOR_LOG.replace("Test PASSED", "Test FAILED"),
            "default/gpu-smoke-nvidia-smi-gpu-a": SMI_LOG}
    res = _gpu_smoke.smoke_results(_smoke_doc(), logs, ["gpu-a"], "")
    (node,) = res["nodes"]
    assert node["runtime_handler"] == "default"
    assert node["by_test"]["vector-add"]["result"] == "FAIL"
    assert node["by_test"]["vector-add"]["detail"] == "'Test PASSED' not in the log"
    assert res["passed"] is False


def test_summary_table_and_report_template():
    logs = {"default/gpu-smoke-vector-add-gpu-a": VECTOR_LOG, "default/gpu-smoke-nvidia-smi-gpu-a": SMI_LOG}
    res = _gpu_smoke.smoke_results(_smoke_doc(), logs, ["gpu-a", "gpu-b"], "nvidia")
    lines = _gpu_smoke.summary_table(res)
    assert lines[0].split() == ["node", "gpu", "driver", "cuda", "runtime", "alloc", "vector-add", "nvidia-smi"]
    assert lines[2].split()[0] == "gpu-a" and lines[2].split()[-2:] == ["PASS", "PASS"]
    assert lines[3].split()[-2:] == ["FAIL", "FAIL"]

    path = os.path.join(REPO_ROOT, "roles", "gpu_smoke_test", "templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(path), trim_blocks=True,
                             undefined=jinja2.StrictUndefined)
    text = env.get_template("report.md.j2").render(
        report_results=res, report_date="2026-11-22 10:25 UTC", report_cluster="srv-1",
        report_images={"vector-add": "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04",
                       "nvidia-smi": "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04"})
    table = [line for line in text.splitlines() if line.startswith("| gpu-")]
    assert table[0] == ("| gpu-a | NVIDIA H100 80GB HBM3 | 1 | 580.159.04 | 13.0 | nvidia | 1 |"
                        " PASS (4s) | PASS (2s) |")
    assert table[1] == "| gpu-b | ? | 0 | ? | ? | nvidia | 0 | FAIL | FAIL |"
    assert "Result: **FAILED**" in text and "(1 of 2 GPU nodes passed)" in text
    assert "| vector-add | FAIL | - | pod phase Pending: waiting ErrImagePull |" in text
    assert "k3s_gpu.cluster.diagnose" in text
    assert "- nvidia-smi: `nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04`" in text
    # the report is Markdown tables with a constant column count
    for line in text.splitlines():
        if line.startswith("| gpu-") or line.startswith("| node "):
            assert line.count("|") == 10, line


def test_plan_yaml_roundtrip_of_operator_config():
    out = _gpu_values.operator_values({"time_slicing_replicas": 2}, [_node("a")],
                                      dumper=lambda d: yaml.safe_dump(d, sort_keys=False))
    data = yaml.safe_load(out["values"]["devicePlugin"]["config"]["data"]["time-slicing-2"])
    assert data["version"] == "v1"


def test_failed_tests_lists_each_failure():
    logs = {"default/gpu-smoke-vector-add-gpu-a": VECTOR_LOG, "default/gpu-smoke-nvidia-smi-gpu-a": SMI_LOG}
    res = _gpu_smoke.smoke_results(_smoke_doc(), logs, ["gpu-a", "gpu-b"], "nvidia")
    assert _gpu_smoke.failed_tests(res) == [
        "gpu-b nvidia-smi: test pod not found",
        "gpu-b vector-add: pod phase Pending: waiting ErrImagePull",
        "gpu-b allocatable: 0 allocatable nvidia.com/gpu",
    ]
    assert _gpu_smoke.failed_tests({"nodes": []}) == []
