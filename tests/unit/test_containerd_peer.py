# -*- coding: utf-8 -*-
"""Upstream peers for k3s_containerd_runtime: real containerd loads what the module makes K3s
render, and the runtime tables match what the real ``nvidia-ctk runtime configure`` writes.

- containerd 1.7 (config version 2) and 2.x (config version 3): Debian's packages, fetched by
  scripts/peers.sh ($CONTAINERD_V2, $CONTAINERD_V3, else its cache under .cache/peers/);
  ``containerd --config F config dump`` loads a config the way the daemon does and prints it
  merged (imports included) with every default filled in.
- nvidia-ctk: the NVIDIA container toolkit's, built from its Go module by scripts/upstream.sh
  (tests/upstream/peers-toolkit).
- K3s's rendering: K3s is not served by the Go module proxy, so the template is rendered with
  Go's text/template over a base config built from documented facts (k3s_render.py); that
  part is a stand-in.

The K3s cases: no NVIDIA runtime detected by K3s (the toolkit came after K3s started), ``nvidia``
detected, ``nvidia`` detected and made the default (``--default-runtime``), and both
``nvidia`` and ``nvidia-cdi`` detected. Without the binaries the tests are skipped, unless
K3S_GPU_UPSTREAM_PEER=1 (scripts/peers.sh), where a missing one fails.
"""

from __future__ import absolute_import, division, print_function

import glob
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT
from k3s_render import DROPIN_DIR, k3s_base, render as render_py, render_go
from test_cdi_peer import upstream_binary
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime as mod

PEER = os.environ.get('K3S_GPU_UPSTREAM_PEER') == '1'
NVIDIA = '/usr/bin/nvidia-container-runtime'  # where K3s finds it (and where the packages put it)
NVIDIA_CDI = '/usr/bin/nvidia-container-runtime.cdi'
CUSTOM_CDI = '/opt/k3s-gpu-peer/bin/nvidia-container-runtime.cdi'  # a path K3s does not search
# What the module is asked for in every case: nvidia where K3s looks, nvidia-cdi elsewhere.
RUNTIMES = [dict(name='nvidia', binary=NVIDIA), dict(name='nvidia-cdi', binary=CUSTOM_CDI)]
K3S_CASES = [
    # id, runtimes K3s detected itself {name: binary}, K3s's --default-runtime
    ('k3s-detected-none', {}, None),
    ('k3s-detected-nvidia', {'nvidia': NVIDIA}, None),
    ('k3s-detected-nvidia-default', {'nvidia': NVIDIA}, 'nvidia'),
    ('k3s-detected-both-default', {'nvidia': NVIDIA, 'nvidia-cdi': NVIDIA_CDI}, 'nvidia'),
]


def _fail_or_skip(message):
    if PEER:
        pytest.fail(message)
    pytest.skip(message)


