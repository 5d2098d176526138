# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers behind the cluster add-on roles (gpu_operator, gpu_device_plugin,
gpu_smoke_test). Nothing here talks to a cluster or a host: the roles fetch JSON with
``k3s kubectl get ... -o json`` in a few tasks and hand it to these functions (through
the filters in ``plugins/filter/gpu_addons.py``), so all decisions are unit-testable.
Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re
from datetime import datetime

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as containerd

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
MIG_STRATEGIES = ("none", "single", "mixed")
DEFAULT_CONFIG_NAME = "default"

# GPU Operator components whose images live under nvcr.io (dotted: a sub-image of a component);
# the value is the repository path below the registry host, as the chart of the pinned version
# (gpu_operator_chart_version) has it. A mirror keeps these paths (the usual `skopeo sync` /
# Harbor proxy layout). tests/unit/plugins/test_operator_chart.py checks them against the
# chart. vgpuManager has no public image (its repository is the user's own) and is left out.
OPERATOR_IMAGE_PATHS = {
    "operator": "nvidia",
    "validator": "nvidia",
    "driver": "nvidia",
    "driver.manager": "nvidia/cloud-native",
    "toolkit": "nvidia/k8s",
    "devicePlugin": "nvidia",
    "dcgm": "nvidia/cloud-native",
    "dcgmExporter": "nvidia/k8s",
    "gfd": "nvidia",
    "migManager": "nvidia/cloud-native",
    "nodeStatusExporter": "nvidia",
    "gds": "nvidia/cloud-native",
    "gdrcopy": "nvidia/cloud-native",
    "vgpuManager.driverManager": "nvidia/cloud-native",
    "vgpuDeviceManager": "nvidia/cloud-native",
    "vfioManager": "nvidia/cloud-native",
    "vfioManager.driverManager": "nvidia/cloud-native",
    "sandboxDevicePlugin": "nvidia",
    "kataSandboxDevicePlugin": "nvidia/cloud-native",
    "ccManager": "nvidia/cloud-native",
    "draDriver": "nvidia",
}

# K3s's containerd drop-in folder (config version 3) and the file the operator's toolkit writes
# there when RUNTIME_DROP_IN_CONFIG points into it.
K3S_DROP_IN_DIR = "agent/etc/containerd/config-v3.toml.d"
OPERATOR_DROP_IN_NAME = "99-nvidia.toml"
# cdi.nriPluginEnabled: the NRI plugin needs containerd 1.7.30+ (1.7 line) or 2.1+.
NRI_MIN_CONTAINERD = ((1, 7, 30), (2, 1, 0))


class AddonError(ValueError):
    """Bad input: the message says what was wrong and how to fix it."""


def deep_merge(base, override):
    """Return base updated recursively with override; lists and scalars are replaced."""
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _as_bool(value, default=False):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def _replicas(value, where):
    if value is None or value == "":
        return 1
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AddonError(
            "gpu_time_slicing_replicas for %s is %r: it must be a whole number >= 1 "
            "(1 turns time-slicing off)" % (where, value)
        )
    if number < 1:
        raise AddonError(
            "gpu_time_slicing_replicas for %s is %d: it must be >= 1 (1 turns time-slicing off)"
            % (where, number)
        )
    return number


def _node_replicas(node, default_replicas):
    if node.get("replicas") is None:
        return default_replicas
    return _replicas(node.get("replicas"), node.get("host", node.get("node_name")))


def node_name_for(host, hostvars):
    """The Kubernetes node name of an inventory host: k3s_node_name, else the short
    hostname from facts, else the inventory name (K3s uses the hostname, lowercased)."""
    hv = hostvars.get(host, {}) or {}
    name = hv.get("k3s_node_name")
    if not name:
        facts = hv.get("ansible_facts") or {}
        name = facts.get("hostname") or hv.get("ansible_hostname") or host
    return str(name).lower()


