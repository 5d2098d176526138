# -*- coding: utf-8 -*-
"""playbooks/diagnose.yml on a host without K3s: it must finish, change nothing and report."""

from __future__ import absolute_import, division, print_function

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def test_diagnose_is_read_only_and_safe_without_a_cluster():
    tmp = tempfile.mkdtemp(prefix="k3s_gpu-diagnose-")
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
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run(
        [playbook, "-i", os.path.join(HERE, "addons_render", "diagnose-inventory.yml"),
         os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True, timeout=600, check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:]
    recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert recap and recap.groups() == ("0", "0", "0"), out[-3000:]
    summary = re.search(r"- '?localhost: (.*?)'?$", out, re.MULTILINE)
    assert summary, out[-3000:]
    if shutil.which("nvidia-smi") is None:
        # no driver and no toolkit on this machine; the API is down, so no node finding
        assert "driver_not_installed" in summary.group(1)
        assert "node_not_registered" not in summary.group(1)
        assert "[driver_not_installed] No NVIDIA driver on a GPU node" in out
