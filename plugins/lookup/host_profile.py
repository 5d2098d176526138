# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host_profile lookup: a thin wrapper over plugins/module_utils/_host_profile.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: host_profile
author:
  - k3s_gpu.cluster contributors (@k3s-gpu)
short_description: What the collection needs to know about a host, from the inventory contract
description:
  - Resolves the collection's inventory contract (docs/architecture.md, "The inventory contract")
    for one or more hosts, in one place, so that every role and playbook reads the same answer.
  - 'Each profile is a dict: C(host); C(gpu_node) (C(k3s_gpu_node): true or false as given, unset is
    false, C(auto) is true when nvidia-smi found a GPU, see R(the GPU-node rule,ansible_collections.k3s_gpu.cluster.gpu_node_filter));
    C(node_name) (C(node-name) of the host''s K3s config, else C(k3s_node_name), else the kernel''s node
    name, else the inventory name; lower case); C(data_dir) (C(k3s_data_dir), default
    C(/var/lib/rancher/k3s)); C(os_group) and C(os_group_from) (the first of ubuntu, debian, rhel, nixos,
    jetson the host is in, else the group of its distribution; C(inventory), C(facts) or C(none));
    C(container_runtime) (C(k3s_gpu_container_runtime): containerd or docker); C(k3s_role) (server
    when the host is in C(k3s_server_group), default C(server), else agent); C(server_group);
    C(servers); C(first_server); C(is_first_server); C(node_name_from) (config, k3s_node_name, facts or
    inventory); C(os_groups) (every OS group the host is in) and C(os_group_facts) (the group of its
    distribution).'
  - Without terms it describes the current host from the task's own variables (play and role
    variables included); with terms, the named hosts from their hostvars.
options:
  _terms:
    description: Inventory host names. None for the current host.
    type: list
    elements: str
    required: false
  gpu_facts_required:
    description:
      - When false, a host with C(k3s_gpu_node=auto) whose NVIDIA facts were not gathered yet gets
        C(gpu_node=null) instead of an error; for callers that only need the other keys (grouping
        plays before the facts are gathered).
    type: bool
    default: true
notes:
  - C(auto) needs the host's NVIDIA facts (k3s_gpu.cluster.nvidia_smi_facts); the lookup fails with a
    message saying so when they were not gathered.
"""

EXAMPLES = r"""
- name: Show where K3s keeps its data on this host
  ansible.builtin.debug:
    msg: "{{ lookup('k3s_gpu.cluster.host_profile').data_dir }}"

- name: Find the first server before any NVIDIA facts are gathered
  ansible.builtin.debug:
    msg: "{{ lookup('k3s_gpu.cluster.host_profile', gpu_facts_required=false).first_server }}"

- name: List the node names of the GPU nodes
  ansible.builtin.debug:
    msg: "{{ query('k3s_gpu.cluster.host_profile', *groups['k3s_cluster']) | selectattr('gpu_node') | map(attribute='node_name') }}"
"""

RETURN = r"""
_raw:
  description: One profile per host (the current host when no term is given).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_profile
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        required = self.get_option("gpu_facts_required")
        variables = variables or {}
        template = self._templar.template
        groups = plain(template(variables.get("groups") or {}))
        try:
            if not terms:
                return [_host_profile.host_profile(_host_profile.inputs_of(variables, template), groups, required)]
            hostvars = variables.get("hostvars") or {}
            profiles = []
            for term in terms:
                host = str(term)
                if host not in hostvars:
                    raise AnsibleLookupError("host_profile: %s is not in the inventory" % host)
                profiles.append(_host_profile.host_profile(_host_profile.inputs_of(hostvars[host], template),
                                                           groups, required))
            return profiles
        except _host_profile.ProfileError as exc:
            raise AnsibleLookupError(str(exc))
