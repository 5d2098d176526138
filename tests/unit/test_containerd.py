# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

import os
import stat

import pytest

from conftest import script
from k3s_render import k3s_base, render
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _k3s_containerd_runtime
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime as mod


@pytest.fixture
def k3s(tmp_path):
    """A K3s data dir and an executable stand-in runtime binary in a temp folder."""
    data = tmp_path / 'k3s'
    (data / 'agent' / 'etc' / 'containerd').mkdir(parents=True)
    binary = tmp_path / 'bin' / 'nvidia-container-runtime'
    binary.parent.mkdir()
    script(binary, 'exit 0')

    class K3s(object):
        dir = data / 'agent' / 'etc' / 'containerd'
        v3 = dir / 'config-v3.toml.tmpl'
        v2 = dir / 'config.toml.tmpl'
        config = dir / 'config.toml'

        d3 = dir / 'config-v3.toml.d'
        d2 = dir / 'config.toml.d'
        drop_in = d3 / ctd.DROP_IN_NAME

        @staticmethod
        def args(version='3', **extra):
            """Module arguments; the template way unless method is given (the drop-in tests say so)."""
            args = dict(data_dir=str(data), config_version=version, method='template',
                        runtimes=[dict(name='nvidia', binary=str(binary), systemd_cgroup=True)])
            args.update(extra)
            return args
    K3s.binary = str(binary)
    return K3s


# ---- version detection -----------------------------------------------------------------

@pytest.mark.parametrize('text,version', [
    ('version = 2\n', 2), ('# x\nversion = 3\n[a]\n', 3), ('version = 4', 3), ('root = "/x"\n', None), (None, None),
])
def test_version_from_config(text, version):
    assert ctd.version_from_config(text) == version


@pytest.mark.parametrize('output,version', [
    ('k3s version v1.30.9+k3s1 (abc)\ngo version go1.22', 2),
    ('k3s version v1.31.5+k3s1 (abc)', 2),
    ('k3s version v1.31.6+k3s1 (abc)', 3),
    ('k3s version v1.32.1+k3s1 (abc)', 2),
    ('k3s version v1.32.2+k3s1 (abc)', 3),
    ('k3s version v1.35.7+k3s1 (abc)', 3),
    ('something else', None),
])
def test_version_from_k3s(output, version):
    assert ctd.version_from_k3s(output) == version


def test_auto_version_from_config_toml(k3s, run_module):
    k3s.config.write_text(k3s_base(2))
    result, failed = run_module(mod, k3s.args('auto', method='auto'))
    assert not failed, result
    assert result['config_version'] == 2 and result['path'] == str(k3s.v2)
    assert k3s.v2.exists() and not k3s.v3.exists()


def test_auto_version_from_k3s_binary(k3s, tmp_path, run_module):
    fake = tmp_path / 'k3s-bin'
    fake.write_text('#!/bin/sh\necho "k3s version v1.32.2+k3s1 (381620ef)"\necho "go version go1.23.6"\n')
    fake.chmod(0o755)
    result, failed = run_module(mod, k3s.args('auto', k3s_path=str(fake)))
    assert not failed and result['config_version'] == 3 and result['version_source'] == 'k3s --version'


def test_auto_version_unknown_fails_before_writing(k3s, tmp_path, run_module):
    result, failed = run_module(mod, k3s.args('auto', k3s_path=str(tmp_path / 'nope')))
    assert failed and 'set config_version' in result['msg']
    assert not k3s.v3.exists() and not k3s.v2.exists()


# ---- writing -------------------------------------------------------------------------

def test_new_template_extends_base_and_is_idempotent(k3s, run_module):
    result, failed = run_module(mod, k3s.args(), diff=True)
    assert not failed and result['changed'] and result['managed']
    text = k3s.v3.read_text()
    assert text.startswith('{{ template "base" . }}\n')
    assert ctd.BEGIN in text and ctd.END in text
    assert '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia".options]' in text
    assert 'BinaryName = "%s"' % k3s.binary in text
    assert '{{ if not (index .ExtraRuntimes "nvidia").BinaryName }}' in text
    assert result['diff'][0]['before'] == '' and result['diff'][0]['after'] == text
    assert oct(stat.S_IMODE(os.stat(str(k3s.v3)).st_mode)) == '0o644'
    assert result['restart_required'] is True and result['effective'] is False
    again, failed = run_module(mod, k3s.args())
    assert not failed and again['changed'] is False
    assert k3s.v3.read_text() == text


