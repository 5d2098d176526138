# -*- coding: utf-8 -*-
"""Real-peer check of k3s_containerd_runtime's drop-in (run by scripts/peers.sh): the
file the module writes into the folder K3s's generated config imports must be loaded by a real
containerd, and ``containerd config dump`` must show the runtimes on top of K3s's own settings.

Binaries as in test_containerd_peer.py (containerd 1.7 from Debian 13 or $CONTAINERD_V2; containerd
2.x from Debian unstable or $CONTAINERD_V3). The generated config.toml is the stand-in
of tests/unit/fixtures/k3s/base-v*.toml plus the ``imports`` line newer K3s releases write (not
captured from K3s). Each case names the containerd and the config version it loads.
"""

from __future__ import absolute_import, division, print_function

import subprocess

import pytest

from conftest import script
from k3s_render import k3s_base
from test_containerd_peer import containerd_binary
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime as mod

DETECTED = {'nvidia': '/usr/bin/nvidia-container-runtime'}


def _binary(major):
    """The containerd of ``major`` from the peers harness (1.7 or 2.x; fails under scripts/peers.sh when absent)."""
    return containerd_binary(2 if major == 1 else 3)[0]


@pytest.fixture
def node(tmp_path):
    """A K3s data dir whose generated config.toml (stand-in) imports the drop-in folder."""
    data = tmp_path / 'k3s'
    folder = data / 'agent' / 'etc' / 'containerd'
    folder.mkdir(parents=True)
    binary = tmp_path / 'opt' / 'nvidia-container-runtime'
    binary.parent.mkdir()
    script(binary, 'exit 0')

    class Node(object):
        config = folder / 'config.toml'
        runtime = str(binary)

        @staticmethod
        def generate(version, detected=None):
            text = k3s_base(version, detected, root=str(tmp_path / 'root'), state=str(tmp_path / 'state'))
            line = 'imports = ["%s/*.toml"]' % (folder / ctd.DROP_IN_DIR[version])
            folder.joinpath('config.toml').write_text(text.replace('version = %d\n' % version,
                                                                   'version = %d\n%s\n' % (version, line), 1))

        @staticmethod
        def args(**extra):
            args = dict(data_dir=str(data), config_version='auto', k3s_path=str(tmp_path / 'no-k3s'),
                        runtimes=[dict(name='nvidia', binary=str(binary), systemd_cgroup=False)])
            args.update(extra)
            return args
    return Node


def dump(binary, config):
    proc = subprocess.run([binary, '--config', str(config), 'config', 'dump'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    assert proc.returncode == 0, '%s rejected %s: %s' % (binary, config, proc.stderr)
    return _toml.loads(proc.stdout)


def runtimes_of(config):
    """The runtimes table of a dumped config (containerd 2 dumps version 3 names, 1.x version 2)."""
    plugins = config['plugins']
    cri = plugins.get(ctd.CRI_PLUGIN[3]) or plugins[ctd.CRI_PLUGIN[2]]
    return cri['containerd']['runtimes'], cri


# (containerd major, config version): containerd 2 reads both versions, 1.x only version 2.
LOADS = [(2, 3), (2, 2)]


@pytest.mark.parametrize('major,version', LOADS, ids=['containerd2-v3', 'containerd2-v2'])
@pytest.mark.parametrize('detected', [None, DETECTED], ids=['k3s-detected-none', 'k3s-detected-nvidia'])
def test_containerd2_loads_the_drop_in_over_k3s_config(node, run_module, major, version, detected):
    binary = _binary(major)
    node.generate(version, detected)
    result, failed = run_module(mod, node.args(method='drop_in', enable_cdi=True,
                                               cdi_spec_dirs=['/etc/cdi', '/var/run/cdi', '/srv/cdi']))
    assert not failed and result['method'] == 'drop_in', result
    runtimes, cri = runtimes_of(dump(binary, node.config))
    nvidia = runtimes['nvidia']
    # The drop-in wins, also over a runtime K3s detected itself (another binary, SystemdCgroup).
    assert nvidia['options']['BinaryName'] == node.runtime, nvidia
    assert nvidia['options']['SystemdCgroup'] is False
    assert nvidia['runtime_type'] == 'io.containerd.runc.v2'
    # K3s's own settings survive the merge.
    assert runtimes['runc']['options']['SystemdCgroup'] is True
    assert cri['cni']['conf_dir'] == '/var/lib/rancher/k3s/agent/etc/cni/net.d'
    assert cri['enable_cdi'] is True and cri['cdi_spec_dirs'] == ['/etc/cdi', '/var/run/cdi', '/srv/cdi']
    # The module's own view of the merged config agrees with containerd's.
    merged = ctd.merge_tables(_toml.loads(node.config.read_text()), _toml.loads(open(result['path']).read()))
    assert ctd.effective_problems(merged, version, result['runtimes'], True,
                                  ['/etc/cdi', '/var/run/cdi', '/srv/cdi']) == []


def test_containerd1_would_lose_k3s_settings_to_a_drop_in(node):
    """Why a version 2 drop-in is written only for containerd 2: containerd 1.x replaces K3s's
    whole CRI plugin table with the drop-in's (runc and the CNI folders are gone)."""
    binary = _binary(1)
    node.generate(2)
    runtime = dict(name='nvidia', binary=node.runtime, runtime_type='io.containerd.runc.v2', systemd_cgroup=True)
    folder = node.config.parent / ctd.DROP_IN_DIR[2]
    folder.mkdir()
    (folder / ctd.DROP_IN_NAME).write_text(ctd.render_drop_in(2, [runtime]))
    runtimes, cri = runtimes_of(dump(binary, node.config))
    assert runtimes['nvidia']['options']['BinaryName'] == node.runtime
    assert 'runc' not in runtimes
    assert cri['cni']['conf_dir'] != '/var/lib/rancher/k3s/agent/etc/cni/net.d'


def test_module_keeps_the_template_for_containerd1(node, run_module, tmp_path):
    """The module's side of the case above: K3s v1.31.5 (containerd 1.7) gets the template."""
    fake = tmp_path / 'k3s-bin'
    fake.write_text('#!/bin/sh\necho "k3s version v1.31.5+k3s1 (abc)"\n')
    fake.chmod(0o755)
    node.generate(2)
    result, failed = run_module(mod, node.args(k3s_path=str(fake)))
    assert not failed and result['method'] == 'template' and 'containerd 1.x' in result['method_reason']
