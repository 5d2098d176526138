# -*- coding: utf-8 -*-
"""Device plugin peer, in its documented fallback form.

The issue asks for the real plugin's config loader and its static manifest, both from the Go
module github.com/NVIDIA/k8s-device-plugin at the pinned version. The Go module proxy does not
serve it; the one allowed try (``go get github.com/NVIDIA/k8s-device-plugin@v0.20.0``) answered:

    reading https://proxy.golang.org/github.com/%21n%21v%21i%21d%21i%21a/k8s-device-plugin/@v/v0.20.0.info:
    403 Forbidden; server response: This module version is not available.

So neither the loader (api/config/v1) nor the manifest (deployments/static/) can be read here.
The fallback, checked below:

1. Every device plugin config the roles generate (gpu_device_plugin's ConfigMap, gpu_operator's
   ``devicePlugin.config.data``, and the generator for every replica count and MIG strategy) is
   validated against the config schema's documented facts (CONFIG_FACTS: field names, types,
   ``version: v1``, MIG strategies, time-slicing replicas of at least 2).
2. The rendered DaemonSets are compared with the documented facts of the v0.20.0 static
   manifest (MANIFEST_FACTS) and every field they carry is listed in FIELDS, either as the
   upstream manifest's or as the project's own with the reason; a field in neither fails.

What this does not prove: that the plugin's own loader accepts the configs (its parsing,
defaults and any rule not recorded here), or that the static manifest has no field the facts
do not record. docs/development.md ("Upstream peers") says the same.
"""

from __future__ import absolute_import, division, print_function

import itertools

import pytest
import yaml

from test_addons_manifests import CASES, _all_docs, _kind
from ansible_collections.k3s_gpu.cluster.plugins.filter import gpu_addons as filters

PINNED = "v0.20.0"  # roles/gpu_device_plugin/defaults/main.yml
PEER = "NVIDIA k8s-device-plugin %s (documented facts; the Go module is not served)" % PINNED

# -- 1. the config file (api/config/v1), as its documentation describes it -----------------------
CONFIG_FACTS = {
    "top": {"version", "flags", "resources", "sharing", "imex"},
    "version": "v1",
    "flags": {"migStrategy", "failOnInitError", "mpsRoot", "nvidiaDriverRoot", "nvidiaDevRoot", "gdsEnabled",
              "mofedEnabled", "useNodeFeatureAPI", "deviceDiscoveryStrategy", "plugin", "gfd"},
    "mig_strategies": {"none", "single", "mixed"},
    "sharing": {"timeSlicing", "mps"},
    "replicated": {"renameByDefault", "failRequestsGreaterThanOne", "resources"},
    "resource": {"name", "rename", "devices", "replicas"},
    "min_replicas": 2,
}


def config_problems(config):
    """What the documented schema says is wrong with a device plugin config (a dict)."""
    facts = CONFIG_FACTS
    if not isinstance(config, dict):
        return ["the config is not a mapping"]
    problems = ["unknown top-level field %r" % k for k in sorted(set(config) - facts["top"])]
    if config.get("version") != facts["version"]:
        problems.append("version is %r, not %r" % (config.get("version"), facts["version"]))
    flags = config.get("flags") or {}
    problems += ["unknown flag %r" % k for k in sorted(set(flags) - facts["flags"])]
    if "migStrategy" in flags and flags["migStrategy"] not in facts["mig_strategies"]:
        problems.append("flags.migStrategy %r is not one of %s"
                        % (flags["migStrategy"], ", ".join(sorted(facts["mig_strategies"]))))
    if "failOnInitError" in flags and not isinstance(flags["failOnInitError"], bool):
        problems.append("flags.failOnInitError must be true or false")
    sharing = config.get("sharing") or {}
    problems += ["unknown sharing field %r" % k for k in sorted(set(sharing) - facts["sharing"])]
    for kind in sorted(set(sharing) & facts["sharing"]):
        replicated = sharing[kind] or {}
        problems += ["unknown sharing.%s field %r" % (kind, k) for k in sorted(set(replicated) - facts["replicated"])]
        for resource in replicated.get("resources") or []:
            problems += ["unknown sharing.%s resource field %r" % (kind, k)
                         for k in sorted(set(resource) - facts["resource"])]
            name = str(resource.get("name", ""))
            if name != "nvidia.com/gpu" and not name.startswith("nvidia.com/mig-"):
                problems.append("sharing.%s resource %r is not nvidia.com/gpu or nvidia.com/mig-<profile>" % (kind, name))
            replicas = resource.get("replicas")
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < facts["min_replicas"]:
                problems.append("sharing.%s resource %s has replicas %r (a whole number >= %d)"
                                % (kind, name, replicas, facts["min_replicas"]))
    return problems


