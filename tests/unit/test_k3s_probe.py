# -*- coding: utf-8 -*-
"""k3s_probe: what the K3s roles read from a host before they change anything (one call)."""

from __future__ import absolute_import, division, print_function

import base64
import hashlib
import os

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state, _k3s_probe
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_probe
from conftest import script


def written(path, data, mode=0o644):
    path.write_bytes(data)
    os.chmod(str(path), mode)
    return str(path)


def test_a_missing_path_is_left_out_and_a_yaml_file_is_read(tmp_path):
    conf = written(tmp_path / 'config.yaml', b'token-file: /x\n', 0o600)
    assert _k3s_probe.path_entry(str(tmp_path / 'none'), True) is None
    entry = _k3s_probe.path_entry(conf, False)
    assert entry == {'type': 'file', 'executable': False, 'content': base64.b64encode(b'token-file: /x\n').decode()}


def test_a_digested_file_has_host_states_entry_so_managed_file_compares_alike(tmp_path):
    unit = written(tmp_path / 'k3s.service', b'[Unit]\n', 0o644)
    entry = _k3s_probe.path_entry(unit, True)
    state = _host_state.file_state(unit)
    assert dict((key, entry[key]) for key in ('type', 'sha1', 'mode', 'owner', 'group')) == state
    assert _host_state.file_matches(entry, '[Unit]\n', '0644', state['owner'], state['group'])
    assert not _host_state.file_matches(entry, '[Unit]\n', '0600')


def test_executable_files_and_folders(tmp_path):
    runtime = written(tmp_path / 'nvidia-container-runtime', b'#!/bin/sh\n', 0o755)
    assert _k3s_probe.path_entry(runtime, False) == {'type': 'file', 'executable': True}
    assert _k3s_probe.path_entry(str(tmp_path), False) == {'type': 'directory', 'executable': False}


def test_stale_images_by_the_release_sums_mode_and_owner(tmp_path):
    good = written(tmp_path / 'good.tar.zst', b'good', 0o644)
    written(tmp_path / 'other.tar.zst', b'changed', 0o644)
    written(tmp_path / 'loose.tar.zst', b'loose', 0o666)
    sums = '\n'.join([
        '%s  good.tar.zst' % hashlib.sha256(b'good').hexdigest(),
        '%s *other.tar.zst' % hashlib.sha256(b'original').hexdigest(),
        '%s  loose.tar.zst' % hashlib.sha256(b'loose').hexdigest(),
        '%s  missing.tar.zst' % hashlib.sha256(b'x').hexdigest(),
        'a line that is no sum',
    ])
    names = ['good.tar.zst', 'other.tar.zst', 'loose.tar.zst', 'missing.tar.zst', 'unlisted.tar.zst']
    assert os.stat(good).st_uid == os.getuid()
    stale = _k3s_probe.images_stale(str(tmp_path), names, sums)
    expected = ['other.tar.zst', 'loose.tar.zst', 'missing.tar.zst', 'unlisted.tar.zst']
    if os.getuid() != 0:
        expected.insert(0, 'good.tar.zst')  # not owned by root
    assert stale == expected
    assert _k3s_probe.published_sums('abc  *x.tar\n') == {'x.tar': 'abc'}


def test_folders_links_version_and_units(tmp_path):
    (tmp_path / 'etc').mkdir(mode=0o755)
    os.chmod(str(tmp_path / 'etc'), 0o755)
    k3s = script(tmp_path / 'k3s', 'echo "k3s version v1.36.3+k3s1 (abc)"')
    os.symlink(k3s, str(tmp_path / 'kubectl'))
    written(tmp_path / 'crictl', b'not a link')
    asked = []

    def run(argv):
        asked.append(argv)
        if argv[0] == 'systemctl':
            return 0, 'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nMainPID=812\n', ''
        return 0, 'k3s version v1.36.3+k3s1 (abc)\n', ''

    found = _k3s_probe.probe(k3s, checksum=True, dirs=[str(tmp_path / 'etc'), str(tmp_path / 'none')],
                             links=[str(tmp_path / 'kubectl'), str(tmp_path / 'crictl')], units=['k3s'], run=run)
    assert found['dirs'] == {str(tmp_path / 'etc'): {'dir': True, 'mode': '0755', 'uid': os.getuid(), 'gid': os.getgid()}}
    assert found['links'] == {str(tmp_path / 'kubectl'): k3s, str(tmp_path / 'crictl'): None}
    assert found['version'].startswith('k3s version v1.36.3+k3s1')
    assert found['sha256'] == _host_state.digest(k3s, 'sha256')
    assert found['units'] == {'k3s': {'LoadState': 'loaded', 'ActiveState': 'active', 'UnitFileState': 'enabled',
                                      'MainPID': '812'}}
    assert ['systemctl', 'show', '--property=LoadState,ActiveState,UnitFileState,MainPID', '--', 'k3s.service'] in asked
    assert found['images_stale'] == [] and found['paths'] == {}


def test_no_binary_no_version_and_no_checksum(tmp_path):
    def run(argv):
        if argv[0] != 'systemctl':
            raise AssertionError('nothing to run without a binary: %r' % argv)
        return 1, '', ''

    found = _k3s_probe.probe(str(tmp_path / 'k3s'), checksum=True, units=['k3s'], run=run)
    assert (found['version'], found['sha256']) == ('', '')
    assert found['units'] == {'k3s': dict((prop, '') for prop in _k3s_probe.UNIT_PROPERTIES)}


def test_a_version_command_that_times_out_or_cannot_start_gives_no_version(tmp_path):
    k3s = script(tmp_path / 'k3s', 'exit 0')
    assert _k3s_probe.installed_version(k3s, lambda argv: (None, '', '')) == ''
    assert _k3s_probe.installed_version(k3s, lambda argv: (127, '', 'no such file')) == ''


def test_module_in_check_mode(tmp_path, run_module):
    conf = written(tmp_path / 'config.yaml', b'a: 1\n', 0o600)
    result, failed = run_module(k3s_probe, {'bin': str(tmp_path / 'k3s'), 'files': [conf], 'digest': [conf],
                                            'images': {'dir': str(tmp_path), 'names': ['i.tar'], 'sums': ''}},
                                check_mode=True)
    assert not failed and not result['changed']
    found = result['k3s_probe']
    assert found['paths'][conf]['sha1'] == hashlib.sha1(b'a: 1\n').hexdigest()
    assert found['images_stale'] == ['i.tar']
    assert found['version'] == ''
