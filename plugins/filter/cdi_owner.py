# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter finding CDI specs that define the devices of another one (plugins/module_utils/_cdi_owner.py).

Documentation is in the sidecar YAML file gpu_cdi_conflicts.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_owner
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def gpu_cdi_conflicts(specs, own_path):
    return _cdi_owner.conflicts(_plain(specs), str(own_path))


class FilterModule(object):
    """CDI ownership filters."""

    def filters(self):
        return {"gpu_cdi_conflicts": gpu_cdi_conflicts}
