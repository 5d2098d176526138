# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the input and safety rules of plugins/module_utils/_inputs.py.

The documentation of each filter is in the sidecar YAML file of the same name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _inputs
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def k3s_mounts(mounts_text, roots):
    return _inputs.k3s_mounts(str(mounts_text or ''), [str(r) for r in _plain(roots) or []])


def endpoint_parts(value):
    return _inputs.endpoint_parts(str(value))


def parse_problem(text, fmt, mapping=True):
    return _inputs.parse_problem(str(text), str(fmt), bool(mapping))


def unpinned_fingerprints(found, pinned):
    return _inputs.unpinned_fingerprints([str(f) for f in _plain(found) or []], [str(p) for p in _plain(pinned) or []])


class FilterModule(object):
    """Input and safety filters."""

    def filters(self):
        return {
            "endpoint_parts": endpoint_parts,
            "k3s_mounts": k3s_mounts,
            "parse_problem": parse_problem,
            "unpinned_fingerprints": unpinned_fingerprints,
        }
