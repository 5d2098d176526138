# -*- coding: utf-8 -*-
"""_containerd's rules one by one: what makes a runtime ineffective, runc's SystemdCgroup
copied on a systemd host, the block placed after user text without a final newline and taken
out leaving the user's whitespace, runtime validation words, K3s's own detection.

Written for what `make mutation` showed no test reached (docs/development.md, "Mutation
testing"); test_containerd.py has the module's behaviour end to end.
"""

from __future__ import absolute_import, division, print_function

import os

import pytest
import yaml
import yaml_expr

from k3s_render import k3s_base
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _k3s_containerd_runtime
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime as mod

NVIDIA = dict(name='nvidia', binary='/usr/local/nvidia/toolkit/nvidia-container-runtime',
              runtime_type='io.containerd.runc.v2', systemd_cgroup=True)


def config_with(version, tables):
    """A generated config.toml (parsed) with these runtime tables: {name: options or None}."""
    runtimes = {}
    for name, options in tables.items():
        runtimes[name] = {'runtime_type': 'io.containerd.runc.v2'}
        if options is not None:
            runtimes[name]['options'] = options
    return {'version': version, 'plugins': {ctd.CRI_PLUGIN[version]: {'containerd': {'runtimes': runtimes}}}}


# ---- effective_problems -----------------------------------------------------------------------

@pytest.mark.parametrize('version', [2, 3])
def test_effective_when_binary_and_cgroup_match(version):
    config = config_with(version, {'nvidia': {'BinaryName': NVIDIA['binary'], 'SystemdCgroup': True}})
    assert ctd.effective_problems(config, version, [NVIDIA]) == []


def test_wrong_binary_name_and_systemd_cgroup_are_reported():
    config = config_with(3, {'nvidia': {'BinaryName': '/usr/bin/nvidia-container-runtime', 'SystemdCgroup': False}})
    assert ctd.effective_problems(config, 3, [NVIDIA]) == [
        "runtime nvidia runs '/usr/bin/nvidia-container-runtime', not %s" % NVIDIA['binary'],
        'runtime nvidia has SystemdCgroup = false, not true',
    ]
    asked_false = dict(NVIDIA, systemd_cgroup=False)
    config = config_with(3, {'nvidia': {'BinaryName': NVIDIA['binary'], 'SystemdCgroup': True}})
    assert ctd.effective_problems(config, 3, [asked_false]) == ['runtime nvidia has SystemdCgroup = true, not false']


def test_runtime_without_options_runs_nothing_and_unset_cgroup_is_not_a_problem():
    config = config_with(3, {'nvidia': None, 'other': {'BinaryName': '/x'}})
    assert ctd.effective_problems(config, 3, [NVIDIA, dict(NVIDIA, name='other', binary='/x')]) == [
        'runtime nvidia runs None, not %s' % NVIDIA['binary']]


def test_every_runtime_is_checked_after_a_missing_one():
    config = config_with(2, {'nvidia-cdi': {'BinaryName': '/wrong'}})
    runtimes = [NVIDIA, dict(NVIDIA, name='nvidia-cdi', binary='/usr/bin/nvidia-container-runtime.cdi')]
    assert ctd.effective_problems(config, 2, runtimes) == [
        'runtime nvidia is not in the generated config.toml',
        "runtime nvidia-cdi runs '/wrong', not /usr/bin/nvidia-container-runtime.cdi",
    ]


@pytest.mark.parametrize('version,cri,enable_cdi,problem', [
    (3, {}, True, False),                          # containerd 2.x: on unless turned off
    (3, {'enable_cdi': False}, True, True),
    (2, {}, True, True),                           # containerd 1.7: off unless turned on
    (2, {'enable_cdi': True}, True, False),
    (2, {}, False, False),                         # not asked
    (2, {'enable_cdi': 'true'}, True, True),       # a string is not on
])
def test_cdi_enabled(version, cri, enable_cdi, problem):
    config = {'plugins': {ctd.CRI_PLUGIN[version]: dict(cri)}}
    expected = ['CDI is not enabled in the generated config.toml'] if problem else []
    assert ctd.effective_problems(config, version, [], enable_cdi=enable_cdi) == expected
    if not enable_cdi:
        assert ctd.effective_problems(config, version, []) == expected  # not asked by default
    assert ctd.effective_problems({}, version, []) == []


