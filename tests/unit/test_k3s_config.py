# -*- coding: utf-8 -*-
"""The K3s config the roles compute (roles/k3s_common/tasks/check.yml), evaluated as the file
writes it: k3s_node_name becomes node-name (issue #14), the K3s config's own node-name wins,
and the GPU wiring reads the host profile."""

from __future__ import absolute_import, division, print_function

import os

import pytest
import yaml

import yaml_expr
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_profile

TASK = yaml_expr.task('roles/k3s_common/tasks/check.yml',
                      'Compute the K3s configuration from the role defaults, GPU wiring and user settings')
with open(os.path.join(yaml_expr.REPO_ROOT, 'roles', 'k3s_common', 'vars', 'main.yml')) as handle:
    ROLE_VARS = yaml.safe_load(handle)
PROFILE = {'data_dir': '/var/lib/rancher/k3s', 'gpu_node': True, 'container_runtime': 'containerd'}


def config(**given):
    # The profile as the lookup makes it for an agent with these inventory values.
    profile = _host_profile.host_profile({
        'inventory_hostname': 'gpu-1', 'k3s_gpu_node': True, 'k3s_node_name': given.get('k3s_node_name'),
        'k3s_agent_config': given.get('k3s_common_config')}, {'server': ['cp-1']})
    variables = {
        'k3s_common_profile': dict(profile, **PROFILE), 'k3s_common_config_defaults': {'server': 'https://10.0.0.1:6443'},
        'k3s_common_config': {}, 'k3s_common_node_labels': [], 'k3s_common_node_taints': [],
        'k3s_common_gpu_labels': [], 'k3s_common_gpu_taint': True, 'k3s_common_gpu_taint_value': 'true',
        'k3s_common_gpu_taint_effect': 'NoSchedule', 'k3s_common_gpu_default_runtime': False,
        'k3s_common_token_file': '/etc/rancher/k3s/cluster-token',
        'k3s_common_node_name_write': yaml_expr.trust(ROLE_VARS['k3s_common_node_name_write']),
    }
    if 'k3s_common_profile' in given:
        given['k3s_common_profile'] = dict(profile, **given['k3s_common_profile'])
    variables.update(given)
    for name, text in TASK['vars'].items():
        variables[name] = yaml_expr.trust(text)
    return yaml_expr.template(TASK['ansible.builtin.set_fact']['k3s_common_config_final'], variables)


def test_k3s_node_name_is_written_as_node_name():
    assert config(k3s_node_name='GPU-Node-7')['node-name'] == 'gpu-node-7'


def test_node_name_of_the_k3s_config_wins():
    found = config(k3s_node_name='gpu-node-7', k3s_common_config={'node-name': 'from-config'})
    assert found['node-name'] == 'from-config'


@pytest.mark.parametrize('given', [{}, {'k3s_node_name': ''}, {'k3s_node_name': '  '}])
def test_no_node_name_without_k3s_node_name(given):
    assert 'node-name' not in config(**given)


def test_token_file_follows_k3s_token_and_gpu_wiring_the_profile():
    found = config(k3s_token='lab-token')
    assert found['token-file'] == '/etc/rancher/k3s/cluster-token'
    assert found['node-label'] == ['nvidia.com/gpu.present=true']
    assert found['node-taint'] == ['nvidia.com/gpu=true:NoSchedule']
    assert 'token-file' not in config()
    assert 'node-label' not in config(k3s_common_profile=dict(PROFILE, gpu_node=False))
