# -*- coding: utf-8 -*-
"""The one rule for "is this host a GPU node" (issue #14): ``_gpu_nodes.is_gpu_node``, exposed
as the ``k3s_gpu.cluster.gpu_node`` filter and applied by the add-ons. That no role or playbook
reads k3s_gpu_node but through the host profile: tests/unit/test_inventory_contract.py."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.k3s_gpu.cluster.plugins.filter import gpu_addons as filters
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_nodes

FOUND_GPU = {"status": "ok", "gpu_count": 2}
NO_GPU = {"status": "not_installed", "gpu_count": 0}


@pytest.mark.parametrize("flag, expected", [
    (True, True), (False, False), (None, False), ("", False),
    ("true", True), ("True", True), ("yes", True), ("on", True), ("1", True), (1, True),
    ("false", False), ("no", False), ("off", False), ("0", False), (0, False),
])
def test_explicit_flag_is_taken_as_given_whatever_nvidia_smi_says(flag, expected):
    for nvidia in (None, FOUND_GPU, NO_GPU):
        assert _gpu_nodes.is_gpu_node(flag, nvidia) is expected


@pytest.mark.parametrize("flag", ["auto", "AUTO", " Auto "])
def test_auto_asks_nvidia_smi(flag):
    assert _gpu_nodes.is_gpu_node(flag, FOUND_GPU) is True
    assert _gpu_nodes.is_gpu_node(flag, NO_GPU) is False
    assert _gpu_nodes.is_gpu_node(flag, {"status": "driver_not_loaded"}) is False


def test_auto_without_facts_is_an_error_that_names_the_host_and_the_fix():
    with pytest.raises(_gpu_nodes.AddonError) as err:
        _gpu_nodes.is_gpu_node("auto", None, "gpu-1")
    assert "k3s_gpu_node is auto on gpu-1" in str(err.value)
    assert "nvidia_smi_facts" in str(err.value)


@pytest.mark.parametrize("flag", ["ture", "maybe", "detect", [True], {"a": 1}])
def test_any_other_value_is_an_error(flag):
    with pytest.raises(_gpu_nodes.AddonError) as err:
        _gpu_nodes.is_gpu_node(flag, FOUND_GPU, "gpu-1")
    assert "on gpu-1: set true (a GPU node), false (not one) or auto" in str(err.value)


def test_filter_applies_the_rule_and_reports_bad_input_as_a_filter_error():
    rule = filters.FilterModule().filters()["gpu_node"]
    assert rule("auto", FOUND_GPU, "g") is True
    assert rule(None) is False
    with pytest.raises(AnsibleFilterError) as err:
        rule("maybe", None, "g")
    assert "k3s_gpu_node is 'maybe' on g" in str(err.value)


def test_add_ons_use_the_same_rule():
    hostvars = {
        # A driver but no flag: not a GPU node (the K3s roles used to say it was).
        "driver-only": {"ansible_facts": {"nvidia": FOUND_GPU}},
        "auto-gpu": {"k3s_gpu_node": "auto", "ansible_facts": {"nvidia": FOUND_GPU, "hostname": "auto-gpu"}},
        "auto-cpu": {"k3s_gpu_node": "auto", "ansible_facts": {"nvidia": NO_GPU}},
        "flagged": {"k3s_gpu_node": True},
    }
    names = [n["host"] for n in _gpu_nodes.gpu_nodes(hostvars, sorted(hostvars))]
    assert names == ["auto-gpu", "flagged"]
    with pytest.raises(_gpu_nodes.AddonError):
        _gpu_nodes.gpu_nodes({"a": {"k3s_gpu_node": "auto"}}, ["a"])
