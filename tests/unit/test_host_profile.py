# -*- coding: utf-8 -*-
"""The host profile (issue #14): ``_host_profile.host_profile`` and the ``host_profile`` lookup
that hands it to the roles and playbooks."""

from __future__ import absolute_import, division, print_function

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, ansible_playbook
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_profile as hp

GROUPS = {"server": ["s1", "s2"], "agent": ["a1"], "gpu_servers": ["a1"]}
FOUND_GPU = {"status": "ok", "gpu_count": 1}


def profile(host, gpu_facts_required=True, **host_vars):
    host_vars["inventory_hostname"] = host
    return hp.host_profile(host_vars, GROUPS, gpu_facts_required)


def test_defaults_of_an_agent_with_nothing_set():
    assert profile("a1") == {
        "host": "a1", "gpu_node": False, "node_name": "a1", "node_name_from": "inventory",
        "data_dir": "/var/lib/rancher/k3s", "os_group": "", "os_group_from": "none", "os_groups": [],
        "os_group_facts": "", "container_runtime": "containerd", "k3s_role": "agent",
        "server_group": "server", "servers": ["s1", "s2"], "first_server": "s1", "is_first_server": False,
    }


def test_servers_and_the_first_server():
    assert profile("s1")["k3s_role"] == "server" and profile("s1")["is_first_server"] is True
    assert profile("s2")["k3s_role"] == "server" and profile("s2")["is_first_server"] is False


def test_k3s_server_group_moves_the_servers():
    moved = profile("a1", k3s_server_group="gpu_servers")
    assert (moved["k3s_role"], moved["first_server"], moved["is_first_server"], moved["servers"]) == (
        "server", "a1", True, ["a1"])
    assert profile("s1", k3s_server_group="gpu_servers")["k3s_role"] == "agent"


def test_an_empty_server_group_has_no_first_server():
    empty = profile("s1", k3s_server_group="nobody")
    assert (empty["servers"], empty["first_server"], empty["is_first_server"]) == ([], None, False)


@pytest.mark.parametrize("host_vars, expected", [
    ({}, "a1"),
    ({"ansible_facts": {"nodename": "GPU-1.Example.org"}}, "gpu-1.example.org"),
    ({"k3s_node_name": "Named", "ansible_facts": {"nodename": "gpu-1"}}, "named"),
    ({"k3s_agent_config": {"node-name": "From-Config"}, "k3s_node_name": "named"}, "from-config"),
    # A server reads its own config, not the agent's.
    ({"k3s_agent_config": {"node-name": "agent-name"}, "inventory_hostname_is_server": True}, "s1"),
])
def test_node_name_rule(host_vars, expected):
    host = "s1" if host_vars.pop("inventory_hostname_is_server", False) else "a1"
    assert profile(host, **host_vars)["node_name"] == expected


@pytest.mark.parametrize("host_vars, source", [
    ({}, "inventory"), ({"ansible_facts": {"nodename": "n"}}, "facts"),
    ({"k3s_node_name": "n", "ansible_facts": {"nodename": "m"}}, "k3s_node_name"),
    ({"k3s_agent_config": {"node-name": "c"}, "k3s_node_name": "n"}, "config"),
])
def test_where_the_node_name_came_from(host_vars, source):
    assert profile("a1", **host_vars)["node_name_from"] == source


def test_all_os_groups_and_the_facts_group_for_preflight():
    found = profile("a1", group_names=["rhel", "agent", "debian"], ansible_facts={"distribution": "Ubuntu"})
    assert (found["os_group"], found["os_groups"], found["os_group_facts"]) == ("debian", ["debian", "rhel"], "ubuntu")


def test_auto_without_facts_can_wait_for_them():
    assert profile("a1", k3s_gpu_node="auto", gpu_facts_required=False)["gpu_node"] is None
    # Facts present or an explicit flag: the answer as always.
    assert profile("a1", k3s_gpu_node="auto", ansible_facts={"nvidia": FOUND_GPU}, gpu_facts_required=False)["gpu_node"] is True
    # A bad value is an error either way.
    with pytest.raises(hp.ProfileError):
        profile("a1", k3s_gpu_node="maybe_not", gpu_facts_required=False)


