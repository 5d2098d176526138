# -*- coding: utf-8 -*-
"""k3s_containerd_runtime on K3s releases whose generated config imports a drop-in folder,
the choice between drop-in and template, the first start, and the files it refuses to touch.

The generated config.toml here is the stand-in of tests/unit/fixtures/k3s (k3s_base) with the
``imports`` line newer K3s releases add (REFERENCE.md: K3s PR #13680); which release has it is
decided by the module from that line, never from a version number.
"""

from __future__ import absolute_import, division, print_function

import os
import time

import pytest

from conftest import script
from k3s_render import k3s_base, render
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime as mod

V3_TABLE = 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia"'


@pytest.fixture
def k3s(tmp_path):
    data = tmp_path / 'k3s'
    folder = data / 'agent' / 'etc' / 'containerd'
    folder.mkdir(parents=True)
    binary = tmp_path / 'opt' / 'nvidia-container-runtime'
    binary.parent.mkdir()
    script(binary, 'exit 0')

    class K3s(object):
        dir = folder
        config = folder / 'config.toml'
        v3 = folder / 'config-v3.toml.tmpl'
        v2 = folder / 'config.toml.tmpl'
        d3 = folder / 'config-v3.toml.d'
        d2 = folder / 'config.toml.d'
        drop_in = d3 / ctd.DROP_IN_NAME
        drop_in_v2 = d2 / ctd.DROP_IN_NAME

        @staticmethod
        def args(**extra):
            args = dict(data_dir=str(data), config_version='auto', k3s_path=str(tmp_path / 'no-k3s'),
                        runtimes=[dict(name='nvidia', binary=str(binary), systemd_cgroup=True)])
            args.update(extra)
            return args

        @staticmethod
        def generate(version=3, imports=True, detected=None, template=None):
            """What K3s does at a start: render config.toml (from the template when there is
            one), with the imports line when ``imports``. Its time stamp is after every drop-in
            that exists now (containerd loaded them) and before any the module writes later."""
            base = k3s_base(version, detected)
            if imports:
                line = 'imports = ["%s/*.toml"]' % (folder / ctd.DROP_IN_DIR[version])
                base = base.replace('version = %d\n' % version, 'version = %d\n%s\n' % (version, line), 1)
            text = render(template, version, detected) if template else base
            if template and imports:
                text = text.replace('version = %d\n' % version, 'version = %d\n%s\n' % (version, line), 1)
            folder.joinpath('config.toml').write_text(text)
            now = time.time()
            for dropins in (folder / ctd.DROP_IN_DIR[2], folder / ctd.DROP_IN_DIR[3]):
                for name in os.listdir(str(dropins)) if dropins.is_dir() else []:
                    os.utime(str(dropins / name), (now - 20, now - 20))
            os.utime(str(folder / 'config.toml'), (now - 10, now - 10))
    K3s.binary = str(binary)
    return K3s


def _table(config, version=3, name='nvidia'):
    return config['plugins'][ctd.CRI_PLUGIN[version]]['containerd']['runtimes'][name]


# ---- reading K3s's generated config -------------------------------------------------------

@pytest.mark.parametrize('line,expected', [
    ('imports = ["/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/*.toml"]',
     (3, '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d')),
    ("imports = ['/srv/k3s/agent/etc/containerd/config.toml.d/*.toml']",
     (2, '/srv/k3s/agent/etc/containerd/config.toml.d')),
    ('imports = ["/etc/containerd/conf.d/*.toml"]', None),
    ('imports = ["/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/99-nvidia.toml"]', None),
    ('imports = []', None),
    ('root = "/x"', None),
    ('imports = [', None),
    (None, None),
])
def test_drop_in_import(line, expected):
    assert ctd.drop_in_import_from_text(line) == expected


def test_merge_tables_is_containerd2s_merge():
    base = {'version': 3, 'plugins': {'cri': {'cni': {'bin_dir': '/k3s'}, 'runtimes': {'runc': {'a': 1}}}}}
    extra = {'version': 3, 'plugins': {'cri': {'runtimes': {'runc': {'b': 2}, 'nvidia': {'c': 3}}}}}
    assert ctd.merge_tables(base, extra) == {'version': 3, 'plugins': {'cri': {
        'cni': {'bin_dir': '/k3s'}, 'runtimes': {'runc': {'a': 1, 'b': 2}, 'nvidia': {'c': 3}}}}}