def _run(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr


def containerd_binary(version):
    """(binary, name) of the containerd for config ``version``: 1.7 for 2, 2.x for 3."""
    major = 1 if version == 2 else 2
    binary = os.environ.get('CONTAINERD_V%d' % version)
    if not binary:
        found = sorted(glob.glob(os.path.join(REPO_ROOT, '.cache', 'peers', 'containerd', 'containerd_%d.*' % major,
                                              'usr', 'bin', 'containerd')))
        binary = found[-1] if found else None
    if not binary:
        _fail_or_skip('no containerd %d.x for config version %d: run scripts/peers.sh (it fetches Debian\'s)'
                      % (major, version))
    out = _run([binary, '--version'])[1].strip()
    words = [w.lstrip('v') for w in out.split() if w[:1].isdigit() or w[:2] in ('v1', 'v2')]
    assert words and words[0].split('.')[0] == str(major), '%s is not containerd %d.x: %s' % (binary, major, out)
    if version == 2:
        assert words[0].split('.')[:2] == ['1', '7'], '%s is not containerd 1.7: %s' % (binary, out)
    return binary, 'containerd %s (%s)' % (words[0], binary)


@pytest.fixture
def ctk():
    """(binary, name) of the real nvidia-ctk."""
    binary = upstream_binary('nvidia-ctk')
    version = _run([binary, '--version'])[1].strip().splitlines()[0]
    return binary, '%s (%s)' % (version, binary)


class Peer(object):
    """One containerd (for config ``version``) and a scratch K3s layout under ``tmp``."""

    def __init__(self, version, tmp):
        self.version = version
        self.tmp = tmp
        self.binary, self.name = containerd_binary(version)
        self.root, self.state = str(tmp / 'root'), str(tmp / 'state')
        self.etc = tmp / 'k3s' / 'agent' / 'etc' / 'containerd'  # <data-dir>/agent/etc/containerd
        self.etc.mkdir(parents=True)

    def base(self, detected=None, default_runtime=None, dropins=False):
        return k3s_base(self.version, detected, root=self.root, state=self.state, default_runtime=default_runtime,
                        dropin_dir=str(self.etc / DROPIN_DIR[self.version]) if dropins else None)

    def render(self, template, detected=None, default_runtime=None):
        return render_go(template, self.version, detected, str(self.tmp), root=self.root, state=self.state,
                         default_runtime=default_runtime)

    def dump(self, text, name='config.toml'):
        """containerd's view of a config (the parsed dump); fails naming containerd when it refuses it."""
        path = self.tmp / name
        path.write_text(text)
        rc, out, err = _run([self.binary, '--config', str(path), 'config', 'dump'])
        assert rc == 0, '%s refused %s: %s\n--- config ---\n%s' % (self.name, path, err.strip(), text)
        return _toml.loads(out)

    def runtimes(self, config):
        cri = config['plugins'][ctd.CRI_PLUGIN[self.version]]
        return cri['containerd']['runtimes'], cri['containerd'].get('default_runtime_name')


@pytest.fixture(params=[2, 3], ids=['v2-containerd1.7', 'v3-containerd2'])
def peer(request, tmp_path):
    if not shutil.which('go'):
        _fail_or_skip('go is not on PATH (the K3s stand-in renders with Go\'s text/template): run scripts/peers.sh')
    return Peer(request.param, tmp_path)


def _module_template(peer, run_module, detected, default_runtime):
    """The template k3s_containerd_runtime writes on a node whose K3s generated ``peer.base``."""
    (peer.etc / 'config.toml').write_text(peer.base(detected, default_runtime))
    args = dict(data_dir=str(peer.tmp / 'k3s'), runtimes=RUNTIMES, allow_missing_binary=True)
    if default_runtime:
        args['default_runtime'] = default_runtime
    result, failed = run_module(mod, args)
    assert not failed, result
    assert result['managed'] and result['config_version'] == peer.version
    return (peer.etc / ctd.TEMPLATE_NAME[peer.version]).read_text(), result


def _table(runtimes, name):
    table = runtimes.get(name) or {}
    options = table.get('options') or {}
    return {'runtime_type': table.get('runtime_type'), 'BinaryName': options.get('BinaryName'),
            'SystemdCgroup': options.get('SystemdCgroup')}


@pytest.mark.parametrize('case_id,detected,default_runtime', K3S_CASES, ids=[c[0] for c in K3S_CASES])
def test_containerd_loads_what_k3s_renders_from_the_template(peer, run_module, case_id, detected, default_runtime):
    template, result = _module_template(peer, run_module, detected, default_runtime)
    config = peer.dump(peer.render(template, detected, default_runtime))
    runtimes, default = peer.runtimes(config)
    for runtime in RUNTIMES:
        got = _table(runtimes, runtime['name'])
        # K3s's own table wins for a runtime it detected: the module's is guarded out.
        binary = detected.get(runtime['name'], runtime['binary'])
        want = {'runtime_type': 'io.containerd.runc.v2', 'BinaryName': binary, 'SystemdCgroup': True}
        assert got == want, '%s, %s: runtime %s is %s, expected %s' % (peer.name, case_id, runtime['name'], got, want)
    assert _table(runtimes, 'runc')['SystemdCgroup'] is True  # K3s's base is intact
    assert default == (default_runtime or 'runc'), '%s, %s: default runtime %s' % (peer.name, case_id, default)
    problems = ctd.effective_problems(config, peer.version, result['runtimes'])
    if case_id == 'k3s-detected-both-default':
        # The template cannot override a runtime K3s detected; the module says so.
        assert problems == ['runtime nvidia-cdi runs %r, not %s' % (NVIDIA_CDI, CUSTOM_CDI)]
    else:
        assert problems == []
    if peer.version == 3:
        assert config['plugins'][ctd.CRI_PLUGIN[3]]['enable_cdi'] is True  # containerd 2's default


@pytest.mark.parametrize('case_id,detected,default_runtime', K3S_CASES, ids=[c[0] for c in K3S_CASES])
def test_runtime_tables_match_nvidia_ctk(peer, run_module, ctk, case_id, detected, default_runtime):
    """The same runtime written by ``nvidia-ctk runtime configure --runtime=containerd`` into a
    copy of K3s's generated config: the same runtime_type, BinaryName and SystemdCgroup (both
    loaded by containerd). nvidia-ctk 1.20 writes a drop-in file and adds its folder to the
    config's imports; K3s rewrites config.toml at every start, so that import would not last on
    a node (docs/modules.md)."""
    ctk_binary, ctk_name = ctk
    template, _result = _module_template(peer, run_module, detected, default_runtime)
    ours, our_default = peer.runtimes(peer.dump(peer.render(template, detected, default_runtime)))
    for runtime in RUNTIMES:
        name, binary = runtime['name'], runtime['binary']
        copy = peer.tmp / ('ctk-%s.toml' % name)
        copy.write_text(peer.base(detected, default_runtime))
        dropin = peer.tmp / ('ctk-%s.d' % name) / '99-nvidia.toml'
        argv = [ctk_binary, 'runtime', 'configure', '--runtime=containerd', '--config=%s' % copy,
                '--drop-in-config=%s' % dropin, '--nvidia-runtime-name=%s' % name,
                '--nvidia-runtime-path=%s' % binary]
        if default_runtime == name:
            argv.append('--nvidia-set-as-default')
        rc, _out, err = _run(argv)
        assert rc == 0, '%s failed: %s' % (ctk_name, err)
        theirs, their_default = peer.runtimes(peer.dump(copy.read_text(), name='ctk-%s-loaded.toml' % name))
        mine, want = _table(ours, name), _table(theirs, name)
        if name in detected and detected[name] != binary:
            # The one difference: nvidia-ctk's drop-in overrides the binary K3s detected, a
            # template cannot (K3s's table wins); see docs/modules.md.
            assert mine['BinaryName'] == detected[name] and want['BinaryName'] == binary, (mine, want)
            mine = dict(mine, BinaryName=binary)
        assert mine == want, ('%s, %s, runtime %s: k3s_containerd_runtime gives %s, %s writes %s'
                              % (peer.name, case_id, name, mine, ctk_name, want))
        assert our_default == their_default, ('%s, %s: default runtime %s with the module and K3s, %s with %s'
                                              % (peer.name, case_id, our_default, their_default, ctk_name))


def test_nvidia_ctk_without_a_drop_in_file_loses_the_runtime(peer, ctk):
    """Documented in docs/modules.md: nvidia-ctk 1.20 has no in-place mode for containerd config
    version 2 and 3. With --drop-in-config="" it writes the runtime to the config file, then the
    config (with an import of its own folder) over it: the runtime is gone."""
    ctk_binary, ctk_name = ctk
    copy = peer.tmp / 'config.toml'
    copy.write_text(peer.base())
    rc, _out, err = _run([ctk_binary, 'runtime', 'configure', '--runtime=containerd', '--config=%s' % copy,
                          '--drop-in-config=', '--nvidia-runtime-name=nvidia-cdi', '--nvidia-runtime-path=%s' % NVIDIA_CDI])
    assert rc == 0, err
    written = _toml.loads(copy.read_text())
    assert written['imports'] == ['%s/*.toml' % peer.tmp], ctk_name
    assert 'nvidia-cdi' not in written['plugins'][ctd.CRI_PLUGIN[peer.version]]['containerd']['runtimes'], ctk_name


# ---- drop-in files: K3s's imports of config.toml.d / config-v3.toml.d -----------------------------
# Each producer writes drop-in files into the drop-in folder of a K3s node whose generated config
# imports that folder, and says what containerd must then show. k3s_containerd_runtime's drop-in
# (issue #12 item 3) adds its producer here.

def _ctk_dropin(peer, ctk_binary, detected, binary):
    copy = peer.tmp / 'ctk-scratch.toml'  # nvidia-ctk also adds its import here; K3s would drop it
    copy.write_text(peer.base(detected, dropins=True))
    dropin = peer.etc / DROPIN_DIR[peer.version] / '99-nvidia.toml'
    rc, _out, err = _run([ctk_binary, 'runtime', 'configure', '--runtime=containerd', '--config=%s' % copy,
                          '--drop-in-config=%s' % dropin, '--nvidia-runtime-name=nvidia',
                          '--nvidia-runtime-path=%s' % binary])
    assert rc == 0, err


DROPIN_PRODUCERS = [
    # id, runtimes K3s detected, producer(peer, ctk_binary), the nvidia runtime's binary afterwards
    ('nvidia-ctk-drop-in', {}, lambda peer, ctk: _ctk_dropin(peer, ctk, {}, NVIDIA), NVIDIA),
    ('nvidia-ctk-drop-in-overrides-detected', {'nvidia': NVIDIA},
     lambda peer, ctk: _ctk_dropin(peer, ctk, {'nvidia': NVIDIA}, '/opt/nvidia/bin/nvidia-container-runtime'),
     '/opt/nvidia/bin/nvidia-container-runtime'),
]


@pytest.mark.parametrize('case_id,detected,produce,binary', DROPIN_PRODUCERS, ids=[c[0] for c in DROPIN_PRODUCERS])
def test_containerd_merges_drop_ins_into_k3s_config(peer, ctk, case_id, detected, produce, binary):
    produce(peer, ctk[0])
    runtimes, _default = peer.runtimes(peer.dump(peer.base(detected, dropins=True)))
    got = _table(runtimes, 'nvidia')
    want = {'runtime_type': 'io.containerd.runc.v2', 'BinaryName': binary, 'SystemdCgroup': True}
    assert got == want, '%s, %s: runtime nvidia is %s, expected %s' % (peer.name, case_id, got, want)
    assert _table(runtimes, 'runc')['SystemdCgroup'] is True


def test_containerd_rejects_a_block_that_redefines_a_table(peer):
    """The peer can fail: an unguarded block next to K3s's detected runtime is refused."""
    runtimes = [dict(name='nvidia', binary=NVIDIA, runtime_type=ctd.DEFAULT_RUNTIME_TYPE, systemd_cgroup=True)]
    broken = peer.base({'nvidia': NVIDIA}) + ctd.render_block(peer.version, runtimes, guarded=False)
    path = peer.tmp / 'broken.toml'
    path.write_text(broken)
    rc, _out, err = _run([peer.binary, '--config', str(path), 'config', 'dump'])
    assert rc != 0, '%s accepted a runtime table defined twice' % peer.name
    assert 'dup' in err.lower() or 'already' in err.lower() or 'defined' in err.lower(), err


@pytest.mark.parametrize('version', [2, 3])
@pytest.mark.parametrize('detected,default_runtime', [(None, None), ({'nvidia': NVIDIA}, None),
                                                      ({'nvidia': NVIDIA}, 'nvidia')])
def test_python_stand_in_renders_like_go_text_template(version, detected, default_runtime, tmp_path):
    """The Python evaluation the unit tests use gives the same config as Go's text/template."""
    if not shutil.which('go'):
        _fail_or_skip('go is not on PATH: run scripts/peers.sh')
    runtimes = [dict(name='nvidia', binary=NVIDIA, runtime_type=ctd.DEFAULT_RUNTIME_TYPE, systemd_cgroup=True),
                dict(name='nvidia-cdi', binary=CUSTOM_CDI, runtime_type=ctd.DEFAULT_RUNTIME_TYPE,
                     systemd_cgroup=True)]
    template = '# user line\n' + ctd.apply_block(None, version, runtimes)
    by_go = _toml.loads(render_go(template, version, detected, str(tmp_path), default_runtime=default_runtime))
    by_python = _toml.loads(render_py(template, version, detected, default_runtime=default_runtime))
    assert by_go == by_python