def gpu_nodes(hostvars, hosts):
    """Describe the GPU hosts among ``hosts`` from their hostvars.

    Returns a list of dicts: host, node_name, replicas (None when the host does not set
    gpu_time_slicing_replicas), nixos, jetson, container_runtime. A host is a GPU node when
    its ``k3s_gpu_node`` is true.
    """
    result = []
    for host in hosts or []:
        hv = hostvars.get(host, {}) or {}
        if not _as_bool(hv.get("k3s_gpu_node"), False):
            continue
        facts = hv.get("ansible_facts") or {}
        distribution = facts.get("distribution") or hv.get("ansible_distribution") or ""
        groups = hv.get("group_names") or []
        result.append({
            "host": host,
            "node_name": node_name_for(host, hostvars),
            # None: follow the cluster-wide value.
            "replicas": (None if hv.get("gpu_time_slicing_replicas") in (None, "")
                         else _replicas(hv.get("gpu_time_slicing_replicas"), host)),
            "nixos": distribution == "NixOS" or "nixos" in groups,
            "jetson": "jetson" in groups,
            "container_runtime": hv.get("k3s_gpu_container_runtime") or "containerd",
        })
    return result


def device_plugin_config(replicas=1, mig_strategy="none", fail_on_init_error=False):
    """The k8s-device-plugin config file (version v1) for one set of options."""
    if mig_strategy not in MIG_STRATEGIES:
        raise AddonError(
            "MIG strategy %r is not one of %s" % (mig_strategy, ", ".join(MIG_STRATEGIES))
        )
    replicas = _replicas(replicas, "the cluster")
    config = {
        "version": "v1",
        "flags": {
            "migStrategy": mig_strategy,
            "failOnInitError": bool(fail_on_init_error),
        },
    }
    if replicas > 1:
        config["sharing"] = {
            "timeSlicing": {
                "resources": [{"name": GPU_RESOURCE, "replicas": replicas}],
            },
        }
    return config


def config_name(replicas):
    """Name of the device plugin config for a replica count."""
    return DEFAULT_CONFIG_NAME if int(replicas) <= 1 else "time-slicing-%d" % int(replicas)


def sharing_plan(nodes, default_replicas=1, mig_strategy="none", fail_on_init_error=False):
    """Work out the device plugin configs needed for the cluster.

    ``default_replicas`` is the cluster-wide value; nodes whose own replicas differ get a
    config of their own. Returns dict with ``default`` (config name), ``configs``
    (name -> config dict) and ``node_configs`` (node name -> config name, only for nodes
    that differ from the default).
    """
    default_replicas = _replicas(default_replicas, "the cluster")
    default = config_name(default_replicas)
    configs = {default: device_plugin_config(default_replicas, mig_strategy, fail_on_init_error)}
    node_configs = {}
    for node in nodes or []:
        replicas = _node_replicas(node, default_replicas)
        if replicas == default_replicas:
            continue
        name = config_name(replicas)
        configs.setdefault(name, device_plugin_config(replicas, mig_strategy, fail_on_init_error))
        node_configs[node["node_name"]] = name
    return {"default": default, "configs": configs, "node_configs": node_configs}


def device_plugin_variants(nodes, default_replicas=1, base_name="nvidia-device-plugin"):
    """Split GPU nodes into DaemonSet variants for the static device plugin.

    Nodes differ by the device plugin config (time-slicing replicas) and by NixOS (library
    path and /nix/store mounts). The variant with the cluster defaults has no host list and
    excludes every node that another variant takes, so GPU nodes added later still get the
    default plugin. Returns a list of dicts: name, config, nixos, hostnames (In),
    exclude_hostnames (NotIn).
    """
    default_replicas = _replicas(default_replicas, "the cluster")
    default_config = config_name(default_replicas)
    groups = {}
    for node in nodes or []:
        replicas = _node_replicas(node, default_replicas)
        key = (config_name(replicas), bool(node.get("nixos")))
        groups.setdefault(key, []).append(node["node_name"])
    special = sorted(
        (key, sorted(names)) for key, names in groups.items()
        if key != (default_config, False)
    )
    excluded = sorted(name for _key, names in special for name in names)
    variants = [{
        "name": base_name,
        "config": default_config,
        "nixos": False,
        "hostnames": [],
        "exclude_hostnames": excluded,
    }]
    for (cfg, nixos), names in special:
        suffix = []
        if nixos:
            suffix.append("nixos")
        if cfg != DEFAULT_CONFIG_NAME:
            suffix.append(cfg.replace("time-slicing-", "ts"))
        variants.append({
            "name": "%s-%s" % (base_name, "-".join(suffix or ["default"])),
            "config": cfg,
            "nixos": nixos,
            "hostnames": names,
            "exclude_hostnames": [],
        })
    return variants