@pytest.mark.parametrize('version', [2, 3])
def test_drop_in_parses_with_the_subset_parser(version):
    """Targets without tomllib (Python < 3.11) read the module's drop-in too."""
    tomllib = pytest.importorskip('tomllib')
    text = ctd.render_drop_in(version, [dict(name='nvidia', binary='/opt/n', runtime_type='io.containerd.runc.v2',
                                             systemd_cgroup=False)], True, ['/etc/cdi', '/srv/cdi'])
    assert _toml.loads(text, force_subset=True) == tomllib.loads(text)
    assert _table(tomllib.loads(text), version)['options'] == {'BinaryName': '/opt/n', 'SystemdCgroup': False}


# ---- the drop-in way ------------------------------------------------------------------------

def test_k3s_with_imports_gets_a_drop_in_not_a_template(k3s, run_module):
    k3s.generate()
    result, failed = run_module(mod, k3s.args(), diff=True)
    assert not failed, result
    assert result['method'] == 'drop_in' and result['path'] == str(k3s.drop_in)
    assert result['imports'] == str(k3s.d3)
    assert not k3s.v3.exists() and not k3s.v2.exists()
    text = k3s.drop_in.read_text()
    assert text.startswith(ctd.DROP_IN_HEADER) and '{{' not in text
    assert _table(_toml.loads(text))['options'] == {'BinaryName': k3s.binary, 'SystemdCgroup': True}
    assert result['diff'][0]['after'] == text and result['diff'][0]['before'] == ''
    # Written after K3s's last start: not loaded yet.
    assert result['effective'] is False and result['restart_required'] is True
    again, failed = run_module(mod, k3s.args())
    assert not failed and again['changed'] is False and again['restart_required'] is True
    k3s.generate()  # K3s restarts and containerd loads the drop-in
    after, failed = run_module(mod, k3s.args())
    assert not failed and after['changed'] is False
    assert after['effective'] is True and after['restart_required'] is False


def test_drop_in_check_mode_writes_nothing(k3s, run_module):
    k3s.generate()
    result, failed = run_module(mod, k3s.args(), check_mode=True, diff=True)
    assert not failed and result['changed'] and 'BinaryName' in result['diff'][0]['after']
    assert not k3s.d3.exists()


def test_drop_in_overrides_a_runtime_k3s_detected(k3s, run_module):
    """K3s detected nvidia at /usr/bin; the drop-in redefines it with another binary."""
    detected = {'nvidia': '/usr/bin/nvidia-container-runtime'}
    k3s.generate(detected=detected)
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['method'] == 'drop_in'
    assert result['effective_problems'] == ["runtime nvidia runs '/usr/bin/nvidia-container-runtime', not %s"
                                            % k3s.binary]
    k3s.generate(detected=detected)
    result, failed = run_module(mod, k3s.args())
    # config.toml still has K3s's own table; the loaded drop-in wins.
    assert _table(_toml.loads(k3s.config.read_text()))['options']['BinaryName'] == detected['nvidia']
    assert result['effective'] is True and result['restart_required'] is False


def test_template_written_earlier_moves_into_a_drop_in_without_restart(k3s, run_module):
    """An upgrade to a K3s with imports: the template K3s rendered at this start already gives
    containerd the runtime, so moving it into a drop-in needs no restart."""
    k3s.generate(imports=False)
    run_module(mod, k3s.args())
    template = k3s.v3.read_text()
    k3s.generate(imports=True, template=template)
    result, failed = run_module(mod, k3s.args(), diff=True)
    assert not failed and result['changed'] and result['method'] == 'drop_in'
    assert not k3s.v3.exists() and k3s.drop_in.exists()
    assert len(result['backup_files']) == 1 and open(result['backup_files'][0]).read() == template
    assert result['effective'] is True and result['restart_required'] is False
    assert sorted(d['before_header'] for d in result['diff']) == sorted([str(k3s.v3), '%s (absent)' % k3s.drop_in])


def test_user_template_text_is_kept_when_the_block_moves_out(k3s, run_module):
    k3s.v3.write_text('{{ template "base" . }}\n# mine\n')
    k3s.generate(imports=False, template=k3s.v3.read_text())
    run_module(mod, k3s.args())
    assert ctd.BEGIN in k3s.v3.read_text()
    k3s.generate(template=k3s.v3.read_text())
    result, failed = run_module(mod, k3s.args())
    assert not failed and k3s.v3.read_text() == '{{ template "base" . }}\n# mine\n' and k3s.drop_in.exists()


def test_k3s_without_imports_keeps_the_template(k3s, run_module):
    k3s.generate(imports=False)
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['method'] == 'template' and 'imports no drop-in folder' in result['method_reason']
    assert k3s.v3.exists() and not k3s.d3.exists()


