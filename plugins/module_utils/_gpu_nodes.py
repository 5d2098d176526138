# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU node model of the cluster add-on roles (gpu_operator, gpu_device_plugin,
gpu_smoke_test): the one GPU-node rule (``is_gpu_node``, which the host profile applies), the
GPU nodes among inventory hosts as their host profiles (``_host_profile``) describe them, with
their per-node settings, and what was probed on them; with the names and the error the other
add-on helpers (``_gpu_values``, ``_gpu_readiness``, ``_gpu_smoke``) share. Pure: the roles
hand hostvars and probe results to these functions through the filters in
``plugins/filter/gpu_addons.py``. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as containerd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_profile
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain

# The extended resource a GPU node advertises and a GPU pod asks for.
GPU_RESOURCE = "nvidia.com/gpu"
# Bad input to an add-on helper or the inventory contract (one error type for both: the
# GPU-node rule raises it from the profile); the message says what was wrong and how to fix it.
AddonError = _host_profile.ProfileError


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


# The one GPU-node rule lives in the host profile; the add-ons' filters apply it by this name.
is_gpu_node = _host_profile.is_gpu_node


def profiles(hostvars, hosts, groups=None):
    """The host profiles (``_host_profile.host_profile``) of inventory hosts, from their hostvars:
    what ``query('k3s_gpu.cluster.host_profile', *hosts)`` gives a play, for the filters, which
    get hostvars. ``groups``: the inventory's group -> hosts map; None takes it from the hosts'
    own variables (Ansible puts ``groups`` in every host's hostvars). A host missing from
    ``hostvars`` is described by its name alone. Raises AddonError for a value outside the
    inventory contract.
    """
    result = []
    for host in hosts or []:
        hv = hostvars.get(host) or {}
        if groups is None:
            groups = plain(hv.get("groups")) or None
        inputs = _host_profile.inputs_of(hv)
        inputs.setdefault("inventory_hostname", host)
        result.append(_host_profile.host_profile(inputs, groups or {}))
    return result


def gpu_nodes(hostvars, hosts, groups=None):
    """Describe the GPU hosts among ``hosts`` from their host profiles (``profiles``).

    Returns a list of dicts: host, node_name, data_dir, container_runtime, nixos and jetson
    (the profile's OS group), replicas (the host's gpu_time_slicing_replicas; None when it
    sets none). A host is a GPU node by the profile's rule (is_gpu_node): its
    ``k3s_gpu_node`` is true, or auto and nvidia-smi found a GPU there.
    """
    result = []
    for profile in profiles(hostvars, hosts, groups):
        if not profile["gpu_node"]:
            continue
        host = profile["host"]
        replicas = (hostvars.get(host) or {}).get("gpu_time_slicing_replicas")
        result.append({
            "host": host,
            "node_name": profile["node_name"],
            # None: follow the cluster-wide value.
            "replicas": None if replicas in (None, "") else check_replicas(replicas, host),
            "nixos": profile["os_group"] == "nixos",
            "jetson": profile["os_group"] == "jetson",
            "container_runtime": profile["container_runtime"],
            "data_dir": profile["data_dir"],
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
