# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn Ansible's lazy or tagged containers and scalars into plain Python values.

The filter plugins hand their arguments to pure functions in module_utils that compare
types and serialise to YAML/JSON; those must see dict, list, str, int, float, bool, None.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def plain(value):
    """Return ``value`` with every dict, list/tuple and scalar converted to its plain type."""
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value