def _toolkit_env(settings, drop_in=None):
    data_dir = settings.get("k3s_data_dir") or "/var/lib/rancher/k3s"
    config = settings.get("toolkit_containerd_config") or (
        "%s/agent/etc/containerd/config.toml" % data_dir
    )
    socket = settings.get("toolkit_containerd_socket") or "/run/k3s/containerd/containerd.sock"
    runtime_class = settings.get("runtime_class") or "nvidia"
    env = [
        {"name": "CONTAINERD_CONFIG", "value": config},
        {"name": "CONTAINERD_SOCKET", "value": socket},
        {"name": "RUNTIME_CONFIG_SOURCE", "value": "file=%s" % config},
        {"name": "CONTAINERD_RUNTIME_CLASS", "value": runtime_class},
        {"name": "CONTAINERD_SET_AS_DEFAULT",
         "value": "true" if _as_bool(settings.get("toolkit_set_as_default")) else "false"},
    ]
    if drop_in:
        env.append({"name": "RUNTIME_DROP_IN_CONFIG", "value": drop_in})
    return env


def _toolkit_drop_in(settings, nodes, host_state):
    """(RUNTIME_DROP_IN_CONFIG or None, sentence): the operator's toolkit writes its containerd
    drop-in into K3s's drop-in folder, which K3s's generated config imports, so the runtime
    survives K3s rewriting config.toml at every start."""
    wanted = settings.get("toolkit_drop_in")
    if wanted is None or str(wanted).lower() == "auto":
        containerd_nodes = [n for n in nodes if n.get("container_runtime", "containerd") == "containerd"]
        probed = dict((n["node_name"], host_state[n["node_name"]]["drop_in"]) for n in containerd_nodes
                      if "drop_in" in host_state.get(n["node_name"], {}))
        folders = sorted(set(f for f in probed.values() if f))
        if len(folders) > 1:
            raise AddonError(
                "the GPU nodes' K3s import different containerd drop-in folders (%s): the operator's toolkit "
                "takes one RUNTIME_DROP_IN_CONFIG for every node; set gpu_operator_toolkit_drop_in to the "
                "file to use, or '' for the operator's default"
                % "; ".join("%s: %s" % (node, folder) for node, folder in sorted(probed.items())))
        if folders:
            without = sorted(node for node, folder in probed.items() if not folder)
            return ("%s/%s" % (folders[0], OPERATOR_DROP_IN_NAME),
                    "RUNTIME_DROP_IN_CONFIG in %s, which K3s imports (probed%s)"
                    % (folders[0], "; not imported yet on %s" % ", ".join(without) if without else ""))
        if probed:
            return None, ("no GPU node's K3s imports a containerd drop-in folder: the operator's toolkit keeps its "
                          "default drop-in and import, which K3s drops when it rewrites config.toml")
        data_dir = settings.get("k3s_data_dir") or "/var/lib/rancher/k3s"
        folder = "%s/%s" % (data_dir.rstrip("/"), K3S_DROP_IN_DIR)
        return ("%s/%s" % (folder, OPERATOR_DROP_IN_NAME),
                "RUNTIME_DROP_IN_CONFIG in %s (no probe data: the folder K3s releases with containerd "
                "drop-ins import)" % folder)
    if not wanted:
        return None, "RUNTIME_DROP_IN_CONFIG not set (gpu_operator_toolkit_drop_in is empty)"
    if not str(wanted).startswith("/"):
        raise AddonError("gpu_operator_toolkit_drop_in is %r: give an absolute file path, auto, or '' (none)"
                         % wanted)
    return str(wanted), "RUNTIME_DROP_IN_CONFIG=%s (gpu_operator_toolkit_drop_in)" % wanted


def containerd_version(text):
    """(major, minor, patch) from a containerd version (``v2.1.4-k3s1``, ``1.7.30``); None if not one."""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", str(text or "").strip())
    return tuple(int(g) for g in match.groups()) if match else None


def nri_allowed(version):
    """True when containerd ``version`` (a tuple) can run the GPU Operator's NRI plugin."""
    if version is None:
        return False
    if version[0] == 1:
        return version[:2] == (1, 7) and version >= NRI_MIN_CONTAINERD[0]
    return version >= NRI_MIN_CONTAINERD[1]


