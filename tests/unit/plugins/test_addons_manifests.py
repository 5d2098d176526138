# -*- coding: utf-8 -*-
"""Every manifest the add-on roles render, validated against real schemas.

The roles' own planning and template tasks run through ansible-playbook on localhost
(tests/unit/plugins/addons_render/render.yml) for several variable combinations. Each
rendered Kubernetes object is validated with kubernetes-validate (strict: unknown fields
fail) against the API schemas of every supported K3s minor version; each HelmChart against
the helm.cattle.io/v1 schema in addons_data/. This proves the manifests are well-formed
for the API server; it does not prove that the images run (see docs/addons.md).
"""

from __future__ import absolute_import, division, print_function

import copy
import json
import os
import re
import tempfile

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import ansible_playbook

HERE = os.path.dirname(os.path.abspath(__file__))
RENDER_DIR = os.path.join(HERE, "addons_render")
HELMCHART_SCHEMA = os.path.join(HERE, "addons_data", "helmchart-helm.cattle.io-v1.schema.json")

# Kubernetes minor versions of the K3s releases the collection supports.
K3S_KUBERNETES_VERSIONS = ("1.34", "1.35", "1.36", "1.37")

CASES = {
    "operator-default": ["k3s-gpu-gpu-operator.yaml"],
    "operator-toolkit-mirror": ["k3s-gpu-gpu-operator.yaml"],
    "operator-timeslicing-values": ["k3s-gpu-gpu-operator.yaml"],
    "device-plugin-default": ["k3s-gpu-device-plugin.yaml", "k3s-gpu-runtimeclass.yaml"],
    "device-plugin-docker-mig": ["k3s-gpu-device-plugin.yaml"],
    "device-plugin-jetson": ["k3s-gpu-device-plugin.yaml", "k3s-gpu-runtimeclass.yaml"],
    "smoke-test-default": ["pods.yaml"],
    "smoke-test-docker-mirror": ["pods.yaml"],
}


def _run_playbook(out, name, *args):
    proc = ansible_playbook("-i", os.path.join(RENDER_DIR, "inventory.yml"), os.path.join(RENDER_DIR, name), *args,
                            env={"K3S_GPU_RENDER_DIR": out})
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def _recap(output):
    match = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert match, output[-3000:]
    return int(match.group(1))


def render_cases():
    """Render every case of render.yml into a new folder (the ``rendered`` fixture, tests/unit/conftest.py)."""
    tmp = tempfile.mkdtemp(prefix="k3s_gpu-render-")
    out = os.path.join(tmp, "out")
    for case in CASES:
        os.makedirs(os.path.join(out, case))
    _run_playbook(out, "render.yml")
    return out


def test_main_entry_points_check_mode_and_idempotence():
    tmp = tempfile.mkdtemp(prefix="k3s_gpu-main-")
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    # check mode: argument specs pass, changes are announced, nothing is written
    assert _recap(_run_playbook(out, "main_entry.yml", "--check")) == 2
    assert os.listdir(out) == []
    assert _recap(_run_playbook(out, "main_entry.yml")) == 2
    assert sorted(os.listdir(out)) == ["k3s-gpu-device-plugin.yaml", "k3s-gpu-gpu-operator.yaml"]
    # a second run changes nothing
    assert _recap(_run_playbook(out, "main_entry.yml")) == 0


def _docs(path):
    with open(path) as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def _all_docs(rendered, case):
    docs = []
    for name in CASES[case]:
        docs.extend(_docs(os.path.join(rendered, case, name)))
    return docs


def _kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def test_every_case_renders_its_files(rendered):
    for case, files in CASES.items():
        present = sorted(os.listdir(os.path.join(rendered, case)))
        assert present == sorted(files), case


@pytest.mark.parametrize("version", K3S_KUBERNETES_VERSIONS)
def test_kubernetes_objects_validate_for_each_k3s_version(rendered, version):
    checked = 0
    for case in CASES:
        for doc in _all_docs(rendered, case):
            if doc["kind"] == "HelmChart":
                continue
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    # ConfigMap + 3 DaemonSets + RuntimeClass, ConfigMap + 2 DaemonSets, ConfigMap +
    # DaemonSet + RuntimeClass, 4 GPU nodes x 2 pods, 2 GPU nodes x 2 pods.
    assert checked == 5 + 3 + 3 + 8 + 4


