# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm values for the NVIDIA GPU Operator and the configs of the NVIDIA device plugin
(time-slicing, MIG strategy, per-node variants), computed from the GPU node model
(``_gpu_nodes``) and what was probed on the hosts. Pure; exposed as filters in
``plugins/filter/gpu_addons.py``. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re

from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._gpu_nodes import (
    GPU_RESOURCE, AddonError, check_replicas, node_replicas,
)
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._host_profile import DEFAULT_DATA_DIR

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
    """A boolean from a setting, as Ansible reads one (convert_bool.boolean, not strict: a value
    that is not a boolean word is false); None gives ``default``."""
    if value is None:
        return default
    return boolean(value, strict=False)


def device_plugin_config(replicas=1, mig_strategy="none", fail_on_init_error=False):
    """The k8s-device-plugin config file (version v1) for one set of options."""
    if mig_strategy not in MIG_STRATEGIES:
        raise AddonError(
            "MIG strategy %r is not one of %s" % (mig_strategy, ", ".join(MIG_STRATEGIES))
        )
    replicas = check_replicas(replicas, "the cluster")
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
    default_replicas = check_replicas(default_replicas, "the cluster")
    default = config_name(default_replicas)
    configs = {default: device_plugin_config(default_replicas, mig_strategy, fail_on_init_error)}
    node_configs = {}
    for node in nodes or []:
        replicas = node_replicas(node, default_replicas)
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
    default_replicas = check_replicas(default_replicas, "the cluster")
    default_config = config_name(default_replicas)
    groups = {}
    for node in nodes or []:
        replicas = node_replicas(node, default_replicas)
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
    data_dir = settings.get("k3s_data_dir") or DEFAULT_DATA_DIR
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
        data_dir = settings.get("k3s_data_dir") or DEFAULT_DATA_DIR
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
