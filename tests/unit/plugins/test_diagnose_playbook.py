# -*- coding: utf-8 -*-
"""playbooks/diagnose.yml on a host without K3s: it must finish, change nothing and report.

The run reads a stand-in K3s config and generated containerd config (in a temporary data
dir) that hold known secrets, at -vvv: none of them may show in the output (docs/safety.md).
"""

from __future__ import absolute_import, division, print_function

import os
import re
import shutil
import sys

from conftest import REPO_ROOT, ansible_playbook

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "secrets"))
import find_secrets  # noqa: E402  pylint: disable=wrong-import-position

SECRETS = ["diag-db-pass-2c8e44f1", "diag-s3-secret-9b1d07aa", "diag-registry-pass-7f3a91c",
           "diag-log-secret-41e6b2d0"]


def _stand_in_k3s(tmp):
    """A data dir and config.yaml as K3s leaves them, with credentials in them."""
    data_dir = os.path.join(tmp, "k3s")
    ctd = os.path.join(data_dir, "agent", "etc", "containerd")
    os.makedirs(ctd)
    with open(os.path.join(ctd, "config.toml"), "w") as handle:
        handle.write('version = 3\n[plugins."io.containerd.cri.v1.images".registry.configs."r.lab.invalid".auth]\n'
                     '  username = "lab"\n  password = "%s"\n' % SECRETS[2])
    os.makedirs(os.path.join(data_dir, "agent", "containerd"))
    with open(os.path.join(data_dir, "agent", "containerd", "containerd.log"), "w") as handle:
        handle.write('level=info msg="pulling with auth" token=%s\n' % SECRETS[3])
    config = os.path.join(tmp, "config.yaml")
    with open(config, "w") as handle:
        handle.write("datastore-endpoint: postgres://k3s:%s@db.lab.invalid:5432/k3s\n"
                     "etcd-s3-secret-key: %s\nnode-taint: [nvidia.com/gpu=true:NoSchedule]\n" % (SECRETS[0], SECRETS[1]))
    return data_dir, config


def test_diagnose_is_read_only_and_safe_without_a_cluster(tmp_path):
    data_dir, config = _stand_in_k3s(str(tmp_path))
    proc = ansible_playbook(
        "-vvv", "-i", os.path.join(HERE, "addons_render", "diagnose-inventory.yml"),
        "-e", "k3s_data_dir=%s" % data_dir, "-e", "diagnose_k3s_config=%s" % config,
        os.path.join(REPO_ROOT, "playbooks", "diagnose.yml"))
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:]
    recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert recap and recap.groups() == ("0", "0", "0"), out[-3000:]
    summary = re.search(r"- '?localhost: (.*?)'?$", out, re.MULTILINE)
    assert summary, out[-3000:]
    # the stand-in files were read (their content reached the detectors) and nothing leaked
    assert find_secrets.leaks(out, SECRETS) == []
    assert "Read K3s's generated containerd config" in out and "no_log: true" in out
    if shutil.which("nvidia-smi") is None:
        # no driver and no toolkit on this machine; the API is down, so no node finding
        assert "driver_not_installed" in summary.group(1)
        assert "node_not_registered" not in summary.group(1)
        assert "[driver_not_installed] No NVIDIA driver on a GPU node" in out
