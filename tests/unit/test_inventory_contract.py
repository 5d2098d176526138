# -*- coding: utf-8 -*-
"""The inventory contract (issue #14, docs/architecture.md): roles and playbooks read the
inputs the host profile resolves only through the ``k3s_gpu.cluster.host_profile`` lookup, and
the rules it holds (the OS-group map and list, the data dir default) are written nowhere else."""

from __future__ import absolute_import, division, print_function

import os
import re

import pytest
import yaml

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_profile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
# Inputs the profile resolves; an expression over one of them is a second rule.
PROFILE_INPUTS = ("k3s_gpu_node", "k3s_data_dir", "k3s_server_group", "k3s_gpu_container_runtime", "k3s_node_name")
# The one place that may read k3s_gpu_node directly: whether the facts auto needs are gathered.
ALLOWED = {
    ("roles/k3s_common/tasks/detect_gpu.yml", "k3s_gpu_node"): "(k3s_gpu_node | default(false) | string | lower) == 'auto'",
}
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


# Where a string literal names a variable that is read: a subscript (hostvars[host]['k3s_data_dir']),
# .get('k3s_data_dir'), lookup('vars', 'k3s_data_dir'), 'k3s_data_dir' in hostvars[host].
READ_BEFORE = re.compile(r"""(\[|\.get\(|\bvars['"],\s*)$""")
READ_AFTER = re.compile(r"\s+(not\s+)?in\b")


def _code(expression):
    """The expression with its string literals blanked, except those that read a variable by
    its name (READ_BEFORE, READ_AFTER)."""
    def blank(match):
        if READ_BEFORE.search(expression, 0, match.start()) or READ_AFTER.match(expression, match.end()):
            return match.group(0)
        return "''"
    return re.sub(r"'[^']*'|\"[^\"]*\"", blank, expression).replace("['", "[").replace("']", "]")


def _files():
    yield os.path.join(REPO_ROOT, "site.yml")
    for top in ("roles", "playbooks"):
        for folder, _dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            for name in sorted(files):
                if name.endswith((".yml", ".yaml", ".j2")):
                    yield os.path.join(folder, name)


def _loaded(path):
    with open(path) as handle:
        text = handle.read()
    if path.endswith(".j2"):
        return text, [m.group(1) or m.group(2) for m in re.finditer(r"{{(.*?)}}|{%(.*?)%}", text, re.S)]
    return text, list(_expressions(yaml.safe_load(text)))


@pytest.mark.parametrize("name", PROFILE_INPUTS)
def test_roles_and_playbooks_read_the_input_only_through_the_profile(name):
    offenders = []
    for path in _files():
        rel = os.path.relpath(path, REPO_ROOT)
        for expression in _loaded(path)[1]:
            flat = " ".join(expression.split())
            if not re.search(r"(?<![\w.])%s(?!\w)" % name, _code(flat)):
                continue
            if ALLOWED.get((rel, name), "\0") in flat:
                continue
            offenders.append("%s: %s" % (rel, flat[:140]))
    assert offenders == []


def test_the_os_group_map_and_list_live_only_in_the_profile():
    """The distribution -> OS group map and the OS group list of _host_profile, nowhere else."""
    offenders = []
    groups = set(_host_profile.OS_GROUPS)
    for path in _files():
        rel = os.path.relpath(path, REPO_ROOT)
        if path.endswith(".j2"):
            continue
        with open(path) as handle:
            doc = yaml.safe_load(handle.read())
        for node in _walk(doc):
            if isinstance(node, dict) and len(node) > 2 and all(
                    node.get(d) == g for d, g in _host_profile.OS_GROUP_BY_DISTRIBUTION.items() if d in node):
                if sum(1 for d in _host_profile.OS_GROUP_BY_DISTRIBUTION if d in node) >= 3:
                    offenders.append("%s: a distribution -> OS group map" % rel)
            if isinstance(node, list) and len(node) >= 4 and all(isinstance(g, str) for g in node) and set(node) <= groups:
                offenders.append("%s: the OS group list %s" % (rel, node))
    assert offenders == []


def test_the_data_dir_default_lives_only_in_the_profile():
    offenders = []
    for path in _files():
        rel = os.path.relpath(path, REPO_ROOT)
        if rel.endswith("meta/argument_specs.yml"):
            continue  # documentation of the default
        text, expressions = _loaded(path)
        for expression in expressions:
            if _host_profile.DEFAULT_DATA_DIR in expression:
                offenders.append("%s: %s" % (rel, " ".join(expression.split())[:140]))
    assert offenders == []


def _walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_the_scan_catches_a_second_rule_and_skips_prose():
    doc = {"vars": {"x": "{{ k3s_data_dir | default('/var/lib/rancher/k3s') }}"}, "when": "k3s_server_group in group_names",
           "msg": "{{ 'set k3s_node_name' ~ x }}", "y": "{{ hostvars[h]['k3s_gpu_container_runtime'] }}"}
    found = " ".join(_code(e) for e in _expressions(doc))
    for name in ("k3s_data_dir", "k3s_server_group", "k3s_gpu_container_runtime"):
        assert re.search(r"(?<![\w.])%s(?!\w)" % name, found)
    assert "k3s_node_name" not in found


def test_the_scan_finds_expressions_and_skips_prose():
    doc = {"when": "k3s_gpu_node | bool", "msg": "set k3s_gpu_node: true {{ k3s_gpu_node | default(false) | bool }}",
           "description": "k3s_gpu_node is true"}
    assert list(_expressions(doc)) == ["k3s_gpu_node | bool", " k3s_gpu_node | default(false) | bool "]


@pytest.mark.parametrize("expression", [
    "hostvars[host].get('k3s_gpu_node')", "lookup('vars', 'k3s_gpu_node')",
    "lookup('ansible.builtin.vars', \"k3s_gpu_node\", default=false)", "'k3s_gpu_node' in hostvars[host]",
    "'k3s_gpu_node' not in vars",
])
def test_the_scan_catches_a_name_read_by_its_string(expression):
    assert re.search(r"(?<![\w.])k3s_gpu_node(?!\w)", _code(expression))
