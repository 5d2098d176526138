# -*- coding: utf-8 -*-
"""diagnose.yml and smoke_test.yml run their cluster-side plays on the first host of
k3s_server_group (the host profile's first_server), not on ``server[0]``."""

from __future__ import absolute_import, division, print_function

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
INVENTORY = os.path.join(HERE, "addons_render", "server-group-inventory.yml")


def _run(playbook, *args):
    tmp = tempfile.mkdtemp(prefix="k3s_gpu-targets-")
    ns = os.path.join(tmp, "coll", "ansible_collections", "k3s_gpu")
    os.makedirs(ns)
    os.symlink(REPO_ROOT, os.path.join(ns, "cluster"))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([os.path.join(tmp, "coll"),
                                                     os.path.join(REPO_ROOT, ".collections")]),
        "ANSIBLE_HOME": os.path.join(tmp, "home"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(tmp, "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    })
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY]
        + list(args) + [os.path.join(REPO_ROOT, "playbooks", playbook)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True, timeout=600, check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    return proc


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