@pytest.mark.parametrize('version,cri,asked,problem', [
    # containerd 2.x reads /etc/cdi and /var/run/cdi unless the config names other folders.
    (3, {}, ['/etc/cdi', '/var/run/cdi'], None),
    (3, {}, ['/etc/cdi'], "CDI reads ['/etc/cdi', '/var/run/cdi'], not ['/etc/cdi']"),
    (3, {'cdi_spec_dirs': ['/srv/cdi']}, ('/srv/cdi',), None),
    (3, {'cdi_spec_dirs': ['/srv/cdi']}, ['/etc/cdi', '/var/run/cdi'],
     "CDI reads ['/srv/cdi'], not ['/etc/cdi', '/var/run/cdi']"),
    # containerd 1.7 has no default: the folders must be in the config.
    (2, {}, ['/etc/cdi', '/var/run/cdi'], "CDI reads None, not ['/etc/cdi', '/var/run/cdi']"),
    (2, {'cdi_spec_dirs': ['/etc/cdi', '/var/run/cdi']}, ['/etc/cdi', '/var/run/cdi'], None),
])
def test_cdi_spec_dirs_against_containerds_default(version, cri, asked, problem):
    config = {'plugins': {ctd.CRI_PLUGIN[version]: dict(cri)}}
    assert ctd.effective_problems(config, version, [], cdi_spec_dirs=asked) == ([problem] if problem else [])
    assert ctd.effective_problems(config, version, []) == []  # not asked: not checked


# ---- state=absent: what is left behind -----------------------------------------------------------

def test_leftover_problems_name_every_runtime_still_configured():
    config = config_with(3, {'nvidia-cdi': {'BinaryName': '/opt/nvidia/nvidia-container-runtime.cdi'}})
    # A name that is not there (nvidia) does not stop the check of the next one.
    assert ctd.leftover_problems(config, 3, ['nvidia', 'nvidia-cdi']) == [
        'runtime nvidia-cdi (/opt/nvidia/nvidia-container-runtime.cdi) is still in the generated config.toml']
    assert ctd.leftover_problems(config, 3, ['nvidia']) == []


def test_leftover_problems_leave_what_k3s_configured_itself():
    runtimes = {'nvidia': {'BinaryName': '/usr/bin/nvidia-container-runtime'}}
    config = config_with(2, runtimes)
    assert ctd.leftover_problems(config, 2, ['nvidia']) == []             # K3s's own runtime table
    del config['plugins'][ctd.CRI_PLUGIN[2]]['containerd']['runtimes']['nvidia']['runtime_type']
    assert ctd.leftover_problems(config, 2, ['nvidia']) == []             # runtime_type unset: runc's
    kata = config_with(2, runtimes)
    kata['plugins'][ctd.CRI_PLUGIN[2]]['containerd']['runtimes']['nvidia']['runtime_type'] = 'io.containerd.kata.v2'
    assert ctd.leftover_problems(kata, 2, ['nvidia']) == [                # K3s would not have written a kata shim
        'runtime nvidia (/usr/bin/nvidia-container-runtime) is still in the generated config.toml']


# ---- SystemdCgroup: auto copies runc's ----------------------------------------------------------

@pytest.mark.parametrize('version', [2, 3])
def test_runc_systemd_cgroup(version):
    assert ctd.runc_systemd_cgroup(config_with(version, {'runc': {'SystemdCgroup': True}}), version) is True
    assert ctd.runc_systemd_cgroup(config_with(version, {'runc': {'SystemdCgroup': False}}), version) is False
    other = 3 if version == 2 else 2
    assert ctd.runc_systemd_cgroup(config_with(other, {'runc': {'SystemdCgroup': False}}), version) is None
    assert ctd.runc_systemd_cgroup(config_with(version, {'nvidia': {'SystemdCgroup': False}}), version) is None
    assert ctd.runc_systemd_cgroup(config_with(version, {'runc': {'SystemdCgroup': 'false'}}), version) is None
    assert ctd.runc_systemd_cgroup(config_with(version, {'runc': None}), version) is None
    assert ctd.runc_systemd_cgroup({}, version) is None


@pytest.fixture
def k3s(tmp_path):
    data = tmp_path / 'k3s'
    (data / 'agent' / 'etc' / 'containerd').mkdir(parents=True)
    binary = tmp_path / 'nvidia-container-runtime'
    binary.write_text('#!/bin/sh\nexit 0\n')
    binary.chmod(0o755)
    return data, str(binary)


