# -*- coding: utf-8 -*-
"""plugins/module_utils/_host_state.py, the host_state module and the test plugins over it.

The roles skip a template/copy/folder/package task when these say the host already has exactly
what the task would write: every "same" answer here must be exact, and every unknown "different".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import hashlib
import os
import pwd

import pytest

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state
from ansible_collections.k3s_gpu.cluster.plugins.modules import host_state
from ansible_collections.k3s_gpu.cluster.plugins.test import host_state as tests
from conftest import ansible_playbook, script

ME = pwd.getpwuid(os.getuid())[0]
MY_GROUP = grp.getgrgid(os.getgid())[0]


def written(path, text, mode=0o644):
    path.write_bytes(text.encode('utf-8'))
    path.chmod(mode)
    return str(path)


# --- file_state / file_matches -----------------------------------------------------------------

def test_a_file_is_reported_with_its_sha1_mode_owner_and_group(tmp_path):
    path = written(tmp_path / 'a.conf', 'x = 1\n', 0o640)
    entry = _host_state.file_state(path)
    assert entry == {'type': 'file', 'sha1': hashlib.sha1(b'x = 1\n').hexdigest(), 'mode': '0640',
                     'owner': ME, 'group': MY_GROUP}


def test_absent_directory_and_link_are_told_apart(tmp_path):
    (tmp_path / 'dir').mkdir(mode=0o750)
    (tmp_path / 'link').symlink_to(tmp_path / 'dir')
    assert _host_state.file_state(str(tmp_path / 'nope')) == {'type': 'absent'}
    assert _host_state.file_state(str(tmp_path / 'dir'))['type'] == 'directory'
    assert _host_state.file_state(str(tmp_path / 'dir'))['mode'] == '0750'
    link = _host_state.file_state(str(tmp_path / 'link'))
    assert link['type'] == 'link' and link['target'] == str(tmp_path / 'dir')


def test_same_content_mode_owner_group_match(tmp_path):
    entry = _host_state.file_state(written(tmp_path / 'a', 'héllo\n'))
    assert _host_state.file_matches(entry, 'héllo\n', '0644', ME, MY_GROUP)
    assert _host_state.file_matches(entry, 'héllo\n', '644')
    assert _host_state.file_matches(entry, 'héllo\n'.encode('utf-8'))


@pytest.mark.parametrize('content, mode, owner, group', [
    ('héllo', '0644', None, None),           # the trailing newline counts
    ('héllo\n ', '0644', None, None),        # so does trailing space
    ('héllo\n', '0600', None, None),         # another mode
    ('héllo\n', 'u=rw', None, None),         # a symbolic mode is never taken for equal
    ('héllo\n', None, 'someone-else', None),
    ('héllo\n', None, None, 'other-group'),
])
def test_any_difference_is_a_difference(tmp_path, content, mode, owner, group):
    entry = _host_state.file_state(written(tmp_path / 'a', 'héllo\n'))
    assert not _host_state.file_matches(entry, content, mode, owner, group)


@pytest.mark.parametrize('entry', [
    {'type': 'absent'},
    {'type': 'directory', 'mode': '0644', 'owner': 'root', 'group': 'root'},
    {'type': 'link', 'target': '/etc/x'},
    {'type': 'file'},                        # no checksum: unknown
    {},
    None,
    'a string',
])
def test_what_is_not_a_readable_file_never_matches(entry):
    assert not _host_state.file_matches(entry, '')


def test_a_link_to_the_right_content_is_not_the_file(tmp_path):
    target = written(tmp_path / 'real', 'data\n')
    (tmp_path / 'link').symlink_to(target)
    assert not _host_state.file_matches(_host_state.file_state(str(tmp_path / 'link')), 'data\n')


def test_directory_matches_only_a_real_directory_with_that_mode(tmp_path):
    (tmp_path / 'd').mkdir()
    (tmp_path / 'd').chmod(0o755)
    (tmp_path / 'l').symlink_to(tmp_path / 'd')
    entry = _host_state.file_state(str(tmp_path / 'd'))
    assert _host_state.directory_matches(entry, '0755', ME, MY_GROUP)
    assert not _host_state.directory_matches(entry, '0700')
    assert not _host_state.directory_matches(_host_state.file_state(str(tmp_path / 'l')), '0755')
    assert not _host_state.directory_matches(_host_state.file_state(written(tmp_path / 'f', '')), '0644')
    assert not _host_state.directory_matches({'type': 'absent'})


# --- packages ------------------------------------------------------------------------------------

DPKG = ('nvidia-container-toolkit\tii \t1.20.0-1\n'
        'libnvidia-container1\tii \t1.20.0-1\n'
        'nvidia-smi\trc \t535.247.01-1~deb12u1\n'
        'half\tiU \t1.0-1\n')


def test_dpkg_versions_count_only_installed_packages():
    asked = []

    def run(argv):
        asked.append(argv)
        return 1, DPKG

    found = _host_state.package_versions(
        ['nvidia-container-toolkit', 'libnvidia-container1', 'nvidia-smi', 'half', 'unknown'], run, 'dpkg')
    assert found == {'nvidia-container-toolkit': '1.20.0-1', 'libnvidia-container1': '1.20.0-1',
                     'nvidia-smi': '', 'half': '', 'unknown': ''}
    assert asked[0][:2] == ['dpkg-query', '-W']


def test_rpm_versions():
    def run(argv):
        return 1, 'nvidia-container-toolkit\t1.20.0-1\npackage nope is not installed\n'

    assert _host_state.package_versions(['nvidia-container-toolkit', 'nope'], run, 'rpm') == {
        'nvidia-container-toolkit': '1.20.0-1', 'nope': ''}


@pytest.mark.parametrize('specs, expected', [
    (['nvidia-container-toolkit=1.20.0-1', 'libnvidia-container1=1.20.0-1'], True),
    (['nvidia-container-toolkit'], True),
    (['nvidia-container-toolkit=1.20.0-*'], True),        # the driver role's version-* pin
    (['nvidia-container-toolkit=1.20.0'], False),         # a version without its revision is another
    (['nvidia-container-toolkit=1.19.0-1'], False),
    (['nvidia-container-toolkit=1.20.0-1', 'nvidia-smi'], False),   # removed, config left
    (['missing'], False),
    ([], True),
])
def test_packages_installed(specs, expected):
    installed = {'nvidia-container-toolkit': '1.20.0-1', 'libnvidia-container1': '1.20.0-1', 'nvidia-smi': '',
                 'missing': ''}
    assert _host_state.packages_installed(specs, installed) is expected


def test_packages_installed_without_a_report_is_false():
    assert not _host_state.packages_installed(['a'], None)


# --- units ---------------------------------------------------------------------------------------

def test_unit_states_in_the_order_asked():
    out = ('LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n'
           'LoadState=not-found\nActiveState=inactive\nUnitFileState=\n')

    def run(argv):
        assert argv[:2] == ['systemctl', 'show']
        return 0, out

    assert _host_state.unit_states(['a.service', 'b.path'], run) == {
        'a.service': {'LoadState': 'loaded', 'ActiveState': 'active', 'UnitFileState': 'enabled'},
        'b.path': {'LoadState': 'not-found', 'ActiveState': 'inactive', 'UnitFileState': ''}}


def test_unit_states_are_empty_when_systemctl_fails():
    assert _host_state.unit_states(['a.service'], lambda argv: (1, 'garbage')) == {
        'a.service': {'LoadState': '', 'ActiveState': '', 'UnitFileState': ''}}


def test_without_systemd_no_unit_is_asked(tmp_path):
    def run(argv):
        raise AssertionError('systemctl must not run without systemd: %r' % argv)

    report = _host_state.read(units=['k3s.service'], run=run, systemd_dir=str(tmp_path / 'none'))
    assert report['systemd'] is False
    assert report['units'] == {'k3s.service': {'LoadState': '', 'ActiveState': '', 'UnitFileState': ''}}


# --- the module ----------------------------------------------------------------------------------

def test_module_reports_files_and_packages_in_check_mode(tmp_path, run_module, monkeypatch):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script(bin_dir / 'dpkg-query', "printf 'pkg\\tii \\t2.0-1\\n'; exit 1")
    monkeypatch.setenv('PATH', '%s:%s' % (bin_dir, os.environ['PATH']))
    path = written(tmp_path / 'f', 'a\n')
    result, failed = run_module(host_state, {'files': [path, str(tmp_path / 'no')], 'packages': ['pkg', 'other'],
                                             '_ansible_check_mode': True})
    assert not failed and not result['changed']
    state = result['host_state']
    assert state['files'][path]['sha1'] == hashlib.sha1(b'a\n').hexdigest()
    assert state['files'][str(tmp_path / 'no')] == {'type': 'absent'}
    assert state['packages'] == {'pkg': '2.0-1', 'other': ''}


def test_module_refuses_a_package_manager_the_host_lacks(tmp_path, run_module, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path))
    result, failed = run_module(host_state, {'packages': ['x'], 'package_manager': 'rpm'})
    assert failed
    assert 'package_manager is rpm, but rpm is not installed on this host' in result['msg']


# --- through Ansible: the report against what the template module writes ---------------------------

def test_the_report_matches_what_the_template_module_writes(tmp_path):
    """lookup('template') and the template module render the same bytes (ansible_managed included),
    so a file the template task wrote is found equal, and one changed by a byte is not (the rule
    of managed_file, which renders with the lookup)."""
    (tmp_path / 't.j2').write_text('# {{ ansible_managed }}\n{% for i in items %}\nline {{ i }}\n{% endfor %}\nend\n\n')
    (tmp_path / 'play.yml').write_text('''
- hosts: localhost
  gather_facts: false
  vars: {items: [1, 2]}
  tasks:
    - ansible.builtin.template: {src: t.j2, dest: "%(d)s/out", mode: "0640"}
    - ansible.builtin.copy: {content: "{{ lookup('ansible.builtin.template', 't.j2') }}x", dest: "%(d)s/other", mode: "0640"}
    - k3s_gpu.cluster.host_state:
        files: ["%(d)s/out", "%(d)s/other", "%(d)s"]
        packages: [dpkg]
      register: s
    - ansible.builtin.assert:
        that:
          - s.host_state.files['%(d)s/out'].sha1 == lookup('ansible.builtin.template', 't.j2') | hash('sha1')
          - s.host_state.files['%(d)s/out'].mode == '0640'
          - s.host_state.files['%(d)s/other'].sha1 != lookup('ansible.builtin.template', 't.j2') | hash('sha1')
          - s.host_state.files['%(d)s'].type == 'directory'
          - "['dpkg', 'no-such-package-here'] is not k3s_gpu.cluster.packages_installed(s.host_state.packages)"
''' % {'d': tmp_path})
    run = ansible_playbook(str(tmp_path / 'play.yml'), cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout[-4000:]
    assert 'All assertions passed' in run.stdout


def test_the_test_plugin_names():
    assert sorted(tests.TestModule().tests()) == ['packages_installed']