@pytest.mark.parametrize('k3s_version,method', [('v1.31.5+k3s1', 'template'), ('v1.32.2+k3s1', 'drop_in')])
def test_version_2_drop_in_only_with_containerd_2(k3s, tmp_path, run_module, k3s_version, method):
    """A version 2 config that imports config.toml.d: containerd 1.x would replace K3s's whole
    CRI table with the drop-in's (the containerd peer test shows it), so only containerd 2 gets one."""
    fake = tmp_path / 'k3s-bin'
    fake.write_text('#!/bin/sh\necho "k3s version %s (abc)"\n' % k3s_version)
    fake.chmod(0o755)
    k3s.generate(version=2)
    result, failed = run_module(mod, k3s.args(k3s_path=str(fake)))
    assert not failed and result['method'] == method and result['config_version'] == 2
    assert k3s.drop_in_v2.exists() == (method == 'drop_in')
    assert k3s.v2.exists() == (method == 'template')
    if method == 'drop_in':
        assert 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes."nvidia"' in k3s.drop_in_v2.read_text()


def test_drop_in_sets_cdi_which_a_template_cannot(k3s, run_module):
    k3s.generate(version=2)
    result, failed = run_module(mod, k3s.args(method='drop_in', enable_cdi=True, cdi_spec_dirs=['/etc/cdi', '/srv/cdi']))
    assert not failed, result
    cri = _toml.loads(k3s.drop_in_v2.read_text())['plugins']['io.containerd.grpc.v1.cri']
    assert cri['enable_cdi'] is True and cri['cdi_spec_dirs'] == ['/etc/cdi', '/srv/cdi']
    k3s.generate(version=2)
    result, failed = run_module(mod, k3s.args(method='drop_in', enable_cdi=True, cdi_spec_dirs=['/etc/cdi', '/srv/cdi']))
    assert result['effective'] is True, result['effective_problems']
    result, failed = run_module(mod, k3s.args(method='template', enable_cdi=True))
    assert failed and 'containerd 2 release' in result['msg'] and not k3s.v2.exists()


def test_method_drop_in_refused_where_k3s_imports_nothing(k3s, run_module):
    k3s.generate(imports=False)
    result, failed = run_module(mod, k3s.args(method='drop_in'))
    assert failed and 'imports no drop-in folder' in result['msg'] and str(k3s.config) in result['msg']
    assert not k3s.d3.exists() and not k3s.v3.exists()


def test_fallback_template_writes_both(k3s, run_module):
    k3s.generate()
    result, failed = run_module(mod, k3s.args(fallback_template=True))
    assert not failed and k3s.drop_in.exists() and ctd.BEGIN in k3s.v3.read_text()
    k3s.generate(template=k3s.v3.read_text())
    result, failed = run_module(mod, k3s.args())
    assert not failed and not k3s.v3.exists() and k3s.drop_in.exists() and result['restart_required'] is False


# ---- the first start ---------------------------------------------------------------------

def test_first_start_drop_in_on_k3s_with_imports(k3s, run_module):
    """No config.toml yet: the drop-in (config version 3). K3s's first start imports it."""
    result, failed = run_module(mod, k3s.args(config_version='3'))
    assert not failed and result['method'] == 'drop_in' and result['restart_required'] is True
    assert k3s.drop_in.exists() and not k3s.v3.exists()
    k3s.generate()
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['changed'] is False
    assert result['effective'] is True and result['restart_required'] is False


def test_first_start_on_older_k3s_falls_back_to_the_template_once(k3s, run_module):
    """An older K3s ignores the drop-in: after its first start the template replaces it and
    K3s must restart once; after that restart nothing changes."""
    run_module(mod, k3s.args(config_version='3'))
    k3s.generate(imports=False)
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['changed'] and result['method'] == 'template'
    assert k3s.v3.exists() and not k3s.drop_in.exists()
    assert result['restart_required'] is True and result['effective'] is False
    backups = os.listdir(str(k3s.d3))
    assert len(backups) == 1 and not backups[0].endswith('.toml')  # containerd would not read it
    k3s.generate(imports=False, template=k3s.v3.read_text())
    result, failed = run_module(mod, k3s.args())
    assert not failed and not result['changed'] and result['restart_required'] is False


def test_first_start_version_2_writes_the_template(k3s, run_module):
    result, failed = run_module(mod, k3s.args(config_version='2'))
    assert not failed and result['method'] == 'template' and k3s.v2.exists() and not k3s.d2.exists()


# ---- state absent and what K3s does alone ----------------------------------------------------

