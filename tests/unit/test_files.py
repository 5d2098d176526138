# -*- coding: utf-8 -*-
"""plugins/module_utils/_files.py: what the writer modules refuse (docs/safety.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _files


class Failed(Exception):
    pass


class FakeModule(object):
    """Just what _files uses of AnsibleModule; fail_json raises."""

    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.params = {}
        self.backups = []

    def fail_json(self, msg, **kwargs):
        raise Failed(msg)

    def load_file_common_arguments(self, params, path=None):
        return {'path': path, 'mode': None}

    def set_fs_attributes_if_different(self, file_args, changed):
        return changed

    def backup_local(self, path):
        backup = path + '.bak~'
        with open(path, 'rb') as src, open(backup, 'wb') as dst:
            dst.write(src.read())
        self.backups.append(backup)
        return backup

    def atomic_move(self, src, dest, unsafe_writes=False):
        os.rename(src, dest)


def test_a_directory_where_a_file_is_expected_is_refused_with_a_message(tmp_path):
    target = tmp_path / 'config-v3.toml.tmpl'
    target.mkdir()
    (target / 'keep').write_text('user data')
    for call in (lambda: _files.write_text(FakeModule(), str(target), 'x = 1\n'),
                 lambda: _files.remove_file(FakeModule(), str(target))):
        with pytest.raises(Failed) as err:
            call()
        assert '%s is a directory where a file is expected' % target in str(err.value)
        assert 'nothing was changed' in str(err.value)
    assert (target / 'keep').read_text() == 'user data'


def test_read_text_without_a_module_raises_a_clear_problem(tmp_path):
    with pytest.raises(_files.FileProblem) as err:
        _files.read_text(str(tmp_path))
    assert 'is a directory where a file is expected' in str(err.value)


def test_a_file_that_is_not_utf8_is_not_rewritten(tmp_path):
    target = tmp_path / 'nvidia.yaml'
    target.write_bytes(b'cdiVersion: "0.6.0"\n\xff\xfe garbage\n')
    with pytest.raises(Failed) as err:
        _files.write_text(FakeModule(), str(target), 'cdiVersion: "0.6.0"\n')
    assert 'is not UTF-8 text (byte 20)' in str(err.value)
    assert target.read_bytes().endswith(b'\xff\xfe garbage\n')


def test_a_parent_that_is_a_file_is_refused(tmp_path):
    parent = tmp_path / 'cdi'
    parent.write_text('not a folder')
    with pytest.raises(Failed) as err:
        _files.write_text(FakeModule(), str(parent / 'nvidia.yaml'), 'x\n')
    assert 'is not a directory' in str(err.value)


def test_a_replaced_file_is_backed_up_first(tmp_path):
    target = tmp_path / 'nvidia.yaml'
    target.write_text('old\n')
    module = FakeModule()
    done = _files.write_text(module, str(target), 'new\n', backup=True)
    assert done['changed'] and done['backup_file'] == module.backups[0]
    assert open(done['backup_file']).read() == 'old\n' and target.read_text() == 'new\n'
    done = _files.remove_file(module, str(target), backup=True)
    assert not target.exists() and open(done['backup_file']).read() == 'new\n'


def test_absent_files_read_as_none(tmp_path):
    assert _files.read_text(str(tmp_path / 'missing')) is None
    assert _files.file_problem(str(tmp_path / 'missing')) == ''
