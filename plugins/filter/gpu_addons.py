# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the gpu_operator, gpu_device_plugin and gpu_smoke_test roles.

Thin wrappers over plugins/module_utils/: _gpu_nodes.py (the GPU node model),
_gpu_values.py (GPU Operator values, device plugin configs), _gpu_readiness.py (readiness from
the cluster's JSON) and _gpu_smoke.py (the smoke-test report). The documentation of each filter
is in the sidecar YAML file of the same name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_nodes
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_readiness
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_smoke
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_values
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain as _plain


def _yaml(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _gpu_nodes.AddonError as exc:
            raise AnsibleFilterError(str(exc))
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


def gpu_node(flag, nvidia=None, host="this host"):
    return _gpu_nodes.is_gpu_node(_plain(flag), _plain(nvidia), str(host))


def gpu_nodes(hostvars, hosts):
    return _gpu_nodes.gpu_nodes(hostvars, [str(h) for h in hosts or []])


def gpu_operator_values(settings, nodes=None, host_state=None):
    return _gpu_values.operator_values(_plain(settings), _plain(nodes), _plain(host_state), dumper=_yaml)


def gpu_sharing_plan(nodes, default_replicas=1, mig_strategy="none", fail_on_init_error=False):
    plan = _gpu_values.sharing_plan(_plain(nodes), _plain(default_replicas), _plain(mig_strategy),
                                    _plain(fail_on_init_error))
    plan["config_text"] = dict((name, _yaml(cfg)) for name, cfg in plan["configs"].items())
    return plan


def gpu_device_plugin_variants(nodes, default_replicas=1, base_name="nvidia-device-plugin"):
    return _gpu_values.device_plugin_variants(_plain(nodes), _plain(default_replicas), _plain(base_name))


def gpu_rollout_status(doc, expected_nodes=None, pod_selector=None, namespace=None,
                       failing_selector=None):
    return _gpu_readiness.rollout_status(_plain(doc), _plain(expected_nodes), _plain(pod_selector),
                                         namespace, _plain(failing_selector))


def gpu_host_state(driver_probe, toolkit_probe, containerd_probe=None, version_probe=None):
    return _gpu_nodes.host_state(_plain(driver_probe), _plain(toolkit_probe), _plain(containerd_probe),
                                 _plain(version_probe))


def gpu_label_changes(doc, wanted, label="nvidia.com/device-plugin.config"):
    return _gpu_readiness.label_changes(_plain(doc), _plain(wanted), label)


def gpu_logs_by_pod(results):
    return _gpu_readiness.logs_by_pod(_plain(results))


def gpu_failure_report(status, logs=None, title="GPU add-on is not ready"):
    return _gpu_readiness.failure_report(_plain(status), _plain(logs), title)


def gpu_smoke_results(doc, logs, expected_nodes, runtime_class=""):
    return _gpu_smoke.smoke_results(_plain(doc), _plain(logs), _plain(expected_nodes), runtime_class)


def gpu_smoke_summary(results):
    return _gpu_smoke.summary_table(_plain(results))


def gpu_smoke_failures(results):
    return _gpu_smoke.failed_tests(_plain(results))


class FilterModule(object):
    """GPU add-on filters."""

    def filters(self):
        return dict((f.__name__, _wrap(f)) for f in (
            gpu_node, gpu_nodes, gpu_operator_values, gpu_sharing_plan, gpu_device_plugin_variants,
            gpu_rollout_status, gpu_host_state, gpu_logs_by_pod, gpu_label_changes,
            gpu_failure_report, gpu_smoke_results, gpu_smoke_summary, gpu_smoke_failures,
        ))
