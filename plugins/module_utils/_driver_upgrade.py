# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What playbooks/driver_upgrade.yml reads from the cluster, in plain data.

``cluster_health`` says why the cluster is not fit for a node to be taken out (a server
not Ready or not registered); ``node_state`` reads one node (Ready and when the kubelet last reported it,
cordoned, the allocatable ``nvidia.com/*`` resources, whether this playbook cordoned it);
``gpus_back`` compares those resources after the upgrade with before; ``gpu_pods``
picks the pods on a node that use an ``nvidia.com/*`` resource (what the ``gpu`` drain
mode evicts). Input is the JSON of ``kubectl get nodes|node|pods -o json``; nothing here
talks to a cluster. Python 3.9+ standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import re
import time

GPU_RESOURCE_PREFIX = 'nvidia.com/'
# Set on a node while this playbook holds it cordoned; a later run may uncordon it.
CORDON_ANNOTATION = 'k3s-gpu.io/driver-upgrade'
_QUANTITY = re.compile(r'^([0-9]+)$')


def _quantity(value):
    """An extended resource count ('2'); None for anything else."""
    match = _QUANTITY.match(str(value).strip()) if value is not None else None
    return int(match.group(1)) if match else None


def _items(doc):
    if isinstance(doc, dict) and isinstance(doc.get('items'), list):
        return [i for i in doc['items'] if isinstance(i, dict)]
    if isinstance(doc, dict) and doc.get('kind') == 'Node':
        return [doc]
    return []


def _ready_condition(node):
    for condition in ((node.get('status') or {}).get('conditions')) or []:
        if isinstance(condition, dict) and condition.get('type') == 'Ready':
            return condition
    return {}


def _ready(node):
    return _ready_condition(node).get('status') == 'True'


def _epoch(stamp):
    """Seconds since the epoch of an RFC 3339 time in UTC as Kubernetes writes it; 0 when absent."""
    try:
        return calendar.timegm(time.strptime(str(stamp), '%Y-%m-%dT%H:%M:%SZ'))
    except (TypeError, ValueError):
        return 0


def node_state(node):
    """Ready, cordoned, GPU resources and our cordon marker of one node (``kubectl get node -o json``)."""
    node = node if isinstance(node, dict) else {}
    meta = node.get('metadata') or {}
    allocatable = (node.get('status') or {}).get('allocatable') or {}
    gpus = {}
    for name, value in sorted(allocatable.items()):
        if str(name).startswith(GPU_RESOURCE_PREFIX) and _quantity(value) is not None:
            gpus[str(name)] = _quantity(value)
    annotations = meta.get('annotations') or {}
    return {
        'name': meta.get('name'),
        'ready': _ready(node),
        # When the kubelet last reported the node (its own clock): a restarted kubelet reports at once.
        'heartbeat': _epoch(_ready_condition(node).get('lastHeartbeatTime')),
        'unschedulable': bool((node.get('spec') or {}).get('unschedulable')),
        'gpus': gpus,
        'gpu_total': sum(gpus.values()),
        'cordoned_by_us': CORDON_ANNOTATION in annotations,
    }


def cluster_health(nodes_doc, server_names):
    """Sentences saying why the cluster may not lose a node now; [] when every server is
    registered and Ready."""
    nodes = dict(((n.get('metadata') or {}).get('name'), n) for n in _items(nodes_doc))
    problems = []
    for name in server_names or []:
        if name not in nodes:
            problems.append('server %s is not registered in the cluster' % name)
        elif not _ready(nodes[name]):
            problems.append('server %s is not Ready' % name)
    if not server_names:
        problems.append('no server in the inventory (group server)')
    return problems


def gpus_back(before, after):
    """True when every nvidia.com/* resource the node had before is back to at least its count."""
    before = before or {}
    after = after or {}
    return all(after.get(name, 0) >= count for name, count in before.items())


def _uses_gpu(pod):
    spec = pod.get('spec') or {}
    for container in list(spec.get('containers') or []) + list(spec.get('initContainers') or []):
        resources = (container or {}).get('resources') or {}
        for section in ('requests', 'limits'):
            if any(str(name).startswith(GPU_RESOURCE_PREFIX) for name in (resources.get(section) or {})):
                return True
    return False


def gpu_pods(pods_doc, node_name):
    """[{namespace, name}] of the pods on ``node_name`` that ask for an nvidia.com/* resource and
    that a drain would evict: not finished, not owned by a DaemonSet (those stay; the node's K3s
    is stopped and they die with it)."""
    found = []
    for pod in _items(pods_doc):
        meta = pod.get('metadata') or {}
        if (pod.get('spec') or {}).get('nodeName') != node_name:
            continue
        if (pod.get('status') or {}).get('phase') in ('Succeeded', 'Failed'):
            continue
        if any((o or {}).get('kind') == 'DaemonSet' for o in meta.get('ownerReferences') or []):
            continue
        if _uses_gpu(pod):
            found.append({'namespace': meta.get('namespace') or 'default', 'name': meta.get('name')})
    return sorted(found, key=lambda p: (p['namespace'], p['name']))