def test_server_node_name_from_its_config():
    assert profile("s1", k3s_server_config={"node-name": "cp-1"})["node_name"] == "cp-1"


def test_the_node_name_is_the_kernel_node_name_not_the_short_host_name():
    facts = {"nodename": "gpu-1.lab.example", "hostname": "gpu-1"}
    assert profile("a1", ansible_facts=facts)["node_name"] == "gpu-1.lab.example"


@pytest.mark.parametrize("group_names, distribution, expected", [
    (["debian"], "Ubuntu", ("debian", "inventory")),
    (["jetson"], "Ubuntu", ("jetson", "inventory")),
    (["k3s_cluster", "agent"], "Ubuntu", ("ubuntu", "facts")),
    ([], "Rocky", ("rhel", "facts")),
    ([], "AlmaLinux", ("rhel", "facts")),
    ([], "NixOS", ("nixos", "facts")),
    ([], "Gentoo", ("", "none")),
    # The order of OS_GROUPS decides for a host in two OS groups.
    (["rhel", "ubuntu"], "Debian", ("ubuntu", "inventory")),
])
def test_os_group_inventory_first_then_facts(group_names, distribution, expected):
    found = profile("a1", group_names=group_names, ansible_facts={"distribution": distribution})
    assert (found["os_group"], found["os_group_from"]) == expected


def test_data_dir_and_container_runtime():
    found = profile("a1", k3s_data_dir="/data/k3s", k3s_gpu_container_runtime="docker")
    assert (found["data_dir"], found["container_runtime"]) == ("/data/k3s", "docker")
    assert profile("a1", k3s_data_dir="", k3s_gpu_container_runtime="")["data_dir"] == hp.DEFAULT_DATA_DIR


def test_gpu_node_is_the_one_rule():
    assert profile("a1", k3s_gpu_node=True)["gpu_node"] is True
    assert profile("a1", k3s_gpu_node="auto", ansible_facts={"nvidia": FOUND_GPU})["gpu_node"] is True
    # A driver but no flag: not a GPU node.
    assert profile("a1", ansible_facts={"nvidia": FOUND_GPU})["gpu_node"] is False


@pytest.mark.parametrize("host_vars, message", [
    ({"k3s_gpu_container_runtime": "crio"}, "k3s_gpu_container_runtime is 'crio' on a1: set containerd"),
    ({"k3s_gpu_node": "maybe"}, "k3s_gpu_node is 'maybe' on a1"),
    ({"k3s_gpu_node": "auto"}, "k3s_gpu_node is auto on a1, but its NVIDIA facts were not gathered"),
    ({"k3s_agent_config": ["node-name"]}, "k3s_agent_config is list on a1: it must be a dict"),
])
def test_bad_input_says_what_and_how(host_vars, message):
    with pytest.raises(hp.ProfileError) as err:
        profile("a1", **host_vars)
    assert message in str(err.value)


def test_the_inventory_name_is_required():
    with pytest.raises(hp.ProfileError):
        hp.host_profile({}, GROUPS)


INVENTORY = """
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: %(python)s
    base: /srv
  children:
    k3s_cluster:
      children:
        server: {hosts: {s1: {k3s_data_dir: "{{ base }}/k3s"}}}
        agent: {hosts: {a1: {k3s_gpu_node: "{{ 'true' }}"}, a2: {k3s_gpu_node: auto}}}
    debian: {hosts: {a1: }}
"""
PLAYBOOK = """
- hosts: s1:a1
  gather_facts: false
  vars:
    k3s_gpu_container_runtime: "{{ 'dock' ~ 'er' }}"
  tasks:
    - ansible.builtin.copy:
        content: "{{ {'own': lookup('k3s_gpu.cluster.host_profile'),
                      'others': query('k3s_gpu.cluster.host_profile', 's1', 'a1'),
                      'early': lookup('k3s_gpu.cluster.host_profile', gpu_facts_required=false)} | to_json }}"
        dest: "%(out)s/{{ inventory_hostname }}.json"
      vars:
        k3s_server_group: "{{ 'agent' if inventory_hostname == 'a1' else 'server' }}"
"""