def test_check_mode_writes_nothing(k3s, run_module):
    result, failed = run_module(mod, k3s.args(), check_mode=True, diff=True)
    assert not failed and result['changed'] and 'BinaryName' in result['diff'][0]['after']
    assert not k3s.v3.exists()


def test_effective_after_k3s_renders_the_template(k3s, run_module):
    run_module(mod, k3s.args())
    k3s.config.write_text(render(k3s.v3.read_text(), 3))
    result, failed = run_module(mod, k3s.args(enable_cdi=True))
    assert not failed, result
    assert result['changed'] is False
    assert result['effective'] is True and result['effective_problems'] == []
    assert result['restart_required'] is False


def test_effective_false_when_k3s_not_restarted(k3s, run_module):
    k3s.config.write_text(k3s_base(3))
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['changed']
    result, failed = run_module(mod, k3s.args())
    assert result['changed'] is False and result['effective'] is False
    assert result['restart_required'] is True
    assert 'not in the generated config.toml' in result['effective_problems'][0]


def test_effective_reports_cdi_turned_off(k3s, run_module):
    k3s.config.write_text(k3s_base(3).replace('enable_selinux = false', 'enable_selinux = false\n  enable_cdi = false'))
    result, failed = run_module(mod, k3s.args(enable_cdi=True))
    assert not failed and 'CDI is not enabled in the generated config.toml' in result['effective_problems']


def test_user_content_outside_block_is_kept(k3s, run_module):
    k3s.v3.write_text('{{ template "base" . }}\n\n# mine\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."kata"]\n'
                      '  runtime_type = "io.containerd.kata.v2"\n')
    run_module(mod, k3s.args())
    first = k3s.v3.read_text()
    assert '# mine' in first and 'kata' in first and first.count(ctd.BEGIN) == 1
    # Change an option: only the block changes.
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=k3s.binary, systemd_cgroup=False)]))
    assert not failed and result['changed']
    second = k3s.v3.read_text()
    assert second.count(ctd.BEGIN) == 1 and 'SystemdCgroup = false' in second
    assert second.split(ctd.BEGIN)[0] == first.split(ctd.BEGIN)[0]
    # The rendered whole is valid TOML containing both runtimes.
    config = _toml.loads(render(second, 3))
    assert set(config['plugins']['io.containerd.cri.v1.runtime']['containerd']['runtimes']) == {'runc', 'kata', 'nvidia'}


def test_full_user_template_without_base_gets_unguarded_block(k3s, run_module):
    k3s.v2.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  enable_selinux = false\n')
    result, failed = run_module(mod, k3s.args('2'))
    assert not failed
    text = k3s.v2.read_text()
    assert 'template "base"' not in text and 'ExtraRuntimes' not in text
    assert _toml.loads(text)['plugins']['io.containerd.grpc.v1.cri']['containerd']['runtimes']['nvidia']


def test_same_runtime_defined_by_user_is_refused(k3s, run_module):
    original = ('{{ template "base" . }}\n[plugins.\'io.containerd.cri.v1.runtime\'.containerd.runtimes.\'nvidia\']\n'
                '  runtime_type = "io.containerd.runc.v2"\n')
    k3s.v3.write_text(original)
    result, failed = run_module(mod, k3s.args())
    assert failed and 'already defines runtime nvidia' in result['msg']
    assert k3s.v3.read_text() == original


def test_version_change_moves_block(k3s, run_module):
    run_module(mod, k3s.args('2'))
    k3s.v2.write_text(k3s.v2.read_text() + '\n# user note kept\n')
    result, failed = run_module(mod, k3s.args('3'))
    assert not failed and result['changed']
    assert ctd.BEGIN not in k3s.v2.read_text() and '# user note kept' in k3s.v2.read_text()
    assert ctd.BEGIN in k3s.v3.read_text()
    assert len(result['diff']) == 2


def test_version_change_removes_template_left_empty(k3s, run_module):
    run_module(mod, k3s.args('2'))
    result, failed = run_module(mod, k3s.args('3'))
    assert not failed and not k3s.v2.exists() and k3s.v3.exists()


