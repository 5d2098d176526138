# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host profile: what every role and playbook of the collection needs to know about an
inventory host, resolved from the inventory contract in one place.

The contract (docs/architecture.md, "The inventory contract") is a handful of collection-wide
variables without a role prefix, the inventory groups and the host's facts. ``host_profile``
turns them into one dict; the ``k3s_gpu.cluster.host_profile`` lookup hands it to the roles'
defaults, the playbooks' grouping, diagnose and the add-ons. Pure: no I/O; Python 3.9+ standard
library and Ansible's boolean parser only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain

# The OS groups of the inventory, in the order a host's groups are looked up.
OS_GROUPS = ("ubuntu", "debian", "rhel", "nixos", "jetson")
# The OS group of a host that is in none of OS_GROUPS, by ansible_facts.distribution. A Jetson
# reports Ubuntu: it needs the jetson group.
OS_GROUP_BY_DISTRIBUTION = {
    "Ubuntu": "ubuntu",
    "Debian": "debian",
    "RedHat": "rhel",
    "Rocky": "rhel",
    "AlmaLinux": "rhel",
    "OracleLinux": "rhel",
    "CentOS": "rhel",
    "NixOS": "nixos",
}
DEFAULT_DATA_DIR = "/var/lib/rancher/k3s"
DEFAULT_SERVER_GROUP = "server"
CONTAINER_RUNTIMES = ("containerd", "docker")
# The value of k3s_gpu_node that asks for detection.
GPU_NODE_AUTO = "auto"
# The per-host inputs of the contract, read from a host's variables (the lookup's list).
INPUTS = (
    "inventory_hostname", "group_names", "ansible_facts",
    "k3s_gpu_node", "k3s_node_name", "k3s_data_dir", "k3s_server_group",
    "k3s_gpu_container_runtime", "k3s_server_config", "k3s_agent_config",
)
# The facts it reads (ansible_facts.nvidia comes from k3s_gpu.cluster.nvidia_smi_facts).
FACTS = ("distribution", "nodename", "nvidia")


class ProfileError(ValueError):
    """Bad input: the message says what was wrong and how to fix it."""


def inputs_of(source, template=None):
    """The contract's inputs of one host, as plain values: the names in INPUTS that
    ``source`` (a host's variables or hostvars entry) has, and of its ansible_facts only
    FACTS. ``template`` (optional) resolves each value (the lookup passes its templar)."""
    resolve = template or (lambda value: value)
    found = dict((name, resolve(source[name])) for name in INPUTS if name in source)
    facts = found.get("ansible_facts") or {}
    found["ansible_facts"] = dict((name, facts[name]) for name in FACTS if name in facts)
    return plain(found)


def is_gpu_node(flag, nvidia=None, host="this host"):
    """The one rule for "is this host a GPU node", applied by every role and playbook (the
    profile's gpu_node, the gpu_node filter, the add-ons' node model).

    ``flag`` is the host's k3s_gpu_node: true or false as given (unset, null or "": false);
    ``auto`` asks for detection: a GPU node when nvidia-smi found at least one GPU there.
    ``nvidia`` is the host's ansible_facts.nvidia (k3s_gpu.cluster.nvidia_smi_facts), needed
    only for ``auto``. Raises ProfileError for any other value, and for ``auto`` when the facts
    were not gathered.
    """
    if flag is None or flag == "":
        return False
    if isinstance(flag, bool):
        return flag
    text = str(flag).strip().lower()
    if text == GPU_NODE_AUTO:
        if not isinstance(nvidia, dict):
            raise ProfileError(
                "k3s_gpu_node is auto on %s, but its NVIDIA facts were not gathered: run "
                "k3s_gpu.cluster.nvidia_smi_facts on it first (site.yml, k3s.yml, smoke_test.yml, "
                "diagnose.yml and driver_upgrade.yml do), or set k3s_gpu_node to true or false" % host)
        try:
            return int(nvidia.get("gpu_count") or 0) > 0
        except (TypeError, ValueError):
            return False
    if text in BOOLEANS_TRUE:
        return True
    if text in BOOLEANS_FALSE:
        return False
    raise ProfileError(
        "k3s_gpu_node is %r on %s: set true (a GPU node), false (not one) or auto (a GPU node "
        "when nvidia-smi finds a GPU there, which needs the NVIDIA driver installed)" % (flag, host))