def test_lookup_templates_the_task_variables_and_reads_other_hosts_from_hostvars(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY % {"python": sys.executable})
    (tmp_path / "pb.yml").write_text(PLAYBOOK % {"out": tmp_path})
    run = ansible_playbook("-i", "inv.yml", "pb.yml", cwd=str(tmp_path), stderr=subprocess.PIPE)
    assert run.returncode == 0, run.stdout + run.stderr
    s1 = json.loads((tmp_path / "s1.json").read_text())
    a1 = json.loads((tmp_path / "a1.json").read_text())
    # Play and task variables reach the profile of the current host, templated.
    assert (s1["own"]["data_dir"], s1["own"]["container_runtime"], s1["own"]["k3s_role"]) == ("/srv/k3s", "docker", "server")
    assert (a1["own"]["gpu_node"], a1["own"]["os_group"], a1["own"]["k3s_role"]) == (True, "debian", "server")
    # Other hosts come from their hostvars (inventory and facts; not this play's variables).
    assert [p["host"] for p in s1["others"]] == ["s1", "a1"]
    assert [p["container_runtime"] for p in s1["others"]] == ["containerd", "containerd"]
    assert s1["others"][0]["data_dir"] == "/srv/k3s"
    assert s1["early"]["gpu_node"] is False


def test_lookup_waits_for_gpu_facts_only_when_asked(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY % {"python": sys.executable})
    (tmp_path / "pb.yml").write_text("""
- hosts: a2
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ lookup('k3s_gpu.cluster.host_profile', gpu_facts_required=false) | to_json }}"
        dest: "%(out)s/early.json"
    - ansible.builtin.debug:
        msg: "{{ lookup('k3s_gpu.cluster.host_profile').gpu_node }}"
""" % {"out": tmp_path})
    run = ansible_playbook("-i", "inv.yml", "pb.yml", cwd=str(tmp_path), stderr=subprocess.PIPE)
    assert run.returncode == 2, run.stdout + run.stderr
    assert json.loads((tmp_path / "early.json").read_text())["gpu_node"] is None
    assert "k3s_gpu_node is auto on a2, but its NVIDIA facts were not gathered" in run.stdout + run.stderr


GROUPS_INVENTORY = """
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: %(python)s
  children:
    k3s_cluster:
      children:
        server: {hosts: {srv-c: , srv-a: , srv-b: }}
        agent: {hosts: {gpu-z: , gpu-x: , gpu-y: }}
"""


def test_k3s_groups_follow_the_inventory_order(tmp_path):
    # upgrade.yml restarts the servers after the first in k3s_servers order: the groups must keep
    # the inventory's order (not the order in which the hosts' results came back, nor a sorted one).
    (tmp_path / "inv.yml").write_text(GROUPS_INVENTORY % {"python": sys.executable})
    (tmp_path / "pb.yml").write_text("""
- ansible.builtin.import_playbook: %(repo)s/playbooks/k3s_groups.yml

- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ {'first': groups['k3s_first_server'], 'servers': groups['k3s_servers'],
                      'agents': groups['k3s_agents']} | to_json }}"
        dest: "%(out)s/groups.json"
""" % {"repo": REPO_ROOT, "out": tmp_path})
    run = ansible_playbook("-i", "inv.yml", "pb.yml", cwd=str(tmp_path), stderr=subprocess.PIPE)
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads((tmp_path / "groups.json").read_text())
    assert found == {"first": ["srv-c"], "servers": ["srv-c", "srv-a", "srv-b"], "agents": ["gpu-z", "gpu-x", "gpu-y"]}