def test_strict_validation_rejects_a_broken_daemonset(rendered):
    ds = _kind(_all_docs(rendered, "device-plugin-default"), "DaemonSet")[0]
    broken = copy.deepcopy(ds)
    broken["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # typo'd field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K3S_KUBERNETES_VERSIONS[0], strict=True)
    broken = copy.deepcopy(ds)
    broken["spec"]["template"]["spec"]["tolerations"] = "nvidia.com/gpu"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K3S_KUBERNETES_VERSIONS[-1], strict=True)


def _helmchart(rendered, case):
    with open(HELMCHART_SCHEMA) as handle:
        schema = json.load(handle)
    (chart,) = _all_docs(rendered, case)
    jsonschema.validate(chart, schema)
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert isinstance(values, dict)
    return chart, values


def test_helmchart_default_disables_host_managed_parts(rendered):
    chart, values = _helmchart(rendered, "operator-default")
    assert chart["metadata"]["namespace"] == "kube-system"
    assert chart["spec"]["version"] == "v26.7.0"
    assert chart["spec"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert values["driver"] == {"enabled": False}
    assert values["toolkit"] == {"enabled": False}
    assert values["cdi"]["enabled"] is True
    assert values["mig"]["strategy"] == "none"
    # gpu-b (4) and nix-1 (2) differ from the cluster-wide 1: per-node configs.
    config = values["devicePlugin"]["config"]
    assert config["default"] == "default"
    assert sorted(config["data"]) == ["default", "time-slicing-2", "time-slicing-4"]
    ts4 = yaml.safe_load(config["data"]["time-slicing-4"])
    assert ts4["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]


def test_helmchart_with_operator_toolkit_points_it_at_k3s(rendered):
    chart, values = _helmchart(rendered, "operator-toolkit-mirror")
    assert chart["spec"]["repo"] == "https://charts.example.com/nvidia"
    env = dict((e["name"], e["value"]) for e in values["toolkit"]["env"])
    assert env["CONTAINERD_SOCKET"] == "/run/k3s/containerd/containerd.sock"
    assert env["CONTAINERD_CONFIG"] == "/srv/k3s/agent/etc/containerd/config.toml"
    assert env["RUNTIME_CONFIG_SOURCE"] == "file=/srv/k3s/agent/etc/containerd/config.toml"
    # The toolkit's drop-in lands in K3s's drop-in folder, which survives K3s rewriting config.toml.
    assert env["RUNTIME_DROP_IN_CONFIG"] == "/srv/k3s/agent/etc/containerd/config-v3.toml.d/99-nvidia.toml"
    assert values["driver"]["enabled"] is True
    assert values["validator"]["repository"] == "registry.example.com:5000/nvidia"
    assert values["nodeStatusExporter"]["repository"] == "registry.example.com:5000/nvidia"
    assert values["mig"]["strategy"] == "single"
    assert values["dcgmExporter"]["enabled"] is True
    assert values["cdi"]["nriPluginEnabled"] is True


def test_helmchart_user_values_win(rendered):
    _chart, values = _helmchart(rendered, "operator-timeslicing-values")
    assert values["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": True}}
    assert values["daemonsets"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    config = values["devicePlugin"]["config"]
    assert config["default"] == "time-slicing-8"


def test_helmchart_schema_rejects_unknown_spec_field(rendered):
    with open(HELMCHART_SCHEMA) as handle:
        schema = json.load(handle)
    (chart,) = _all_docs(rendered, "operator-default")
    broken = copy.deepcopy(chart)
    broken["spec"]["valuesContents"] = broken["spec"].pop("valuesContent")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = copy.deepcopy(chart)
    broken["spec"]["createNamespace"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _config_files(docs):
    (cm,) = _kind(docs, "ConfigMap")
    return dict((k, yaml.safe_load(v)) for k, v in cm["data"].items())


def _env(container):
    return dict((e["name"], e.get("value")) for e in container.get("env", []))


def test_device_plugin_default_variants(rendered):
    docs = _all_docs(rendered, "device-plugin-default")
    configs = _config_files(docs)
    daemonsets = dict((d["metadata"]["name"], d) for d in _kind(docs, "DaemonSet"))
    assert sorted(daemonsets) == ["nvidia-device-plugin", "nvidia-device-plugin-nixos-ts2",
                                  "nvidia-device-plugin-ts4"]
    for ds in daemonsets.values():
        pod = ds["spec"]["template"]["spec"]
        assert pod["runtimeClassName"] == "nvidia"
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        container = pod["containers"][0]
        assert container["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
        assert "FAIL_ON_INIT_ERROR" not in _env(container)  # gone from v0.20.0's manifest
        volumes = dict((v["name"], v) for v in pod["volumes"])
        assert volumes["device-plugin"]["hostPath"] == {"path": "/var/lib/kubelet/device-plugins",
                                                        "type": "Directory"}
        config_file = _env(container)["CONFIG_FILE"]
        assert os.path.basename(config_file) in configs
    nixos = daemonsets["nvidia-device-plugin-nixos-ts2"]["spec"]["template"]["spec"]
    assert _env(nixos["containers"][0])["LD_LIBRARY_PATH"] == "/run/opengl-driver/lib"
    mounts = dict((m["mountPath"], m) for m in nixos["containers"][0]["volumeMounts"])
    assert mounts["/run/opengl-driver"]["readOnly"] is True
    assert mounts["/nix/store"]["readOnly"] is True
    default = daemonsets["nvidia-device-plugin"]["spec"]["template"]["spec"]
    assert "LD_LIBRARY_PATH" not in _env(default["containers"][0])
    term = default["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expr = term["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr == {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["gpu-b", "nix-1"]}
    assert configs["time-slicing-4.yaml"]["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 4
    (rc,) = _kind(docs, "RuntimeClass")
    assert rc["handler"] == "nvidia"


def test_device_plugin_on_docker_has_no_runtime_class(rendered):
    docs = _all_docs(rendered, "device-plugin-docker-mig")
    daemonsets = dict((d["metadata"]["name"], d) for d in _kind(docs, "DaemonSet"))
    # Cluster-wide 4 replicas: hosts without their own value follow it; nix-1 sets 2.
    assert sorted(daemonsets) == ["nvidia-device-plugin", "nvidia-device-plugin-nixos-ts2"]
    for ds in daemonsets.values():
        pod = ds["spec"]["template"]["spec"]
        assert "runtimeClassName" not in pod
        env = _env(pod["containers"][0])
        assert env["DEVICE_DISCOVERY_STRATEGY"] == "nvml"
        assert "FAIL_ON_INIT_ERROR" not in env  # the config file's flags.failOnInitError carries it
        assert pod["containers"][0]["image"].startswith("registry.example.com:5000/nvidia/")
    default = daemonsets["nvidia-device-plugin"]["spec"]["template"]["spec"]
    assert _env(default["containers"][0])["CONFIG_FILE"].endswith("/time-slicing-4.yaml")
    configs = _config_files(docs)
    assert sorted(configs) == ["time-slicing-2.yaml", "time-slicing-4.yaml"]
    assert configs["time-slicing-4.yaml"]["flags"]["migStrategy"] == "mixed"
    assert configs["time-slicing-4.yaml"]["flags"]["failOnInitError"] is True


def test_device_plugin_jetson_custom_runtime_class(rendered):
    docs = _all_docs(rendered, "device-plugin-jetson")
    (ds,) = _kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia-cdi"
    assert _env(pod["containers"][0])["DEVICE_DISCOVERY_STRATEGY"] == "tegra"
    (rc,) = _kind(docs, "RuntimeClass")
    assert rc["metadata"]["name"] == "nvidia-cdi" and rc["handler"] == "nvidia-cdi"


@pytest.mark.parametrize("case,nodes,runtime_class,registry", [
    ("smoke-test-default", ["gpu-a", "gpu-b", "nix-1", "orin-1"], "nvidia", "nvcr.io"),
    ("smoke-test-docker-mirror", ["nix-1", "orin-1"], None, "registry.example.com:5000"),
])
def test_smoke_test_pods(rendered, case, nodes, runtime_class, registry):
    pods = _kind(_all_docs(rendered, case), "Pod")
    seen = set()
    for pod in pods:
        labels = pod["metadata"]["labels"]
        seen.add((labels["k3s-gpu.io/node"], labels["k3s-gpu.io/smoke-test"]))
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": labels["k3s-gpu.io/node"]}
        assert spec.get("runtimeClassName") == runtime_class
        assert spec["restartPolicy"] == "Never"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        (container,) = spec["containers"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
        assert container["securityContext"]["privileged"] is False
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["image"].startswith(registry + "/nvidia/")
        assert ":" in container["image"].rsplit("/", 1)[1], "image must be pinned to a tag"
    assert seen == set((n, t) for n in nodes for t in ("vector-add", "nvidia-smi"))
