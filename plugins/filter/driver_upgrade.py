# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/driver_upgrade.yml over plugins/module_utils/_driver_upgrade.py.

Documentation is in the sidecar YAML files driver_upgrade_*.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _driver_upgrade
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def driver_upgrade_node_state(node):
    return _driver_upgrade.node_state(_plain(node))


def driver_upgrade_health(nodes, server_names):
    return _driver_upgrade.cluster_health(_plain(nodes), [str(n) for n in _plain(server_names) or []])


def driver_upgrade_gpus_back(before, after):
    return _driver_upgrade.gpus_back(_plain(before), _plain(after))


def driver_upgrade_gpu_pods(pods, node_name):
    return _driver_upgrade.gpu_pods(_plain(pods), str(node_name))


class FilterModule(object):
    """Driver upgrade filters."""

    def filters(self):
        return {
            "driver_upgrade_node_state": driver_upgrade_node_state,
            "driver_upgrade_health": driver_upgrade_health,
            "driver_upgrade_gpus_back": driver_upgrade_gpus_back,
            "driver_upgrade_gpu_pods": driver_upgrade_gpu_pods,
        }