def os_group(group_names, facts):
    """(OS group, where it came from): the first of OS_GROUPS the host is in ("inventory"),
    else the group of its distribution ("facts"), else ("", "none")."""
    for group in OS_GROUPS:
        if group in (group_names or []):
            return group, "inventory"
    found = OS_GROUP_BY_DISTRIBUTION.get((facts or {}).get("distribution") or "")
    return (found, "facts") if found else ("", "none")


def node_name_source(host, config, node_name_var, facts):
    """(node name, where it came from: config, k3s_node_name, facts or inventory)."""
    for candidate, source in (((config or {}).get("node-name"), "config"), (node_name_var, "k3s_node_name"),
                              ((facts or {}).get("nodename"), "facts"), (host, "inventory")):
        if candidate not in (None, ""):
            return str(candidate).strip().lower(), source
    return "", "inventory"


def node_name(host, config, node_name_var, facts):
    """The Kubernetes node name K3s registers for a host, lower case: ``node-name`` of its
    K3s config, else k3s_node_name (which the K3s roles then write as node-name), else the
    kernel's node name from the facts (what K3s reads with os.Hostname), else the inventory
    name."""
    return node_name_source(host, config, node_name_var, facts)[0]


def host_profile(host_vars, groups, gpu_facts_required=True):
    """The profile of one host.

    ``host_vars``: the host's variables (at least the names in INPUTS that are set; the
    inventory name is required). ``groups``: the inventory's group -> hosts map.
    Returns a dict: host, gpu_node, node_name, node_name_from (config, k3s_node_name, facts
    or inventory), data_dir, os_group, os_group_from (inventory, facts or none), os_groups (every
    OS group the host is in), os_group_facts (the group of its distribution, or ""),
    container_runtime, k3s_role (server or agent), server_group, servers, first_server,
    is_first_server. Raises ProfileError for a value outside the contract.
    ``gpu_facts_required=False`` is for callers that need no GPU answer yet (grouping before
    the NVIDIA facts are gathered): a host with k3s_gpu_node auto and no facts then gets
    gpu_node None instead of the error.
    """
    hv = host_vars or {}
    host = hv.get("inventory_hostname")
    if not host:
        raise ProfileError("host_profile needs the host's inventory_hostname")
    host = str(host)
    facts = hv.get("ansible_facts") or {}
    server_group = str(hv.get("k3s_server_group") or DEFAULT_SERVER_GROUP)
    servers = [str(h) for h in (groups or {}).get(server_group) or []]
    is_server = host in servers
    runtime = hv.get("k3s_gpu_container_runtime")
    runtime = "containerd" if runtime in (None, "") else str(runtime)
    if runtime not in CONTAINER_RUNTIMES:
        raise ProfileError(
            "k3s_gpu_container_runtime is %r on %s: set containerd (K3s's embedded containerd, "
            "the default) or docker (K3s's docker mode)" % (runtime, host))
    data_dir = hv.get("k3s_data_dir")
    data_dir = DEFAULT_DATA_DIR if data_dir in (None, "") else str(data_dir)
    config = hv.get("k3s_server_config" if is_server else "k3s_agent_config")
    if config is not None and not isinstance(config, dict):
        raise ProfileError(
            "%s is %s on %s: it must be a dict of K3s config.yaml keys"
            % ("k3s_server_config" if is_server else "k3s_agent_config", type(config).__name__, host))
    group, group_from = os_group(hv.get("group_names"), facts)
    flag = hv.get("k3s_gpu_node")
    if (not gpu_facts_required and str(flag).strip().lower() == GPU_NODE_AUTO
            and not isinstance(facts.get("nvidia"), dict)):
        gpu = None
    else:
        gpu = is_gpu_node(flag, facts.get("nvidia"), host)
    name, name_from = node_name_source(host, config, hv.get("k3s_node_name"), facts)
    return {
        "host": host,
        "gpu_node": gpu,
        "node_name": name,
        "node_name_from": name_from,
        "data_dir": data_dir,
        "os_group": group,
        "os_group_from": group_from,
        "os_groups": [g for g in OS_GROUPS if g in (hv.get("group_names") or [])],
        "os_group_facts": OS_GROUP_BY_DISTRIBUTION.get(facts.get("distribution") or "", ""),
        "container_runtime": runtime,
        "k3s_role": "server" if is_server else "agent",
        "server_group": server_group,
        "servers": servers,
        "first_server": servers[0] if servers else None,
        "is_first_server": bool(servers) and servers[0] == host,
    }