@pytest.mark.parametrize('runc,host,expected', [
    ('false', True, False),   # a systemd host whose K3s runs runc with cgroupfs: copy runc
    ('true', False, True),    # runc says systemd on a host that does not look like it: copy runc
    (None, True, True),       # no generated config yet: the host decides
    (None, False, False),
])
def test_auto_systemd_cgroup_copies_runc_before_asking_the_host(k3s, run_module, monkeypatch, runc, host, expected):
    data, binary = k3s
    monkeypatch.setattr(_k3s_containerd_runtime, 'systemd_host', lambda: host)
    config = data / 'agent' / 'etc' / 'containerd' / 'config.toml'
    if runc is not None:
        config.write_text(k3s_base(3).replace('SystemdCgroup = true', 'SystemdCgroup = %s' % runc))
    result, failed = run_module(mod, dict(data_dir=str(data), config_version='3',
                                          runtimes=[dict(name='nvidia', binary=binary)]), diff=True)
    assert not failed, result
    assert result['runtimes'][0]['systemd_cgroup'] is expected
    written = ''.join(d['after'] for d in result['diff'])
    assert '  SystemdCgroup = %s\n' % ('true' if expected else 'false') in written


# ---- the block in the template ----------------------------------------------------------------

def test_block_after_user_text_without_a_final_newline():
    block = ctd.render_block(3, [NVIDIA], guarded=False)
    assert ctd.apply_block('version = 3', 3, [NVIDIA]) == 'version = 3\n\n' + block
    assert ctd.apply_block('version = 3\n', 3, [NVIDIA]) == 'version = 3\n\n' + block
    assert ctd.apply_block('version = 3\n\n', 3, [NVIDIA]) == 'version = 3\n\n' + block
    guarded = ctd.render_block(3, [NVIDIA])
    assert ctd.apply_block(ctd.BASE_INCLUDE, 3, [NVIDIA]) == ctd.BASE_INCLUDE + '\n\n' + guarded
    assert ctd.apply_block(' \n', 3, [NVIDIA]) == ctd.BASE_INCLUDE + '\n\n' + guarded
    assert ctd.apply_block(None, 3, [NVIDIA]) == ctd.BASE_INCLUDE + '\n\n' + guarded
    # The result is TOML once K3s has rendered it.
    _toml.loads('version = 3\n\n' + block)


def test_render_block_is_guarded_by_default():
    text = ctd.render_block(2, [NVIDIA])
    assert text.splitlines()[1] == '{{ if not (index .ExtraRuntimes "nvidia").BinaryName }}'
    assert text.splitlines()[-2] == '{{ end }}'
    assert '{{' not in ctd.render_block(2, [NVIDIA], guarded=False)


def test_split_template_at_the_start_and_the_newline_after_end():
    block = ctd.render_block(3, [NVIDIA])
    assert ctd.split_template(block + 'x = 1\n') == ('', block, 'x = 1\n')
    assert ctd.split_template('a = 1\n' + block + '\nx = 1\n') == ('a = 1\n', block, '\nx = 1\n')
    assert ctd.split_template('a = 1\n' + block.rstrip('\n') + 'x = 1\n') == ('a = 1\n', block.rstrip('\n'),
                                                                              'x = 1\n')
    assert ctd.split_template('') == ('', None, '') and ctd.split_template(None) == ('', None, '')


@pytest.mark.parametrize('text,counts', [
    ('%s\n[x]\n' % ctd.BEGIN, '(1 BEGIN and 0 END line(s))'),
    ('%s\n%s\n%s\n' % (ctd.BEGIN, ctd.BEGIN, ctd.END), '(2 BEGIN and 1 END line(s))'),
    ('%s\n%s\n%s\n' % (ctd.BEGIN, ctd.END, ctd.END), '(1 BEGIN and 2 END line(s))'),
    ('%s\n%s\n' % (ctd.END, ctd.BEGIN), '(1 BEGIN and 1 END line(s), END before BEGIN)'),
])
def test_damaged_block_message_names_the_file_and_what_is_wrong(text, counts):
    path = '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl'
    for change in (lambda: ctd.apply_block(text, 3, [NVIDIA], path), lambda: ctd.remove_block(text, path)):
        with pytest.raises(ctd.DamagedFile) as err:
            change()
        message = str(err.value)
        assert message.startswith(path + ': the block of k3s_gpu.cluster.k3s_containerd_runtime is damaged ' + counts)
        assert 'nothing was changed' in message