# -- 2. the static DaemonSet of v0.20.0, as documented (../shared/REFERENCE.md) -------------------
MANIFEST_FACTS = [
    ("no FAIL_ON_INIT_ERROR env (dropped in v0.20.0)",
     lambda pod: all(e["name"] != "FAIL_ON_INIT_ERROR" for c in pod["containers"] for e in c.get("env", []))),
    ("the device-plugins hostPath is a Directory (new in v0.20.0)",
     lambda pod: {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"} in
     [v.get("hostPath") for v in pod["volumes"]]),
    ("the kubelet's device-plugins folder is mounted at the same path",
     lambda pod: "/var/lib/kubelet/device-plugins" in [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]),
    ("tolerates nvidia.com/gpu",
     lambda pod: any(t.get("key") == "nvidia.com/gpu" for t in pod["tolerations"])),
    ("the image is k8s-device-plugin at the pinned tag",
     lambda pod: pod["containers"][0]["image"].endswith("/nvidia/k8s-device-plugin:%s" % PINNED)),
]

# Every field path of the rendered DaemonSets: the upstream manifest's, or the project's own (reason).
UPSTREAM = "as in the upstream static manifest"
FIELDS = {
    "apiVersion": UPSTREAM,
    "kind": UPSTREAM,
    "metadata.name": "one DaemonSet per kind of GPU node (nvidia-device-plugin[-<variant>])",
    "metadata.namespace": UPSTREAM + " (kube-system by default, gpu_device_plugin_namespace)",
    "metadata.labels": "app.kubernetes.io/* labels instead of upstream's own, for the role's pod selector",
    "spec.selector.matchLabels": "app.kubernetes.io/name and instance: one selector per variant",
    "spec.updateStrategy.type": UPSTREAM,
    "spec.template.metadata.labels": "the selector's labels",
    "spec.template.metadata.annotations": "checksum of the config file: a config change rolls the pods",
    "spec.template.spec.priorityClassName": UPSTREAM,
    "spec.template.spec.runtimeClassName": "nvidia unless nvidia is the default runtime: K3s's default runtime is "
                                           "runc, without it the plugin sees no GPU",
    "spec.template.spec.nodeSelector": "only GPU nodes (nvidia.com/gpu.present=true)",
    "spec.template.spec.affinity": "variants split the GPU nodes by hostname (per-node time-slicing, NixOS)",
    "spec.template.spec.tolerations": UPSTREAM + " (nvidia.com/gpu), plus CriticalAddonsOnly for K3s servers",
    "spec.template.spec.containers.name": UPSTREAM,
    "spec.template.spec.containers.image": UPSTREAM + " (registry settable for mirrors)",
    "spec.template.spec.containers.imagePullPolicy": "settable for airgapped nodes",
    "spec.template.spec.containers.env": "CONFIG_FILE (the ConfigMap's config of the variant), "
                                         "DEVICE_DISCOVERY_STRATEGY when not auto, LD_LIBRARY_PATH on NixOS",
    "spec.template.spec.containers.securityContext": UPSTREAM + " (no privilege escalation, all capabilities dropped)",
    "spec.template.spec.containers.volumeMounts": UPSTREAM + " (device-plugins), plus the config and NixOS mounts",
    "spec.template.spec.volumes": UPSTREAM + " (device-plugins hostPath, type Directory), plus the ConfigMap "
    "and NixOS hostPaths",
}


def _paths(value, prefix=""):
    """Field paths of a manifest down to the listed depth (lists are looked into)."""
    if prefix in FIELDS:
        return {prefix}
    if isinstance(value, list):
        return set().union(*[_paths(item, prefix) for item in value]) if value else {prefix}
    if isinstance(value, dict):
        return set().union(*[_paths(v, "%s.%s" % (prefix, k) if prefix else k) for k, v in value.items()])
    return {prefix}


def _configs(rendered):  # ``rendered``: tests/unit/conftest.py, once per test session
    """{label: config text} of every device plugin config the roles rendered."""
    found = {}
    for case in CASES:
        for doc in _all_docs(rendered, case):
            if doc["kind"] == "ConfigMap" and case.startswith("device-plugin"):
                found.update(("%s/%s" % (case, k), v) for k, v in doc["data"].items())
            if doc["kind"] == "HelmChart":
                values = yaml.safe_load(doc["spec"]["valuesContent"])
                data = ((values.get("devicePlugin") or {}).get("config") or {}).get("data") or {}
                found.update(("%s/%s" % (case, k), v) for k, v in data.items())
    return found


def test_every_rendered_config_fits_the_documented_schema(rendered):
    configs = _configs(rendered)
    # device-plugin-default: default, ts2, ts4 (MIG none); docker-mig: ts2, ts4 (MIG mixed); jetson:
    # default; operator-default: default, ts2, ts4; operator-toolkit-mirror: the same with MIG single;
    # operator-timeslicing-values: ts2, ts4, ts8.
    assert len(configs) == 15, sorted(configs)
    failures = ["%s: %s" % (label, "; ".join(config_problems(yaml.safe_load(text))))
                for label, text in sorted(configs.items()) if config_problems(yaml.safe_load(text))]
    assert not failures, "%s refuses:\n%s" % (PEER, "\n".join(failures))


@pytest.mark.parametrize("replicas,mig_strategy,fail_on_init_error",
                         list(itertools.product([1, 2, 4, 8], ["none", "single", "mixed"], [False, True])))
def test_every_generated_config_fits_the_documented_schema(replicas, mig_strategy, fail_on_init_error):
    nodes = [{"host": "h", "node_name": "h", "replicas": None, "nixos": False}]
    plan = filters.gpu_sharing_plan(nodes, replicas, mig_strategy, fail_on_init_error)
    for name, text in plan["config_text"].items():
        config = yaml.safe_load(text)
        assert config_problems(config) == [], "%s refuses config %s: %s" % (PEER, name, text)
        assert config["flags"] == {"migStrategy": mig_strategy, "failOnInitError": fail_on_init_error}


@pytest.mark.parametrize("change,words", [
    ({"version": "v2"}, "version"),
    ({"sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 1}]}}}, "replicas"),
    ({"sharing": {"timeSlicing": {"resources": [{"name": "gpu", "replicas": 2}]}}}, "nvidia.com/gpu"),
    ({"flags": {"migStrategy": "all"}}, "migStrategy"),
    ({"flags": {"failOnInitErrors": True}}, "unknown flag"),
    ({"sharing": {"timeslicing": {}}}, "unknown sharing field"),
])
def test_schema_check_can_fail(change, words):
    config = dict({"version": "v1", "flags": {"migStrategy": "none"}}, **change)
    assert any(words in p for p in config_problems(config))


def test_daemonsets_match_the_documented_manifest_and_list_every_field(rendered):
    checked = 0
    unknown = set()
    for case in ("device-plugin-default", "device-plugin-docker-mig", "device-plugin-jetson"):
        for ds in _kind(_all_docs(rendered, case), "DaemonSet"):
            pod = ds["spec"]["template"]["spec"]
            broken = [fact for fact, holds in MANIFEST_FACTS if not holds(pod)]
            assert not broken, "%s: %s differs from %s: %s" % (case, ds["metadata"]["name"], PEER, "; ".join(broken))
            unknown |= _paths(ds) - set(FIELDS)
            checked += 1
    assert checked == 6
    assert not unknown, ("fields the rendered DaemonSets carry that neither the upstream manifest's facts nor the "
                         "project's list (FIELDS, with a reason) name: %s" % ", ".join(sorted(unknown)))


def test_field_list_catches_an_unlisted_field(rendered):
    (ds,) = _kind(_all_docs(rendered, "device-plugin-jetson"), "DaemonSet")
    ds["spec"]["template"]["spec"]["hostNetwork"] = True
    assert _paths(ds) - set(FIELDS) == {"spec.template.spec.hostNetwork"}