def _check_nri(settings, nodes, host_state, cdi_enabled, toolkit_enabled):
    """Refuse cdi.nriPluginEnabled where it cannot work; returns the decision sentence."""
    if not cdi_enabled:
        raise AddonError("gpu_operator_cdi_nri_plugin needs gpu_operator_cdi_enabled: the NRI plugin injects CDI "
                         "devices, and the operator refuses the plugin with CDI off")
    if not toolkit_enabled:
        raise AddonError("gpu_operator_cdi_nri_plugin needs the operator's own toolkit (the operator refuses the NRI "
                         "plugin with toolkit.enabled=false): set gpu_operator_toolkit_enabled: true")
    docker = sorted(n["node_name"] for n in nodes if n.get("container_runtime", "containerd") != "containerd")
    if docker:
        raise AddonError("gpu_operator_cdi_nri_plugin needs K3s's containerd, but %s run K3s in docker mode "
                         "(k3s_gpu_container_runtime: docker), which has no NRI" % ", ".join(docker))
    explicit = settings.get("containerd_version") or ""
    found, unknown, too_old = {}, [], []
    for node in nodes:
        text = explicit or (host_state.get(node["node_name"]) or {}).get("containerd") or ""
        version = containerd_version(text)
        if version is None:
            unknown.append(node["node_name"])
        elif not nri_allowed(version):
            too_old.append("%s (containerd %s)" % (node["node_name"], text))
        else:
            found[node["node_name"]] = text
    if unknown:
        raise AddonError("gpu_operator_cdi_nri_plugin: cannot tell which containerd K3s runs on %s (the probe "
                         "asks 'k3s ctr version' on each GPU node, which needs K3s running there): set "
                         "gpu_operator_containerd_version to the containerd version of the nodes' K3s"
                         % ", ".join(sorted(unknown)))
    if too_old:
        raise AddonError("gpu_operator_cdi_nri_plugin: the GPU Operator's NRI plugin needs containerd 1.7.30 or "
                         "later in the 1.7 line, or 2.1 or later; %s: upgrade K3s or set "
                         "gpu_operator_cdi_nri_plugin: false" % ", ".join(sorted(too_old)))
    return "cdi.nriPluginEnabled=true (containerd %s)" % ", ".join(
        "%s on %s" % (version, node) for node, version in sorted(found.items()))


def _resolve_auto(value, auto_value):
    if value is None or str(value).lower() == "auto":
        return bool(auto_value)
    return _as_bool(value)