def test_remove_block_keeps_the_users_whitespace():
    block = ctd.render_block(3, [NVIDIA])
    assert ctd.remove_block('x = "a"\t\n' + block + '  y = 2\n') == 'x = "a"\t\n  y = 2\n'
    assert ctd.remove_block('x = 1 \t\n\n' + block) == 'x = 1 \t\n'
    assert ctd.remove_block('x = 1\n' + block + '  \n') == 'x = 1\n'
    assert ctd.remove_block('x = 1\n\n' + block + '\n\ny = 2\n') == 'x = 1\ny = 2\n'
    assert ctd.remove_block(ctd.BASE_INCLUDE + '\n\n' + block + '\n') is None


# ---- runtime entries, K3s's detection, versions -----------------------------------------------

@pytest.mark.parametrize('runtime,problems', [
    (dict(NVIDIA), []),
    (dict(NVIDIA, name=''),   # the argument spec lets an empty name through
     ['runtime name \'\' must be letters, digits, "_", "." or "-", starting with a letter or digit']),
    (dict(NVIDIA, binary='bin/nvidia-container-runtime'),
     ["runtime nvidia: binary 'bin/nvidia-container-runtime' must be an absolute path"]),
    (dict(NVIDIA, runtime_type='io.containerd."runc".v2'),
     ['runtime nvidia: binary and runtime_type must not contain \'"\'',
      "runtime nvidia: runtime_type 'io.containerd.\"runc\".v2' is not a containerd shim name such as "
      "io.containerd.runc.v2"]),
    (dict(NVIDIA, runtime_type='a{{b'),
     ["runtime nvidia: binary and runtime_type must not contain '{{'",
      "runtime nvidia: runtime_type 'a{{b' is not a containerd shim name such as io.containerd.runc.v2"]),
    (dict(NVIDIA, runtime_type=None),
     ["runtime nvidia: runtime_type None is not a containerd shim name such as io.containerd.runc.v2"]),
])
def test_validate_runtime_words(runtime, problems):
    assert ctd.validate_runtime(runtime) == problems


