# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test over the host_state module's report: would an apt task change anything? (Files and
folders: the managed_file action, which compares with the same report.)

Thin wrappers over plugins/module_utils/_host_state.py; the documentation of each test is in the
sidecar YAML file of the same name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def packages_installed(specs, installed):
    return _host_state.packages_installed(_plain(specs), _plain(installed))


class TestModule(object):
    def tests(self):
        return {
            'packages_installed': packages_installed,
        }
