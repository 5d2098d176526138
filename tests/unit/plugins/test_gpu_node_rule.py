# -*- coding: utf-8 -*-
"""The one rule for "is this host a GPU node" (issue #14): ``_gpu_nodes.is_gpu_node``, exposed
as the ``k3s_gpu.cluster.gpu_node`` filter, and every role and playbook reading it."""

from __future__ import absolute_import, division, print_function

import os
import re

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.k3s_gpu.cluster.plugins.filter import gpu_addons as filters
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _gpu_nodes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
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


# The only place that reads k3s_gpu_node other than through the filter: the condition under
# which the facts auto needs are gathered.
GATHER_CONDITION = ("roles/k3s_common/tasks/detect_gpu.yml",
                    "(k3s_gpu_node | default(false) | string | lower) == 'auto'")
THROUGH_THE_RULE = ("k3s_gpu_node | default(false) | k3s_gpu.cluster.gpu_node(ansible_facts.nvidia | default(none), "
                    "inventory_hostname)")
# Keys whose value is a bare Jinja expression.
EXPRESSION_KEYS = ("when", "that", "failed_when", "changed_when", "until")


def _expressions(node, key=None):
    """Every Jinja expression in a loaded YAML document: bare conditions, and the {{ }} and {% %}
    parts of other strings (so messages and descriptions that name the variable are prose)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _expressions(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item, key)
    elif isinstance(node, str):
        if key in EXPRESSION_KEYS and "{{" not in node:
            yield node
        for match in re.finditer(r"{{(.*?)}}|{%(.*?)%}", node, re.S):
            yield match.group(1) or match.group(2) or ""


def _files():
    yield os.path.join(REPO_ROOT, "site.yml")
    for top in ("roles", "playbooks"):
        for folder, _dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml", ".j2")):
                    yield os.path.join(folder, name)


def test_every_role_and_playbook_reads_k3s_gpu_node_through_the_rule():
    """An expression over k3s_gpu_node anywhere but through the filter would be a second rule."""
    offenders = []
    for path in _files():
        rel = os.path.relpath(path, REPO_ROOT)
        with open(path) as handle:
            text = handle.read()
        expressions = ([m.group(1) or m.group(2) for m in re.finditer(r"{{(.*?)}}|{%(.*?)%}", text, re.S)]
                       if path.endswith(".j2") else list(_expressions(yaml.safe_load(text))))
        for expression in expressions:
            flat = " ".join(expression.split())
            for match in re.finditer(r"(?<![\w.])['\"]?k3s_gpu_node['\"]?(?!\w)", flat):
                rest = flat[match.start():]
                if rest.startswith(THROUGH_THE_RULE):
                    continue
                if rel == GATHER_CONDITION[0] and GATHER_CONDITION[1] in flat:
                    continue
                offenders.append("%s: %s" % (rel, flat[:120]))
    assert offenders == []


def test_the_scan_finds_expressions_and_skips_prose():
    doc = {"when": "k3s_gpu_node | bool", "msg": "set k3s_gpu_node: true {{ k3s_gpu_node | default(false) | bool }}",
           "description": "k3s_gpu_node is true"}
    assert list(_expressions(doc)) == ["k3s_gpu_node | bool", " k3s_gpu_node | default(false) | bool "]