@pytest.mark.parametrize('runtime,detects', [
    (dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime'), True),   # runtime_type defaults to runc's
    (dict(name='nvidia-cdi', binary='/usr/local/nvidia/toolkit/nvidia-container-runtime.cdi',
          runtime_type='io.containerd.runc.v2'), True),
    (dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime', runtime_type='io.containerd.kata.v2'), False),
    (dict(name='nvidia', binary='/opt/bin/nvidia-container-runtime'), False),
    (dict(name='nvidia', binary='/usr/bin/nvidia-container-runtime.cdi'), False),
    (dict(name='custom', binary='/usr/bin/nvidia-container-runtime'), False),
])
def test_k3s_detects(runtime, detects):
    assert ctd.k3s_detects(runtime) is detects


@pytest.mark.parametrize('text,version', [('version = 1\n', None), ('version = 0\n', None), ('version=2 # x\n', 2)])
def test_version_from_config_edges(text, version):
    assert ctd.version_from_config(text) == version


@pytest.mark.parametrize('output,version', [
    ('k3s version v1.33.0+k3s1 (abc)', 3), ('k3s version v1.31.7+k3s2 (abc)', 3), ('k3s version v2.0.0+k3s1', 3),
    ('k3s version v1.29.15+k3s1', 2), ('v1.32.2-rc1+k3s1', None),
])
def test_version_from_k3s_edges(output, version):
    assert ctd.version_from_k3s(output) == version


def test_check_block_parses():
    assert ctd.check_block_parses(3, [NVIDIA]) is None
    problem = ctd.check_block_parses(3, [dict(NVIDIA, binary='/x"\n[broken')])
    assert problem.startswith('the generated block is not valid TOML: ')


def test_render_like_k3s_names_what_it_cannot_render():
    with pytest.raises(ValueError) as err:
        ctd.render_like_k3s('{{ template "base" . }}\n{{ .Agent.Snapshotter }}\n', 'version = 3\n')
    assert str(err.value) == ('template actions other than the base include and runtime guards are not rendered '
                              'here')


# ---- the drop-in file and the imports containerd reads ----------------------------------------

@pytest.mark.parametrize('enable_cdi,dirs,cri', [
    (False, None, None),                                   # no CDI asked: no CRI plugin table at all
    (True, None, {'enable_cdi': True}),
    (False, ['/srv/cdi'], {'cdi_spec_dirs': ['/srv/cdi']}),
    (True, [], {'enable_cdi': True, 'cdi_spec_dirs': []}),
])
def test_render_drop_in_writes_only_the_cdi_settings_asked(enable_cdi, dirs, cri):
    config = _toml.loads(ctd.render_drop_in(3, [NVIDIA], enable_cdi, dirs))
    plugin = dict(config['plugins'][ctd.CRI_PLUGIN[3]])
    assert plugin.pop('containerd') == {'runtimes': {'nvidia': {
        'runtime_type': 'io.containerd.runc.v2',
        'options': {'BinaryName': NVIDIA['binary'], 'SystemdCgroup': True}}}}
    assert plugin == (cri or {})
    if not enable_cdi and dirs is None:
        assert '[plugins."%s"]' % ctd.CRI_PLUGIN[3] not in ctd.render_drop_in(3, [NVIDIA])


def test_drop_in_import_finds_k3s_folder_among_other_imports():
    k3s_folder = '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d'
    config = {'imports': ['/etc/containerd/conf.d/*.toml', k3s_folder + '/*.toml']}
    assert ctd.drop_in_import(config) == (3, k3s_folder)
    assert ctd.drop_in_import({'imports': ['/etc/containerd/conf.d/*.toml']}) is None


def test_imported_files_in_containerds_order(tmp_path):
    config_dir = tmp_path / 'containerd'
    for folder in ('conf.d', 'abs.d'):
        (config_dir / folder).mkdir(parents=True)
    for name in ('20-b.toml', '10-a.toml', 'notes.txt'):
        (config_dir / 'conf.d' / name).write_text('version = 3\n')
    (config_dir / 'conf.d' / '30-dir.toml').mkdir()          # a folder that matches the pattern is no file
    (config_dir / 'abs.d' / '00-x.toml').write_text('version = 3\n')
    absolute = str(config_dir / 'abs.d' / '*.toml')
    conf_d = [str(config_dir / 'conf.d' / n) for n in ('10-a.toml', '20-b.toml')]
    # Relative patterns from the config's folder; each pattern sorted; a file imported twice is read once.
    config = {'imports': ['conf.d/*.toml', absolute, str(config_dir / 'conf.d' / '10-a.toml')]}
    assert ctd.imported_files(config, str(config_dir)) == conf_d + [str(config_dir / 'abs.d' / '00-x.toml')]
    assert ctd.imported_files({'imports': [absolute, 'conf.d/*.toml']}, str(tmp_path)) == [
        str(config_dir / 'abs.d' / '00-x.toml')]                 # relative to the config's folder, not elsewhere
    assert ctd.imported_files({}, str(config_dir)) == []


@pytest.mark.parametrize('k3s_version', [
    'v1.30.9+k3s1', 'v1.31.5+k3s1', 'v1.31.6+k3s1', 'v1.31.10+k3s1', 'v1.32.0+k3s1', 'v1.32.1+k3s1',
    'v1.32.2+k3s1', 'v1.32.2-rc1+k3s1', 'v1.33.0+k3s1', 'v1.34.1+k3s1', 'v1.36.3+k3s1', 'v1.37.1+k3s1',
])
def test_k3s_common_config_version_is_the_modules_rule(k3s_version):
    # k3s_common passes the config version of the release it installs (vars/main.yml, with the
    # version test); it must be the module's own rule for that release's `k3s --version`.
    with open(os.path.join(yaml_expr.REPO_ROOT, 'roles', 'k3s_common', 'vars', 'main.yml')) as handle:
        role_vars = yaml.safe_load(handle)
    variables = {'k3s_common_version': k3s_version,
                 'k3s_common_version_number': yaml_expr.trust(role_vars['k3s_common_version_number'])}
    rendered = yaml_expr.template(role_vars['k3s_common_containerd_config_version'], variables)
    expected = ctd.version_from_k3s('k3s version %s (abc)' % k3s_version.replace('-rc1', ''))
    assert int(str(rendered).strip()) == expected
