# -*- coding: utf-8 -*-
"""diagnose.yml and smoke_test.yml run their cluster-side plays on the first host of
k3s_server_group (the host profile's first_server), not on ``server[0]``."""

from __future__ import absolute_import, division, print_function

import os
import re

import pytest

from conftest import REPO_ROOT, ansible_playbook

HERE = os.path.dirname(os.path.abspath(__file__))
INVENTORY = os.path.join(HERE, "addons_render", "server-group-inventory.yml")


def _run(playbook, *args):
    return ansible_playbook("-i", INVENTORY, *args, os.path.join(REPO_ROOT, "playbooks", playbook))


def _ran_on_localhost(out, task):
    """True when ``task`` ran on localhost (a result line follows its banner)."""
    match = re.search(r"TASK \[(?:[\w.]+ : )?%s\][^\n]*\n(.*?)(?:\n\n|\Z)" % re.escape(task), out, re.S)
    return bool(match) and re.search(r"^(ok|changed|skipping|fatal): \[localhost\]", match.group(1), re.M) is not None


@pytest.mark.parametrize("playbook, args, task", [
    # Read-only: the first server reads the nodes (kubectl is missing here; the play tolerates it).
    ("diagnose.yml", [], "Read the nodes"),
    # Check mode: the role plans on the first server and creates nothing.
    ("smoke_test.yml", ["--check"], "Select the GPU nodes from the inventory"),
])
def test_cluster_side_plays_run_on_the_first_host_of_k3s_server_group(playbook, args, task):
    proc = _run(playbook, *args)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert _ran_on_localhost(proc.stdout, task), proc.stdout[-5000:]
