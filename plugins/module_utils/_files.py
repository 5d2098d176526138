# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File handling shared by the writer modules: read, compare, atomic write, backup, diff.

Every writer goes through ``write_text``: nothing is written in check mode, the new
content lands in a temporary file in the destination folder and replaces the old one
with ``module.atomic_move`` (so a reader never sees half a file), and ownership and mode
are kept from the old file or set from the module's file arguments.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import tempfile


class FileProblem(Exception):
    """A path the writers must not read or replace: the message says what and how to fix it.

    The writers below turn it into ``fail_json``; a module that calls ``read_text`` without
    ``module`` sees it raised, and Ansible shows its message as the task's error.
    """


def _problem(module, msg):
    if module is not None:
        module.fail_json(msg=msg)
    raise FileProblem(msg)


def file_problem(path):
    """'' when ``path`` is absent or a regular file (or a link to one), else why it is not."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if not os.path.lexists(path):
            return ''
        return 'cannot look at %s: %s' % (path, exc.strerror or exc)
    if stat.S_ISREG(mode):
        return ''
    kind = 'a directory' if stat.S_ISDIR(mode) else 'not a regular file'
    return ('%s is %s where a file is expected: move it out of the way (keep what you need) and run again; '
            'nothing was changed' % (path, kind))


def read_text(path, module=None):
    """Return the file's text, or None when it does not exist.

    A directory or special file at ``path``, an unreadable file or one that is not UTF-8 text
    is refused (``fail_json`` with ``module``, else FileProblem), never read as empty or
    rewritten with replacement characters.
    """
    problem = file_problem(path)
    if problem:
        _problem(module, problem)
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        if not os.path.lexists(path):
            return None
        _problem(module, 'cannot read %s: %s (run as root, e.g. with become: true); nothing was changed'
                 % (path, exc.strerror or exc))
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        _problem(module, '%s is not UTF-8 text (byte %d): the collection refuses to rewrite what it cannot read; '
                         'fix or move the file and run again; nothing was changed' % (path, exc.start))


def make_diff(path, before, after):
    """A diff dict as Ansible's --diff expects it (before/after as text)."""
    return {
        'before_header': path if before is not None else '%s (absent)' % path,
        'after_header': path if after is not None else '%s (absent)' % path,
        'before': before if before is not None else '',
        'after': after if after is not None else '',
    }


def write_text(module, path, content, backup=False, mode=None, create_dirs=True):
    """Write ``content`` to ``path`` if it differs. Returns a result dict:
    ``changed``, ``diff``, ``backup_file`` (when a backup was made).

    In check mode it reports what would change and writes nothing.
    """
    before = read_text(path, module)
    result = {'changed': False, 'diff': make_diff(path, before, content), 'backup_file': None}
    file_args = module.load_file_common_arguments(module.params, path=path)
    if mode is not None and file_args.get('mode') is None:
        file_args['mode'] = mode
    if before == content:
        if not module.check_mode and os.path.exists(path):
            result['changed'] = module.set_fs_attributes_if_different(file_args, False)
        return result
    result['changed'] = True
    if module.check_mode:
        return result
    directory = os.path.dirname(path) or '.'
    if os.path.lexists(directory) and not os.path.isdir(directory):
        module.fail_json(msg='%s cannot be written: %s is not a directory; nothing was changed' % (path, directory))
    if not os.path.isdir(directory):
        if not create_dirs:
            module.fail_json(msg='the folder %s does not exist: create it first' % directory)
        try:
            os.makedirs(directory, 0o755)
        except OSError as exc:
            module.fail_json(msg='cannot create the folder %s: %s (run as root, e.g. with become: true)'
                             % (directory, exc))
    if backup and before is not None:
        result['backup_file'] = module.backup_local(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content.encode('utf-8'))
        if before is None:
            # A new file: default to 0644 unless the caller asked for a mode.
            os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path, unsafe_writes=module.params.get('unsafe_writes', False))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.set_fs_attributes_if_different(file_args, True)
    return result


def remove_file(module, path, backup=False):
    """Remove ``path`` if present (with an optional backup). Returns the same dict as write_text."""
    before = read_text(path, module)
    result = {'changed': before is not None, 'diff': make_diff(path, before, None), 'backup_file': None}
    if before is None or module.check_mode:
        return result
    if backup:
        result['backup_file'] = module.backup_local(path)
    try:
        os.unlink(path)
    except OSError as exc:
        module.fail_json(msg='cannot remove %s: %s (run as root, e.g. with become: true)' % (path, exc))
    return result
