# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the K3s roles read from a host before they change anything, in one call (the k3s_probe
module, run by k3s_common's check step).

Besides what ``_host_state`` reads for every role (a file's sha1, mode, owner and group, the
units), the K3s roles need: whether a path is an executable file (the NVIDIA runtime), the
bytes of the YAML files they replace (parsed on the controller; a file that cannot be parsed is
refused), which airgap tarballs the host lacks or holds unlike the release's
``sha256sum-<arch>.txt``, the folders and links they make, the installed K3s version and, when
the binary is pinned, its sha256. The entries of files are ``_host_state``'s (same digest, same
owner names), so ``managed_file`` compares them with the same rule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import stat

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._proc import run as run_with_limit

# systemctl show properties of the K3s (and Docker) units: _host_state's and the main PID (the
# wait after a restart tells the new process from the old one).
UNIT_PROPERTIES = _host_state.UNIT_PROPERTIES + ('MainPID',)
# A command the probe runs (k3s --version) may take this long.
COMMAND_SECONDS = 60


def path_entry(path, digest):
    """One of the files the roles look at, following links as the roles' tasks do: None when it
    does not exist; its type and whether it is executable; the bytes (base64) of a YAML file;
    with ``digest``, the sha1, mode, owner and group of a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    kind = 'file' if stat.S_ISREG(st.st_mode) else 'directory' if stat.S_ISDIR(st.st_mode) else 'other'
    entry = {'type': kind, 'executable': kind == 'file' and os.access(path, os.X_OK)}
    if kind == 'file' and path.endswith('.yaml'):
        with open(path, 'rb') as handle:
            entry['content'] = base64.b64encode(handle.read()).decode('ascii')
    if kind == 'file' and digest:
        entry.update(sha1=_host_state.digest(path, 'sha1'), **_host_state.owner_of(st))
    return entry


def published_sums(text):
    """{file name: sha256} of a release's sha256sum file (``<sum>  <name>`` or ``<sum> *<name>``)."""
    return dict((parts[1].lstrip('*'), parts[0])
                for parts in (line.split() for line in (text or '').splitlines()) if len(parts) == 2)


def images_stale(directory, names, sums):
    """The tarball names the host lacks, holds with another sha256 than the release publishes,
    or holds with another mode or owner than 0644 root:root (a name the sums do not list is
    always stale)."""
    published = published_sums(sums)
    stale = []
    for image in names:
        path = os.path.join(directory, image)
        same = False
        if image in published and os.path.isfile(path):
            st = os.stat(path)
            if stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == 0 and st.st_gid == 0:
                same = _host_state.digest(path, 'sha256') == published[image]
        if not same:
            stale.append(image)
    return stale


def directory_entry(path):
    """Whether ``path`` (not followed) is a folder, with its mode and numeric owner; None when missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return {'dir': stat.S_ISDIR(st.st_mode), 'mode': '%04o' % stat.S_IMODE(st.st_mode),
            'uid': st.st_uid, 'gid': st.st_gid}


def installed_version(binary, run):
    """The output of ``<binary> --version`` ('' when there is no executable binary or it fails)."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return ''
    rc, out, _err = run([binary, '--version'])
    return out if rc is not None and rc != 127 else ''


def probe(bin_path, checksum=False, files=(), digest=(), images=None, dirs=(), links=(), units=(), run=None):
    """The k3s_probe module's answer. ``run(argv)`` returns (rc, stdout, stderr), rc None on a
    timeout and 127 when the command cannot start."""
    run = run or (lambda argv: run_with_limit(argv, COMMAND_SECONDS))
    images = images or {}
    digest = set(digest)
    paths = {}
    for path in files:
        entry = path_entry(path, path in digest)
        if entry is not None:
            paths[path] = entry
    found_dirs = {}
    for path in dirs:
        entry = directory_entry(path)
        if entry is not None:
            found_dirs[path] = entry

    def systemctl(argv):
        rc, out, _err = run(argv)
        return (rc if rc is not None else 1), out

    return {
        'paths': paths,
        'images_stale': images_stale(images.get('dir') or '', images.get('names') or [], images.get('sums') or ''),
        'dirs': found_dirs,
        'links': dict((path, os.readlink(path) if os.path.islink(path) else None) for path in links),
        'version': installed_version(bin_path, run),
        'sha256': _host_state.digest(bin_path, 'sha256') if checksum and os.path.isfile(bin_path) else '',
        'units': unit_states(list(units), systemctl),
    }


def unit_states(units, systemctl):
    """{unit: its UNIT_PROPERTIES} of the services named without their ``.service`` suffix."""
    states = _host_state.unit_states([unit + '.service' for unit in units], systemctl, UNIT_PROPERTIES)
    return dict((unit, states[unit + '.service']) for unit in units)


def run(module):
    """The k3s_probe module: ``probe`` with the module's parameters."""
    params = module.params
    return probe(params['bin'], params['checksum'], params['files'], params['digest'], params['images'],
                 params['dirs'], params['links'], params['units'])
