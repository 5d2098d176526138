# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a role needs to know about a host before it changes anything, read in one call.

``read`` (the host_state module) reports files (type, sha1, mode, owner, group), installed
packages (dpkg or rpm) and systemd units (load, active and unit-file state). ``file_matches``,
``directory_matches`` (the managed_file action) and ``packages_installed`` (the test plugin of
that name) decide from that report whether a template, copy, folder or package task would change
anything: when it would not, managed_file sends nothing and the package task is skipped, so a
no-change re-run costs one call per role instead of one per file. They answer "same" only for
exact equality (content bytes, mode, owner, group; every package installed at a version the spec
accepts); anything unknown counts as different, so the task runs and decides itself (drift is
never hidden, only the proof that there is none is cheaper).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import grp
import hashlib
import os
import pwd
import stat

# systemctl show properties the roles decide from.
UNIT_PROPERTIES = ('LoadState', 'ActiveState', 'UnitFileState')


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def digest(path, algorithm='sha1'):
    """The hex digest of a file's bytes, read in blocks."""
    hashed = hashlib.new(algorithm)
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            hashed.update(block)
    return hashed.hexdigest()


def owner_of(st):
    """Mode (four octal digits), owner and group names (the number when it has no name) of a stat result."""
    return {
        'mode': '%04o' % stat.S_IMODE(st.st_mode),
        'owner': _name(pwd.getpwuid, st.st_uid),
        'group': _name(grp.getgrgid, st.st_gid),
    }


def file_state(path):
    """The state of one path, not following a final symlink: ``{'type': 'absent'}`` when missing;
    type file/directory/link/other with mode, owner and group; sha1 of a regular file's bytes,
    target of a link."""
    try:
        st = os.lstat(path)
    except OSError:
        return {'type': 'absent'}
    entry = owner_of(st)
    if stat.S_ISREG(st.st_mode):
        entry.update(type='file', sha1=digest(path))
    elif stat.S_ISDIR(st.st_mode):
        entry['type'] = 'directory'
    elif stat.S_ISLNK(st.st_mode):
        entry.update(type='link', target=os.readlink(path))
    else:
        entry['type'] = 'other'
    return entry


def package_versions(names, run, manager):
    """{name: version} of the installed packages among ``names`` ('' when not installed, or only
    half installed). ``run(argv)`` returns (rc, stdout); ``manager`` is 'dpkg' or 'rpm'."""
    found = dict((name, '') for name in names)
    if not names:
        return found
    if manager == 'dpkg':
        # db:Status-Abbrev is "ii " for an installed package; anything else (rc, iU, ...) is not.
        # dpkg-query exits 1 when a name is unknown and still lists the others.
        _rc, out = run(['dpkg-query', '-W', '-f', '${Package}\t${db:Status-Abbrev}\t${Version}\n'] + list(names))
        for line in out.splitlines():
            parts = line.split('\t')
            if len(parts) == 3 and parts[0] in found and parts[1].strip() == 'ii':
                found[parts[0]] = parts[2]
    elif manager == 'rpm':
        _rc, out = run(['rpm', '-q', '--qf', '%{NAME}\t%{VERSION}-%{RELEASE}\n'] + list(names))
        for line in out.splitlines():
            parts = line.split('\t')
            if len(parts) == 2 and parts[0] in found:
                found[parts[0]] = parts[1]
    return found


def unit_states(names, run, properties=UNIT_PROPERTIES):
    """{unit: {LoadState, ActiveState, UnitFileState}} (or the ``properties`` asked) from one
    systemctl show call; all empty without a ``run`` (no running systemd)."""
    states = dict((name, dict((prop, '') for prop in properties)) for name in names)
    if not names or run is None:
        return states
    rc, out = run(['systemctl', 'show', '--property=' + ','.join(properties), '--'] + list(names))
    # One block per unit, in the order asked, separated by a blank line.
    blocks = out.strip('\n').split('\n\n') if rc == 0 and out.strip() else []
    for name, block in zip(names, blocks):
        for line in block.splitlines():
            key, sep, value = line.partition('=')
            if sep and key in properties:
                states[name][key] = value
    return states


def read(files=(), packages=(), units=(), run=None, manager='', systemd_dir='/run/systemd/system'):
    """The whole report of the host_state module."""
    systemd = os.path.isdir(systemd_dir)
    return {
        'files': dict((path, file_state(path)) for path in files),
        'packages': package_versions(list(packages), run, manager),
        'units': unit_states(list(units), run if systemd else None),
        'systemd': systemd,
    }


def _mode(mode):
    text = str(mode)
    try:
        return '%04o' % int(text, 8)
    except ValueError:
        return None


def file_matches(entry, content, mode=None, owner=None, group=None):
    """True only when ``entry`` (one of read()'s files) is a regular file with exactly ``content``
    (str, written UTF-8, or bytes) and, where given, that mode, owner and group."""
    if not isinstance(entry, dict) or entry.get('type') != 'file' or not entry.get('sha1'):
        return False
    data = content.encode('utf-8') if not isinstance(content, bytes) else content
    if hashlib.sha1(data).hexdigest() != entry['sha1']:
        return False
    return _owned(entry, mode, owner, group)


def directory_matches(entry, mode=None, owner=None, group=None):
    """True only when ``entry`` is a directory (not a link to one) with, where given, that mode,
    owner and group."""
    if not isinstance(entry, dict) or entry.get('type') != 'directory':
        return False
    return _owned(entry, mode, owner, group)


def _owned(entry, mode, owner, group):
    if mode is not None and (_mode(mode) is None or _mode(mode) != entry.get('mode')):
        return False
    if owner is not None and str(owner) != entry.get('owner'):
        return False
    if group is not None and str(group) != entry.get('group'):
        return False
    return True


def packages_installed(specs, installed):
    """True only when every apt-style spec (``name``, ``name=version`` or ``name=version-glob``,
    as the apt task asks for it with state present) is installed at a version it accepts."""
    if not isinstance(installed, dict):
        return False
    for spec in specs:
        name, sep, version = str(spec).partition('=')
        have = installed.get(name) or ''
        if not have:
            return False
        if sep and not fnmatch.fnmatchcase(have, version):
            return False
    return True


def run(module):
    """The host_state module: ``read`` with the module's parameters and command runner."""
    params = module.params
    manager = params['package_manager']
    if manager == 'auto':
        manager = 'dpkg' if module.get_bin_path('dpkg-query') else 'rpm' if module.get_bin_path('rpm') else ''
    elif params['packages'] and not module.get_bin_path('dpkg-query' if manager == 'dpkg' else 'rpm'):
        module.fail_json(msg='package_manager is %s, but %s is not installed on this host: use auto, or the '
                         'package manager the host has' % (manager, 'dpkg-query' if manager == 'dpkg' else 'rpm'))

    def command(argv):
        rc, out, _err = module.run_command(argv, environ_update={'LC_ALL': 'C'})
        return rc, out

    return read(params['files'], params['packages'], params['units'], command, manager)