def test_backup(k3s, run_module):
    run_module(mod, k3s.args())
    result, failed = run_module(mod, k3s.args(backup=True, runtimes=[dict(name='nvidia', binary=k3s.binary,
                                                                          systemd_cgroup='false')]))
    assert not failed and len(result['backup_files']) == 1
    assert 'SystemdCgroup = true' in open(result['backup_files'][0]).read()


def test_state_absent(k3s, run_module):
    run_module(mod, k3s.args())
    result, failed = run_module(mod, k3s.args(state='absent'), diff=True)
    assert not failed and result['changed'] and not k3s.v3.exists()
    assert result['diff'][0]['after'] == ''
    result, failed = run_module(mod, k3s.args(state='absent'))
    assert not failed and not result['changed']


def test_state_absent_keeps_user_content(k3s, run_module):
    k3s.v3.write_text('{{ template "base" . }}\n# mine\n')
    run_module(mod, k3s.args())
    run_module(mod, k3s.args(state='absent'))
    assert k3s.v3.read_text() == '{{ template "base" . }}\n# mine\n'


# ---- what K3s does on its own ------------------------------------------------------

def test_k3s_detected_runtime_is_not_managed(k3s, run_module):
    run_module(mod, k3s.args())  # a block from an earlier run
    args = k3s.args(allow_missing_binary=True, runtimes=[dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime')])
    result, failed = run_module(mod, args)
    assert not failed
    assert result['managed'] is False and 'detects nvidia' in result['reason']
    assert not k3s.v3.exists()  # the earlier block is gone, and the file with it
    assert result['runtimes'][0]['k3s_detects'] is True


def test_default_runtime_goes_to_k3s_config(k3s, run_module):
    args = k3s.args(allow_missing_binary=True, default_runtime='nvidia',
                    runtimes=[dict(name='nvidia', binary='/usr/local/nvidia/toolkit/nvidia-container-runtime')])
    result, failed = run_module(mod, args)
    assert not failed and result['k3s_config'] == {'default-runtime': 'nvidia'}


def test_default_runtime_not_detected_is_refused(k3s, run_module):
    result, failed = run_module(mod, k3s.args(default_runtime='nvidia'))
    assert failed and 'accepts only runtimes it detects' in result['msg']
    assert not k3s.v3.exists()


def test_guard_prevents_duplicate_table_when_k3s_detected_it(k3s, run_module):
    run_module(mod, k3s.args())
    template = k3s.v3.read_text()
    detected = {'nvidia': '/usr/bin/nvidia-container-runtime'}
    config = _toml.loads(render(template, 3, detected))
    assert config['plugins']['io.containerd.cri.v1.runtime']['containerd']['runtimes']['nvidia']['options'][
        'BinaryName'] == '/usr/bin/nvidia-container-runtime'
    # Without the guard the same table would be defined twice.
    unguarded = ctd.render_block(3, [dict(name='nvidia', binary=k3s.binary, runtime_type='io.containerd.runc.v2',
                                          systemd_cgroup=True)], guarded=False)
    with pytest.raises(_toml.TomlError):
        _toml.loads(k3s_base(3, detected) + unguarded)


# ---- refusals ------------------------------------------------------------------------

def test_missing_binary_refused_naming_path(k3s, tmp_path, run_module):
    missing = str(tmp_path / 'none' / 'nvidia-container-runtime')
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=missing)]))
    assert failed and missing in result['msg'] and 'allow_missing_binary' in result['msg']
    assert not k3s.v3.exists()
    result, failed = run_module(mod, k3s.args(allow_missing_binary=True, runtimes=[dict(name='nvidia', binary=missing)]))
    assert not failed and missing in k3s.v3.read_text()


def test_default_binary_for_unknown_name_required(k3s, run_module):
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='custom')]))
    assert failed and 'set binary' in result['msg']


@pytest.mark.parametrize('runtime,words', [
    (dict(name='bad name', binary='/x'), 'runtime name'),
    (dict(name='nvidia', binary='/x/"q"'), 'must not contain'),
    (dict(name='nvidia', binary='/x', runtime_type='a b'), 'runtime_type'),
    (dict(name='nvidia', binary='/x', systemd_cgroup='maybe'), 'systemd_cgroup'),
])
def test_bad_runtime_entries(k3s, run_module, runtime, words):
    result, failed = run_module(mod, k3s.args(allow_missing_binary=True, runtimes=[runtime]))
    assert failed and words in result['msg']
    assert not k3s.v3.exists()


