# -*- coding: utf-8 -*-
"""What playbooks/driver_upgrade.yml reads from kubectl JSON (_driver_upgrade, through its filters)."""
from __future__ import absolute_import, division, print_function

import copy

from ansible_collections.k3s_gpu.cluster.plugins.filter.driver_upgrade import FilterModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_nodes

F = FilterModule().filters()


def node(name, ready=True, gpus=None, unschedulable=False, annotations=None, heartbeat='2026-11-30T02:33:07Z'):
    return {
        'apiVersion': 'v1', 'kind': 'Node',
        'metadata': {'name': name, 'annotations': annotations or {}},
        'spec': {'unschedulable': unschedulable} if unschedulable else {},
        'status': {
            'conditions': [{'type': 'MemoryPressure', 'status': 'False'},
                           {'type': 'Ready', 'status': 'True' if ready else 'Unknown', 'lastHeartbeatTime': heartbeat}],
            'allocatable': dict({'cpu': '15500m', 'memory': '131Gi', 'pods': '110'}, **(gpus or {})),
        },
    }


def pod(name, node_name, resources=None, owner='ReplicaSet', phase='Running', init=False, namespace='default'):
    container = {'name': 'c', 'image': 'x'}
    if resources:
        container['resources'] = resources
    spec = {'nodeName': node_name, 'containers': [{'name': 'main', 'image': 'x'}]}
    spec['initContainers' if init else 'containers'] = [container]
    meta = {'name': name, 'namespace': namespace}
    if owner:
        meta['ownerReferences'] = [{'kind': owner, 'name': 'o'}]
    return {'metadata': meta, 'spec': spec, 'status': {'phase': phase}}


def test_node_state_reads_gpu_resources_cordon_and_heartbeat():
    state = F['driver_upgrade_node_state'](node('gpu-1', gpus={'nvidia.com/gpu': '2', 'nvidia.com/mig-1g.10gb': '7'},
                                                unschedulable=True,
                                                annotations={'k3s-gpu.io/driver-upgrade': '2026-11-30T02:30:00Z'}))
    assert state == {'name': 'gpu-1', 'ready': True, 'heartbeat': 1796005987, 'unschedulable': True,
                     'gpus': {'nvidia.com/gpu': 2, 'nvidia.com/mig-1g.10gb': 7}, 'gpu_total': 9,
                     'cordoned_by_us': True}
    bare = F['driver_upgrade_node_state'](node('cpu-1', ready=False, heartbeat=None))
    assert (bare['ready'], bare['heartbeat'], bare['gpus'], bare['gpu_total'], bare['cordoned_by_us']) == \
        (False, 0, {}, 0, False)
    assert F['driver_upgrade_node_state']({})['ready'] is False


def test_health_needs_every_server_registered_and_ready():
    nodes = {'kind': 'List', 'items': [node('srv-1'), node('srv-2', ready=False), node('gpu-1')]}
    assert F['driver_upgrade_health'](nodes, ['srv-1']) == []
    assert F['driver_upgrade_health'](nodes, ['srv-1', 'srv-2', 'srv-3']) == [
        'server srv-2 is not Ready', 'server srv-3 is not registered in the cluster']
    assert F['driver_upgrade_health'](nodes, []) == ['no server in the inventory (group server)']
    assert F['driver_upgrade_health']({}, ['srv-1']) == ['server srv-1 is not registered in the cluster']


def test_gpus_back_compares_each_resource():
    back = F['driver_upgrade_gpus_back']
    assert back({'nvidia.com/gpu': 8}, {'nvidia.com/gpu': 8})
    assert back({'nvidia.com/gpu': 8}, {'nvidia.com/gpu': 8, 'nvidia.com/gpu.shared': 16})
    assert not back({'nvidia.com/gpu': 8}, {'nvidia.com/gpu': 7})
    assert not back({'nvidia.com/gpu': 8}, {})
    assert not back({'nvidia.com/mig-1g.10gb': 7, 'nvidia.com/gpu': 1}, {'nvidia.com/gpu': 1})
    assert back({}, {})


def test_gpu_pods_are_those_asking_for_nvidia_resources_that_a_drain_evicts():
    pods = {'kind': 'List', 'items': [
        pod('train', 'gpu-1', {'limits': {'nvidia.com/gpu': '1'}}),
        pod('infer', 'gpu-1', {'requests': {'nvidia.com/mig-1g.10gb': '1'}}, namespace='ml'),
        pod('setup', 'gpu-1', {'limits': {'nvidia.com/gpu': '1'}}, init=True, owner=None),
        pod('web', 'gpu-1', {'limits': {'cpu': '1'}}),
        pod('plugin', 'gpu-1', {'limits': {'nvidia.com/gpu': '1'}}, owner='DaemonSet'),
        pod('done', 'gpu-1', {'limits': {'nvidia.com/gpu': '1'}}, phase='Succeeded'),
        pod('elsewhere', 'gpu-2', {'limits': {'nvidia.com/gpu': '1'}}),
        pod('nores', 'gpu-1'),
    ]}
    assert F['driver_upgrade_gpu_pods'](pods, 'gpu-1') == [
        {'namespace': 'default', 'name': 'setup'}, {'namespace': 'default', 'name': 'train'},
        {'namespace': 'ml', 'name': 'infer'}]
    assert F['driver_upgrade_gpu_pods']({}, 'gpu-1') == []


def node_names(hostvars, hosts):
    """The node names driver_upgrade reads: the host profiles' (the driver_upgrade_node_names
    filter that wrapped this is gone)."""
    return [p['node_name'] for p in _gpu_nodes.profiles(hostvars, hosts)]


def test_node_names_follow_the_smoke_test_rule():
    hostvars = {'a': {'k3s_node_name': 'GPU-A'}, 'b': {'ansible_facts': {'nodename': 'Node-B'}}, 'c': {}}
    assert node_names(hostvars, ['a', 'b', 'c']) == ['gpu-a', 'node-b', 'c']


def test_node_names_are_the_host_profile_s():
    """The node name K3s registers: the server's config node-name, else the kernel's node name
    (ansible_facts.nodename), never the short host name."""
    groups = {'server': ['s'], 'agent': ['g']}
    hostvars = {'s': {'groups': groups, 'k3s_server_config': {'node-name': 'Ctl'},
                      'ansible_facts': {'nodename': 's.example.com', 'hostname': 's'}},
                'g': {'groups': groups, 'ansible_facts': {'nodename': 'g.example.com', 'hostname': 'g'}}}
    assert node_names(hostvars, ['s', 'g']) == ['ctl', 'g.example.com']


def test_filters_do_not_change_their_input():
    doc = {'kind': 'List', 'items': [pod('train', 'gpu-1', {'limits': {'nvidia.com/gpu': '1'}})]}
    before = copy.deepcopy(doc)
    F['driver_upgrade_gpu_pods'](doc, 'gpu-1')
    assert doc == before
