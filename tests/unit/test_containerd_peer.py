# -*- coding: utf-8 -*-
"""Real-peer check: the template k3s_containerd_runtime writes, rendered the way K3s
renders it (Go's text/template, fixtures/k3s/render.go, with a stand-in base config, see
k3s_render.py), must load in a real containerd from Debian, and ``containerd config dump``
must show the runtimes:

- config version 2: Debian 12's containerd 1.6 (``containerd`` on PATH, or $CONTAINERD_V2);
- config version 3: Debian unstable's containerd 2.x ($CONTAINERD_V3, or the copy that
  scripts/containerd-peer.sh extracts under .cache/containerd-peer/).

The binaries are Debian's; the base config is a stand-in for K3s's rendering (not
captured from K3s). Without a binary (or go) the test is skipped, unless
K3S_GPU_CONTAINERD_PEER=1 (set by scripts/containerd-peer.sh), where a missing one fails.
"""

from __future__ import absolute_import, division, print_function

import glob
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT
from k3s_render import k3s_base, render as render_py, render_go
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml


def containerd_binary(version):
    env = os.environ.get('CONTAINERD_V%d' % version)
    if env:
        return env
    if version == 2:
        found = shutil.which('containerd')
        return found if found and _major(found) == 1 else None
    found = sorted(glob.glob(os.path.join(REPO_ROOT, '.cache', 'containerd-peer', 'containerd_2*', 'usr', 'bin',
                                          'containerd')))
    return found[-1] if found else None


def _major(binary):
    out = subprocess.run([binary, '--version'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, check=False).stdout
    for word in out.split():
        if word[:1].isdigit() or word.startswith('v'):
            try:
                return int(word.lstrip('v').split('.')[0])
            except ValueError:
                continue
    return None


@pytest.fixture(params=[2, 3], ids=['v2-containerd1', 'v3-containerd2'])
def peer(request, tmp_path):
    version = request.param
    binary = containerd_binary(version)
    if not binary:
        message = ('no containerd %s binary for config version %d: run scripts/containerd-peer.sh (it installs '
                   'Debian\'s containerd and extracts containerd 2.x from Debian unstable)'
                   % ('1.x' if version == 2 else '2.x', version))
        if os.environ.get('K3S_GPU_CONTAINERD_PEER') == '1':
            pytest.fail(message)
        pytest.skip(message)
    assert _major(binary) == (1 if version == 2 else 2), '%s is not containerd %s' % (binary, version)

    def dump(config_text):
        path = tmp_path / 'config.toml'
        path.write_text(config_text)
        proc = subprocess.run([binary, '--config', str(path), 'config', 'dump'], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def base(detected=None):
        return k3s_base(version, detected, root=str(tmp_path / 'root'), state=str(tmp_path / 'state'))

    def render(template, detected=None):
        """Go's text/template (as K3s renders) when go is installed, else the Python stand-in."""
        if shutil.which('go'):
            return render_go(template, version, detected, str(tmp_path), root=str(tmp_path / 'root'),
                             state=str(tmp_path / 'state'))
        if os.environ.get('K3S_GPU_CONTAINERD_PEER') == '1':
            pytest.fail('go is not installed: run scripts/containerd-peer.sh (it installs golang-go)')
        return ctd.render_like_k3s(template, base(detected), detected=set(detected or {}))

    return version, dump, render, base


RUNTIMES = [
    dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime', runtime_type='io.containerd.runc.v2',
         systemd_cgroup=True),
    dict(name='nvidia-cdi', binary='/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi',
         runtime_type='io.containerd.runc.v2', systemd_cgroup=False),
]


def runtimes_in(dumped, version):
    config = _toml.loads(dumped)
    return config, config['plugins'][ctd.CRI_PLUGIN[version]]['containerd']['runtimes']


def test_containerd_loads_the_rendered_block(peer):
    version, dump, render, _base = peer
    template = ctd.apply_block(None, version, RUNTIMES)
    rc, out, err = dump(render(template))
    assert rc == 0, 'containerd rejected the rendered template: %s' % err
    config, runtimes = runtimes_in(out, version)
    assert runtimes['nvidia']['runtime_type'] == 'io.containerd.runc.v2'
    assert runtimes['nvidia']['options']['BinaryName'] == '/usr/bin/nvidia-container-runtime'
    assert runtimes['nvidia']['options']['SystemdCgroup'] is True
    assert runtimes['nvidia-cdi']['options']['BinaryName'] == '/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi'
    assert runtimes['nvidia-cdi']['options']['SystemdCgroup'] is False
    assert runtimes['runc']['options']['SystemdCgroup'] is True  # K3s's base is intact
    if version == 3:
        cri = config['plugins'][ctd.CRI_PLUGIN[3]]
        assert cri['enable_cdi'] is True
        assert cri['cdi_spec_dirs'] == ctd.CONTAINERD2_CDI_SPEC_DIRS
        assert ctd.effective_problems(config, 3, RUNTIMES, enable_cdi=True) == []
    else:
        assert ctd.effective_problems(config, 2, RUNTIMES) == []


def test_containerd_loads_block_when_k3s_detected_the_runtime(peer):
    version, dump, render, _base = peer
    template = ctd.apply_block(None, version, RUNTIMES)
    detected = {'nvidia': '/usr/local/nvidia/toolkit/nvidia-container-runtime'}
    rc, out, err = dump(render(template, detected))
    assert rc == 0, 'containerd rejected the rendered template: %s' % err
    _config, runtimes = runtimes_in(out, version)
    # K3s's own table wins; ours is not rendered a second time.
    assert runtimes['nvidia']['options']['BinaryName'] == detected['nvidia']
    assert runtimes['nvidia-cdi']['options']['BinaryName'] == RUNTIMES[1]['binary']


def test_containerd_rejects_a_block_that_redefines_a_table(peer):
    """The peer can fail: an unguarded block next to K3s's detected runtime is refused."""
    version, dump, _render, base = peer
    detected = {'nvidia': '/usr/bin/nvidia-container-runtime'}
    broken = base(detected) + ctd.render_block(version, RUNTIMES, guarded=False)
    rc, _out, err = dump(broken)
    assert rc != 0
    assert 'dup' in err.lower() or 'already' in err.lower() or 'defined' in err.lower(), err


@pytest.mark.parametrize('version', [2, 3])
@pytest.mark.parametrize('detected', [None, {'nvidia': '/usr/local/nvidia/toolkit/nvidia-container-runtime'}])
def test_python_stand_in_renders_like_go_text_template(version, detected, tmp_path):
    """The Python stand-in used by the unit tests gives the same config as Go's text/template."""
    if not shutil.which('go'):
        if os.environ.get('K3S_GPU_CONTAINERD_PEER') == '1':
            pytest.fail('go is not installed: run scripts/containerd-peer.sh (it installs golang-go)')
        pytest.skip('go is not installed (scripts/containerd-peer.sh installs golang-go)')
    template = '# user line\n' + ctd.apply_block(None, version, RUNTIMES)
    by_go = _toml.loads(render_go(template, version, detected, str(tmp_path)))
    by_python = _toml.loads(render_py(template, version, detected))
    assert by_go == by_python
