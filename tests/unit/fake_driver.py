# -*- coding: utf-8 -*-
"""Build a stand-in NVIDIA driver tree in a temporary folder, laid out like the H100 host
in fixtures/h100-ubuntu2404/host-probe.txt: libraries in /usr/local/nvidia/lib64 named
*.so.580.159.04 with their SONAME symlinks, utilities in /usr/local/nvidia/bin, GSP
firmware under /usr/local/nvidia/firmware/nvidia/<version>, and /dev/nvidia* nodes.

The files are empty stand-ins (not NVIDIA's, not ELF, the device nodes are plain files):
the tree proves how cdi_spec finds and mounts files, not that a container can use them.
"""

from __future__ import absolute_import, division, print_function

import os
import re

VERSION = '580.159.04'
_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


def read_fixture(*parts):
    with open(os.path.join(_FIXTURES, *parts)) as handle:
        return handle.read()


def probe_libraries():
    """{stem: set(names)} of the libraries the probe's ld cache lists in /usr/local/nvidia/lib64."""
    libs = {}
    probe = read_fixture('h100-ubuntu2404', 'host-probe.txt')
    for match in re.finditer(r'=> /usr/local/nvidia/lib64/(lib[^\s/]+)', probe):
        name = match.group(1)
        libs.setdefault(name.split('.so', 1)[0], set()).add(name)
    return libs


def probe_binaries():
    text = read_fixture('h100-ubuntu2404', 'host-probe.txt')
    section = text.split('/usr/local/nvidia/bin:', 1)[1].split('\n\n', 1)[0]
    return re.findall(r'\s(nvidia-[a-z-]+)$', section, re.M)


def build(root, version=VERSION, gpus=1, firmware=True, ipc=False):
    """Create the tree under ``root`` (used as both driver_root and dev_root)."""
    lib = os.path.join(root, 'usr/local/nvidia/lib64')
    os.makedirs(lib)
    os.symlink('lib64', os.path.join(root, 'usr/local/nvidia/lib'))
    for stem, names in sorted(probe_libraries().items()):
        versioned = '%s.so.%s' % (stem, version)
        with open(os.path.join(lib, versioned), 'w') as handle:
            handle.write('stand-in for %s\n' % versioned)
        sonames = [n for n in names if re.match(r'^.+\.so\.\d+$', n)]
        for soname in sonames:
            os.symlink(versioned, os.path.join(lib, soname))
        if '%s.so' % stem in names:
            os.symlink(sonames[0] if sonames else versioned, os.path.join(lib, '%s.so' % stem))
    bin_dir = os.path.join(root, 'usr/local/nvidia/bin')
    os.makedirs(bin_dir)
    for name in probe_binaries():
        path = os.path.join(bin_dir, name)
        with open(path, 'w') as handle:
            handle.write('#!/bin/sh\nexit 0\n')
        os.chmod(path, 0o755)
    if firmware:
        fw = os.path.join(root, 'usr/local/nvidia/firmware/nvidia', version)
        os.makedirs(fw)
        for name in ('gsp_ga10x.bin', 'gsp_tu10x.bin'):
            open(os.path.join(fw, name), 'w').close()
    dev = os.path.join(root, 'dev')
    os.makedirs(os.path.join(dev, 'nvidia-caps'))
    for name in ['nvidiactl', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia-caps/nvidia-cap1', 'nvidia-caps/nvidia-cap2'] + \
            ['nvidia%d' % i for i in range(gpus)]:
        open(os.path.join(dev, name), 'w').close()
    if ipc:
        os.makedirs(os.path.join(root, 'run/nvidia-persistenced'))
        open(os.path.join(root, 'run/nvidia-persistenced/socket'), 'w').close()
    return root


def build_mig_proc(proc_root, dev_root, gpu_minor=0, instances=None, nodes=True):
    """A stand-in /proc/driver/nvidia/capabilities under ``proc_root`` for a GPU in MIG mode,
    shaped like the driver's (``DeviceFileMinor:`` lines; config 1, monitor 2), and, with
    ``nodes``, the matching /dev/nvidia-caps/nvidia-cap<minor> files under ``dev_root``.
    ``instances``: {gi: {'minor': n, 'cis': {ci: minor}}}. Returns the minors created."""
    base = os.path.join(proc_root, 'proc/driver/nvidia/capabilities')
    files = {'mig/config': 1, 'mig/monitor': 2}
    for gi, data in sorted((instances or {}).items()):
        files['gpu%d/mig/gi%d/access' % (gpu_minor, gi)] = data['minor']
        for ci, minor in sorted(data.get('cis', {}).items()):
            files['gpu%d/mig/gi%d/ci%d/access' % (gpu_minor, gi, ci)] = minor
    for rel, minor in files.items():
        path = os.path.join(base, rel)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, 'w') as handle:
            handle.write('DeviceFileMinor: %d\nDeviceFileMode: 292\nDeviceFileModify: 1\n' % minor)
        node = os.path.join(dev_root, 'dev/nvidia-caps/nvidia-cap%d' % minor)
        if nodes and not os.path.exists(node):
            if not os.path.isdir(os.path.dirname(node)):
                os.makedirs(os.path.dirname(node))
            open(node, 'w').close()
    return sorted(files.values())