def test_state_absent_removes_the_drop_in_with_a_backup(k3s, run_module):
    k3s.generate()
    run_module(mod, k3s.args())
    k3s.generate()
    result, failed = run_module(mod, k3s.args(state='absent'))
    assert not failed and result['changed'] and not k3s.drop_in.exists() and len(result['backup_files']) == 1
    # containerd still runs the drop-in's binary until K3s restarts.
    assert result['restart_required'] is True
    k3s.generate()
    result, failed = run_module(mod, k3s.args(state='absent'))
    assert not failed and not result['changed'] and result['restart_required'] is False


def test_state_absent_leaves_a_runtime_k3s_detected_alone(k3s, run_module):
    k3s.generate(detected={'nvidia': '/usr/bin/nvidia-container-runtime'})
    result, failed = run_module(mod, k3s.args(state='absent'))
    assert not failed and result['effective'] is True and result['restart_required'] is False


def test_k3s_detected_runtime_removes_the_drop_in(k3s, run_module):
    k3s.generate()
    run_module(mod, k3s.args())
    args = k3s.args(allow_missing_binary=True, runtimes=[dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime')])
    result, failed = run_module(mod, args)
    assert not failed and result['managed'] is False and not k3s.drop_in.exists()


# ---- files the module refuses to touch (issue #15 item 4) -----------------------------------

@pytest.mark.parametrize('text,words', [
    ('{{ template "base" . }}\n%s\n[x]\n' % ctd.BEGIN, '1 BEGIN and 0 END'),
    ('{{ template "base" . }}\n%s\n%s\n%s\n' % (ctd.BEGIN, ctd.BEGIN, ctd.END), '2 BEGIN and 1 END'),
    ('{{ template "base" . }}\n%s\n' % ctd.END, '0 BEGIN and 1 END'),
    ('%s\n%s\n' % (ctd.END, ctd.BEGIN), 'END before BEGIN'),
    ('{{ template "base" . }}\n[plugins.x\n', 'is not TOML'),
    ('{{ template "base" . \n[a]\n', 'do not pair up'),
])
@pytest.mark.parametrize('case', ['present', 'absent', 'drop_in', 'other_version'])
def test_damaged_template_is_refused_naming_the_file(k3s, run_module, text, words, case):
    target = k3s.v2 if case == 'other_version' else k3s.v3
    target.write_text(text)
    if case == 'drop_in':
        k3s.generate()
    args = k3s.args(config_version='3', method='template' if case != 'drop_in' else 'auto')
    if case == 'absent':
        args['state'] = 'absent'
    result, failed = run_module(mod, args)
    assert failed and str(target) in result['msg'] and words in result['msg'], result
    assert 'nothing was changed' in result['msg']
    assert target.read_text() == text
    assert not k3s.d3.exists()


def test_template_with_other_template_actions_is_not_judged(k3s, run_module):
    """Only K3s renders its other template actions; the module keeps such text as it is."""
    text = '{{ template "base" . }}\n{{ if true }}\n[a]\n{{ end }}\n'
    k3s.v3.write_text(text)
    result, failed = run_module(mod, k3s.args(config_version='3', method='template'))
    assert not failed and k3s.v3.read_text().startswith(text)


@pytest.mark.parametrize('text,words', [
    ('[plugins]\nx = 1\n', 'was not written by'),
    (ctd.DROP_IN_HEADER + '\n[plugins\n', 'cannot be parsed as TOML'),
])
@pytest.mark.parametrize('state', ['present', 'absent'])
def test_foreign_or_damaged_drop_in_is_refused(k3s, run_module, text, words, state):
    k3s.generate()
    k3s.d3.mkdir()
    k3s.drop_in.write_text(text)
    result, failed = run_module(mod, k3s.args(state=state))
    assert failed and str(k3s.drop_in) in result['msg'] and words in result['msg'], result
    assert k3s.drop_in.read_text() == text and not k3s.v3.exists()


def test_replaced_drop_in_is_backed_up(k3s, run_module):
    k3s.generate()
    run_module(mod, k3s.args())
    first = k3s.drop_in.read_text()
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=k3s.binary, systemd_cgroup=False)]))
    assert not failed and result['changed'] and len(result['backup_files']) == 1
    assert open(result['backup_files'][0]).read() == first
    assert not result['backup_files'][0].endswith('.toml')


def test_containerd_2_3_config_version_4_takes_the_version_3_drop_in(k3s, run_module):
    """containerd 2.3 (K3s 1.36, 1.37) may write version = 4, which keeps the version 3 plugin names."""
    k3s.generate()
    k3s.config.write_text(k3s.config.read_text().replace('version = 3\n', 'version = 4\n', 1))
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['config_version'] == 3 and result['method'] == 'drop_in'
    assert V3_TABLE in k3s.drop_in.read_text()