def operator_values(settings, nodes=None, host_state=None, dumper=None):
    """Helm values for the GPU Operator, computed from what the hosts already have.

    ``settings`` keys (all optional): driver_enabled, toolkit_enabled (true, false or
    "auto"), k3s_data_dir, toolkit_containerd_config, toolkit_containerd_socket,
    toolkit_set_as_default, toolkit_drop_in ("auto", a file, or "" for none), runtime_class,
    cdi_enabled, cdi_nri_plugin, containerd_version, mig_strategy, dcgm_exporter,
    time_slicing_replicas, fail_on_init_error, image_registry, user_values (merged last).
    ``nodes``: output of gpu_nodes(). ``host_state``: node name -> {"driver": bool,
    "toolkit": bool, optionally "drop_in": the K3s drop-in folder its generated containerd
    config imports (None: none), "containerd": the version of K3s's containerd} as probed on
    the hosts (kernel driver loaded; nvidia-container-runtime present). "auto" disables the operator's driver (toolkit) when every GPU node already
    has one; with no probe data it assumes the collection's driver/toolkit roles ran.
    ``dumper`` turns a device plugin config dict into the ConfigMap text (default JSON,
    which is valid YAML; the filter passes a YAML dumper).
    Returns dict with ``values``, ``decisions`` (sentences explaining them) and
    ``node_configs`` (node name -> device plugin config name for per-node time-slicing).
    """
    dumper = dumper or (lambda data: json.dumps(data, indent=2, sort_keys=True))
    settings = settings or {}
    nodes = nodes or []
    host_state = host_state or {}
    decisions = []

    mig_strategy = settings.get("mig_strategy") or "none"
    if mig_strategy not in MIG_STRATEGIES:
        raise AddonError(
            "gpu_operator_mig_strategy is %r: use one of %s"
            % (mig_strategy, ", ".join(MIG_STRATEGIES))
        )

    def _all_hosts_have(key):
        known = [host_state[n["node_name"]] for n in nodes if n["node_name"] in host_state]
        if not known:
            return True, "no probe data; assuming the collection's host roles provide it"
        missing = sorted(n["node_name"] for n in nodes
                         if n["node_name"] in host_state
                         and not host_state[n["node_name"]].get(key))
        if missing:
            return False, "missing on %s" % ", ".join(missing)
        return True, "present on every GPU node"

    have_driver, why_driver = _all_hosts_have("driver")
    driver_enabled = _resolve_auto(settings.get("driver_enabled"), not have_driver)
    decisions.append("driver.enabled=%s (host driver %s)"
                     % (str(driver_enabled).lower(), why_driver))

    have_toolkit, why_toolkit = _all_hosts_have("toolkit")
    toolkit_enabled = _resolve_auto(settings.get("toolkit_enabled"), not have_toolkit)
    decisions.append("toolkit.enabled=%s (host toolkit %s)"
                     % (str(toolkit_enabled).lower(), why_toolkit))

    cdi_enabled = _as_bool(settings.get("cdi_enabled"), True)
    nri = _as_bool(settings.get("cdi_nri_plugin"), False)
    if nri:
        decisions.append(_check_nri(settings, nodes, host_state, cdi_enabled, toolkit_enabled))
    values = {
        "driver": {"enabled": driver_enabled},
        "toolkit": {"enabled": toolkit_enabled},
        "operator": {"runtimeClass": settings.get("runtime_class") or "nvidia"},
        "cdi": {
            "enabled": cdi_enabled,
            "nriPluginEnabled": nri,
        },
        "mig": {"strategy": mig_strategy},
        "dcgmExporter": {"enabled": _as_bool(settings.get("dcgm_exporter"), False)},
    }
    if toolkit_enabled:
        drop_in, why_drop_in = _toolkit_drop_in(settings, nodes, host_state)
        values["toolkit"]["env"] = _toolkit_env(settings, drop_in)
        decisions.append("toolkit env points the toolkit container at K3s's containerd; " + why_drop_in)

    plan = sharing_plan(nodes, settings.get("time_slicing_replicas", 1), mig_strategy,
                        settings.get("fail_on_init_error", False))
    if len(plan["configs"]) > 1 or plan["default"] != DEFAULT_CONFIG_NAME:
        values["devicePlugin"] = {"config": {
            "create": True,
            "name": settings.get("device_plugin_config_name") or "k3s-gpu-device-plugin-config",
            "default": plan["default"],
            "data": dict(
                (name, dumper(cfg)) for name, cfg in sorted(plan["configs"].items())
            ),
        }}
        decisions.append("time-slicing: default config %s, per-node %s"
                         % (plan["default"], plan["node_configs"] or "none"))

    registry = (settings.get("image_registry") or "").rstrip("/")
    if registry:
        for component, path in sorted(OPERATOR_IMAGE_PATHS.items()):
            node = values
            for part in component.split("."):
                node = node.setdefault(part, {})
            node["repository"] = "%s/%s" % (registry, path)
        decisions.append("images from %s" % registry)

    user_values = settings.get("user_values") or {}
    if not isinstance(user_values, dict):
        raise AddonError("gpu_operator_values must be a mapping of Helm values, got %s"
                         % type(user_values).__name__)
    values = deep_merge(values, user_values)
    if user_values:
        decisions.append("user values merged last: %s" % ", ".join(sorted(user_values)))
    return {"values": values, "decisions": decisions, "node_configs": plan["node_configs"]}


# --------------------------------------------------------------------------- cluster JSON


def _items(doc):
    if isinstance(doc, dict):
        if "items" in doc:
            return doc.get("items") or []
        if doc.get("kind"):
            return [doc]
        return []
    return list(doc or [])


def _kind(items, kind):
    return [i for i in items if isinstance(i, dict) and i.get("kind") == kind]


