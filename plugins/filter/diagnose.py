# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter running the GPU failure-mode detectors of plugins/module_utils/_diagnose.py.

Documentation is in the sidecar YAML file gpu_diagnose.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _diagnose
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def gpu_diagnose(data):
    return _diagnose.run_all(_plain(data))


def gpu_finding_text(finding):
    return _diagnose.finding_text(_plain(finding))


def gpu_diagnose_summary(host, hostvars):
    return _diagnose.host_summary(str(host), hostvars)


def gpu_slurped_texts(results):
    return _diagnose.slurped_texts(_plain(results))


class FilterModule(object):
    """GPU diagnose filters."""

    def filters(self):
        return {
            "gpu_diagnose": gpu_diagnose,
            "gpu_finding_text": gpu_finding_text,
            "gpu_diagnose_summary": gpu_diagnose_summary,
            "gpu_slurped_texts": gpu_slurped_texts,
        }