def test_duplicate_names_refused(k3s, run_module):
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=k3s.binary)] * 2))
    assert failed and 'same name twice' in result['msg']


def test_enable_cdi_on_version_2_refused(k3s, run_module):
    result, failed = run_module(mod, k3s.args('2', enable_cdi=True))
    assert failed and 'containerd 2 release' in result['msg'] and not k3s.v2.exists()


def test_cdi_spec_dirs(k3s, run_module):
    result, failed = run_module(mod, k3s.args(cdi_spec_dirs=['/etc/cdi', '/var/run/cdi']))
    assert not failed
    result, failed = run_module(mod, k3s.args(cdi_spec_dirs=['/opt/cdi']))
    assert failed and 'cdi_spec_dirs' in result['msg']


def test_systemd_cgroup_auto_copies_runc(k3s, run_module):
    k3s.config.write_text(k3s_base(3).replace('SystemdCgroup = true', 'SystemdCgroup = false'))
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=k3s.binary)]))
    assert not failed and result['runtimes'][0]['systemd_cgroup'] is False
    assert 'SystemdCgroup = false' in k3s.v3.read_text()


def test_systemd_cgroup_auto_without_config_uses_host(k3s, run_module, monkeypatch):
    monkeypatch.setattr(_k3s_containerd_runtime, 'systemd_host', lambda: True)
    result, failed = run_module(mod, k3s.args(runtimes=[dict(name='nvidia', binary=k3s.binary)]))
    assert not failed and result['runtimes'][0]['systemd_cgroup'] is True


def test_unparseable_config_toml_warns(k3s, run_module):
    k3s.config.write_text('version = 3\n[broken\n')
    result, failed = run_module(mod, k3s.args())
    assert not failed and result['effective'] is False


# ---- template helpers ----------------------------------------------------------------

def test_remove_block_and_split():
    block = ctd.render_block(2, [dict(name='nvidia', binary='/b', runtime_type='io.containerd.runc.v2',
                                      systemd_cgroup=True)])
    assert ctd.remove_block('{{ template "base" . }}\n\n' + block) is None
    assert ctd.remove_block('a = 1\n' + block + 'b = 2\n') == 'a = 1\nb = 2\n'
    assert ctd.remove_block('x\n') == 'x\n'
    assert ctd.remove_block(None) is None
    before, got, after = ctd.split_template('x\n' + block + 'y\n')
    assert (before, got, after) == ('x\n', block, 'y\n')


def test_render_like_k3s_refuses_other_actions():
    with pytest.raises(ValueError):
        ctd.render_like_k3s('{{ .Agent.Foo }}', '')


# ---- TOML subset parser (targets without tomllib) -------------------------------------------

@pytest.mark.parametrize('version', [2, 3])
def test_subset_parser_matches_tomllib(k3s, version):
    tomllib = pytest.importorskip('tomllib')
    block = ctd.render_block(version, [dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime',
                                            runtime_type='io.containerd.runc.v2', systemd_cgroup=True)], guarded=False)
    text = k3s_base(version, {'nvidia-cdi': '/usr/bin/nvidia-container-runtime.cdi'}) + block + \
        'arr = [\n  "a", # c\n  \'b\'\n]\nnum = 1_000\nf = 1.5\nneg = -2\ne = "x\\"y"\nx.y = true\n'
    assert _toml.loads(text, force_subset=True) == tomllib.loads(text)


@pytest.mark.parametrize('text', [
    '[a]\n[a]\n', 'a = 1\na = 2\n', '[[a]]\n', 'a = {b = 1}\n', 'a = "x\n', 'a = [1, 2\n', '[a\n', 'a\n',
    'a = @\n', 'a = 1 2\n', '["a\n', "['a\n", '[a.]\n', '[a b]\n', 'a = 1\na.b = 2\n', 'a = [1 2]\n', 'a = \n',
    "a = 'x\n", '[]\n', 'a = "\\q"\n',
])
def test_subset_parser_rejects(text):
    with pytest.raises(_toml.TomlError):
        _toml.loads(text, force_subset=True)


def test_toml_loads_reports_errors_through_tomllib():
    with pytest.raises(_toml.TomlError):
        _toml.loads('[a]\n[a]\n')