def _int_quantity(value):
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
            total += _int_quantity(value)
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
    items = _items(doc)
    node_objs = dict(((n.get("metadata") or {}).get("name"), n) for n in _kind(items, "Node"))
    pods = [p for p in _kind(items, "Pod")
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


def host_state(driver_probe, toolkit_probe, containerd_probe=None, version_probe=None):
    """Node name -> {"driver": bool, "toolkit": bool, ...} from looped probe results.

    ``driver_probe``: results of stat on /proc/driver/nvidia/version, loop item = node dict.
    ``toolkit_probe``: results of stat on toolkit paths, loop item = [node dict, path].
    ``containerd_probe``: results of grep for the ``imports`` line of K3s's generated
    containerd config, loop item = node dict: rc 0 sets "drop_in" to the K3s drop-in folder it
    imports (None for another import), rc 1 (no imports line) to None; a missing file (rc 2)
    leaves it out.
    ``version_probe``: results of ``k3s ctr version``, loop item = node dict: the server's
    version sets "containerd".
    Hosts whose probe failed or was skipped are left out (unknown).
    """
    state = {}
    for result in driver_probe or []:
        node = result.get("item") or {}
        if "stat" not in result or not node.get("node_name"):
            continue
        state.setdefault(node["node_name"], {"driver": False, "toolkit": False})
        state[node["node_name"]]["driver"] = bool(result["stat"].get("exists"))
    for result in toolkit_probe or []:
        item = result.get("item") or [{}, ""]
        node = item[0] if item else {}
        if "stat" not in result or not node.get("node_name") or node["node_name"] not in state:
            continue
        if result["stat"].get("exists"):
            state[node["node_name"]]["toolkit"] = True
    for result in containerd_probe or []:
        node = result.get("item") or {}
        if not node.get("node_name") or node["node_name"] not in state or result.get("rc") not in (0, 1):
            continue
        found = containerd.drop_in_import_from_text(result.get("stdout") or "") if result["rc"] == 0 else None
        state[node["node_name"]]["drop_in"] = found[1] if found else None
    for result in version_probe or []:
        node = result.get("item") or {}
        if not node.get("node_name") or node["node_name"] not in state or result.get("rc") != 0:
            continue
        match = re.search(r"Server:\s*\n\s*Version:\s*(\S+)", result.get("stdout") or "")
        if match:
            state[node["node_name"]]["containerd"] = match.group(1)
    return state


def label_changes(doc, wanted, label="nvidia.com/device-plugin.config"):
    """Nodes whose ``label`` differs from ``wanted`` (node name -> value); nodes not in the
    cluster are left out. Returns a sorted list of {"node", "value", "current"}."""
    current = {}
    for node in _kind(_items(doc), "Node"):
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


def pods_finished(doc, expected):
    """True when at least ``expected`` pods have finished (Succeeded or Failed)."""
    done = [p for p in _kind(_items(doc), "Pod")
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    return len(done) >= int(expected)


# --------------------------------------------------------------------------- smoke test

_SMI_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>[0-9.]+)\s+Driver Version:\s*(?P<driver>[0-9.]+)"
    r"\s+CUDA Version:\s*(?P<cuda>[0-9.]+|N/A)")
_SMI_GPU_ROW = re.compile(r"^\|\s+(?P<index>\d+)\s+(?P<name>.+?)\s{2,}(On|Off)\s+\|")


def parse_nvidia_smi(text):
    """Driver, CUDA version and GPU names from the default ``nvidia-smi`` table."""
    result = {"driver_version": None, "cuda_version": None, "gpus": []}
    for line in (text or "").splitlines():
        match = _SMI_HEADER.search(line)
        if match:
            result["driver_version"] = match.group("driver")
            cuda = match.group("cuda")
            result["cuda_version"] = None if cuda == "N/A" else cuda
            continue
        match = _SMI_GPU_ROW.match(line)
        if match:
            result["gpus"].append(match.group("name").strip())
    return result


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
    items = _items(doc)
    logs = logs or {}
    node_objs = dict(((n.get("metadata") or {}).get("name"), n) for n in _kind(items, "Node"))
    pods = _kind(items, "Pod")
    results = []
    for name in [str(n).lower() for n in expected_nodes or []]:
        node = node_objs.get(name) or {}
        labels = (node.get("metadata") or {}).get("labels") or {}
        capacity = ((node.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE)
        entry = {
            "node": name,
            "gpu_model": labels.get("nvidia.com/gpu.product") or "",
            "gpu_count": _int_quantity(labels.get("nvidia.com/gpu.count") or capacity or 0),
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
                smi = parse_nvidia_smi(text)
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
