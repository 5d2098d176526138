# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU node model of the cluster add-on roles (gpu_operator, gpu_device_plugin,
gpu_smoke_test): which inventory hosts are GPU nodes, their Kubernetes node names and
per-node settings, and what was probed on them; with the names and the error the other
add-on helpers (``_gpu_values``, ``_gpu_readiness``, ``_gpu_smoke``) share. Pure: the roles
hand hostvars and probe results to these functions through the filters in
``plugins/filter/gpu_addons.py``. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as containerd

# The extended resource a GPU node advertises and a GPU pod asks for.
GPU_RESOURCE = "nvidia.com/gpu"


class AddonError(ValueError):
    """Bad input: the message says what was wrong and how to fix it."""


def as_bool(value, default=False):
    """A boolean from an inventory value: true, "true", "yes", "on", "1", "y" (any case) are
    true, any other value false; None gives ``default``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def check_replicas(value, where):
    """gpu_time_slicing_replicas as a whole number >= 1 (empty: 1), else AddonError naming ``where``."""
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


def node_replicas(node, default_replicas):
    """The time-slicing replicas of a node of gpu_nodes(): its own, else ``default_replicas``."""
    if node.get("replicas") is None:
        return default_replicas
    return check_replicas(node.get("replicas"), node.get("host", node.get("node_name")))


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
        if not as_bool(hv.get("k3s_gpu_node"), False):
            continue
        facts = hv.get("ansible_facts") or {}
        distribution = facts.get("distribution") or hv.get("ansible_distribution") or ""
        groups = hv.get("group_names") or []
        result.append({
            "host": host,
            "node_name": node_name_for(host, hostvars),
            # None: follow the cluster-wide value.
            "replicas": (None if hv.get("gpu_time_slicing_replicas") in (None, "")
                         else check_replicas(hv.get("gpu_time_slicing_replicas"), host)),
            "nixos": distribution == "NixOS" or "nixos" in groups,
            "jetson": "jetson" in groups,
            "container_runtime": hv.get("k3s_gpu_container_runtime") or "containerd",
        })
    return result


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
