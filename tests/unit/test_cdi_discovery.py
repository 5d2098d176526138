# -*- coding: utf-8 -*-
"""_cdi discovery on the host: ELF SONAMEs, libraries, binaries, firmware, IPC sockets, GPUs,
capabilities and the driver version, on stand-in trees (fake_driver) and crafted files.

Written for what `make mutation` showed no test reached (docs/development.md, "Mutation
testing"); each test states a rule of the code, not its implementation.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import struct
import subprocess

import pytest

import fake_driver
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi

VERSION = fake_driver.VERSION
LIB64 = 'usr/local/nvidia/lib64'


# ---- ELF SONAME reader --------------------------------------------------------------------------

PT_LOAD, PT_DYNAMIC, PT_NOTE = 1, 2, 4
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME = 0, 1, 5, 14
STRTAB_VADDR = 0x7000  # where the string table is mapped; on purpose not its file offset


def elf_image(soname=b'libnvidia-fake.so.1', klass=2, data=1, magic=b'\x7fELF', dynamic=True, entries=None,
              strtab_mapped=True, terminated=True):
    """Bytes of a 64-bit little-endian ELF shared object, laid out by hand (a stand-in, no code):
    a PT_NOTE header (ignored), a PT_LOAD that ends right where the string table's begins (so
    only the second PT_LOAD holds it), a PT_DYNAMIC with DT_NEEDED, DT_STRTAB, DT_SONAME, DT_NULL
    and, after DT_NULL, an entry the reader must not take. ``entries`` replaces the dynamic
    entries; the string table is ``\\0libc.so.6\\0<soname>\\0``."""
    strtab = b'\0libc.so.6\0' + soname + b'\0'
    soname_at = len(b'\0libc.so.6\0')
    if entries is None:
        entries = [(DT_NEEDED, 1), (DT_STRTAB, STRTAB_VADDR), (DT_SONAME, soname_at)]
        if terminated:
            entries += [(DT_NULL, 0), (DT_SONAME, 1)]  # past the end: 'libc.so.6' must not be read
    headers = 4 if dynamic else 3
    dyn_off = 64 + 56 * headers
    dyn = b''.join(struct.pack('<qQ', tag, value) for tag, value in entries)
    str_off = dyn_off + len(dyn)
    phdrs = [
        # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        (PT_NOTE, 4, 0, STRTAB_VADDR, 0, len(strtab), len(strtab), 4),
        (PT_LOAD, 4, 0, STRTAB_VADDR - 0x100, 0, 0x100, 0x100, 0x1000),
        (PT_LOAD, 4, str_off, STRTAB_VADDR if strtab_mapped else 0x9000, 0, len(strtab), len(strtab), 0x1000),
    ]
    if dynamic:
        phdrs.append((PT_DYNAMIC, 6, dyn_off, 0x8000, 0, len(dyn), len(dyn), 8))
    ident = magic + bytes(bytearray([klass, data, 1])) + b'\0' * 9
    header = struct.pack('<16sHHIQQQIHHHHHH', ident, 3, 62, 1, 0, 64, 0, 0, 64, 56, len(phdrs), 0, 0, 0)
    return header + b''.join(struct.pack('<IIQQQQQQ', *p) for p in phdrs) + dyn + strtab


def write(path, content):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as handle:
        handle.write(content)
    return path


def test_elf_soname_of_a_crafted_shared_object(tmp_path):
    path = write(str(tmp_path / ('libnvidia-fake.so.%s' % VERSION)), elf_image())
    assert _cdi.elf_soname(path) == 'libnvidia-fake.so.1'
    # The dynamic section may end without DT_NULL; the last entry still counts.
    path = write(str(tmp_path / 'unterminated.so'), elf_image(terminated=False))
    assert _cdi.elf_soname(path) == 'libnvidia-fake.so.1'
    # Entries in any order; a SONAME that carries the full driver version.
    path = write(str(tmp_path / 'reordered.so'), elf_image(
        soname=b'libnvidia-tls.so.' + VERSION.encode(),
        entries=[(DT_SONAME, len(b'\0libc.so.6\0')), (DT_NEEDED, 1), (DT_STRTAB, STRTAB_VADDR), (DT_NULL, 0)]))
    assert _cdi.elf_soname(path) == 'libnvidia-tls.so.' + VERSION
    # Bytes that are not ASCII do not stop discovery (they are replaced).
    path = write(str(tmp_path / 'odd.so'), elf_image(soname=b'libnvidia-\xe9t\xe9.so.1'))
    assert _cdi.elf_soname(path) == u'libnvidia-\ufffdt\ufffd.so.1'


@pytest.mark.parametrize('case,image', [
    ('32-bit', elf_image(klass=1)),
    ('big-endian', elf_image(data=2)),
    ('not ELF', elf_image(magic=b'\x7fELG')),
    ('shorter than an ELF header', elf_image()[:40]),
    ('no PT_DYNAMIC', elf_image(dynamic=False)),
    ('no DT_SONAME', elf_image(entries=[(DT_NEEDED, 1), (DT_STRTAB, STRTAB_VADDR), (DT_NULL, 0)])),
    ('no DT_STRTAB', elf_image(entries=[(DT_SONAME, 11), (DT_NULL, 0)])),
    ('DT_SONAME after DT_NULL only', elf_image(entries=[(DT_STRTAB, STRTAB_VADDR), (DT_NULL, 0), (DT_SONAME, 11)])),
    ('string table outside every PT_LOAD', elf_image(strtab_mapped=False)),
    ('empty SONAME', elf_image(soname=b'')),
    ('program headers cut off', elf_image()[:64 + 60]),
])
def test_elf_soname_is_none_for_what_it_cannot_read(tmp_path, case, image):
    assert _cdi.elf_soname(write(str(tmp_path / 'lib.so'), image)) is None, case


def test_elf_soname_of_files_that_are_not_libraries(tmp_path):
    assert _cdi.elf_soname(str(tmp_path / 'missing.so')) is None
    assert _cdi.elf_soname(str(tmp_path)) is None  # a folder
    assert _cdi.elf_soname(write(str(tmp_path / 'empty.so'), b'')) is None


@pytest.fixture
def gcc_library(tmp_path):
    """A real shared object built with the C compiler: SONAME libnvidia-fake.so.1, file name
    libnvidia-fake.so.<driver version>, like a driver library (it holds one function, no NVIDIA code)."""
    compiler = shutil.which('gcc') or shutil.which('cc')
    if compiler is None:
        pytest.skip('no C compiler (gcc or cc): apt-get install gcc')
    source = tmp_path / 'fake.c'
    source.write_text('int nvidia_fake_probe(void) { return 42; }\n')

    def build(name, soname=None):
        out = str(tmp_path / 'build' / name)
        if not os.path.isdir(os.path.dirname(out)):
            os.makedirs(os.path.dirname(out))
        flags = ['-Wl,-soname,%s' % soname] if soname else []
        subprocess.check_call([compiler, '-shared', '-fPIC', '-o', out, str(source)] + flags)
        return out
    return build


def test_elf_soname_of_a_library_built_by_the_compiler(gcc_library):
    assert _cdi.elf_soname(gcc_library('libnvidia-fake.so.%s' % VERSION, 'libnvidia-fake.so.1')) == \
        'libnvidia-fake.so.1'
    assert _cdi.elf_soname(gcc_library('libnvidia-nosoname.so.%s' % VERSION)) is None


def test_discover_mounts_a_library_under_its_elf_soname(tmp_path, gcc_library):
    # No SONAME symlink next to it: only the ELF header tells the name programs load it by.
    root = fake_driver.build(str(tmp_path / 'r'))
    built = gcc_library('libnvidia-fake.so.%s' % VERSION, 'libnvidia-fake.so.1')
    shutil.copy(built, os.path.join(root, LIB64))
    # Without a SONAME in the header, a symlink that points at the file names it.
    plain = gcc_library('libnvidia-plain.so.%s' % VERSION)
    shutil.copy(plain, os.path.join(root, LIB64))
    os.symlink('libnvidia-plain.so.%s' % VERSION, os.path.join(root, LIB64, 'libnvidia-plain.so.1'))
    found = _cdi.discover(root, root, [], VERSION, None)
    sonames = dict((os.path.basename(lib['host_path']), lib['soname']) for lib in found['libraries'])
    assert sonames['libnvidia-fake.so.%s' % VERSION] == 'libnvidia-fake.so.1'
    assert sonames['libnvidia-plain.so.%s' % VERSION] == 'libnvidia-plain.so.1'
    mounts = [m['containerPath'] for m in _cdi.build_spec(found)['containerEdits']['mounts']]
    assert '/usr/local/nvidia/lib64/libnvidia-fake.so.1' in mounts


def test_soname_from_symlinks_takes_the_shortest_link_to_the_file(tmp_path):
    folder = tmp_path / 'lib'
    folder.mkdir()
    real = folder / ('libfoo.so.%s' % VERSION)
    real.write_text('stand-in, not ELF')
    (folder / 'libfoo.so.470.1').write_text('another driver')
    os.symlink(real.name, str(folder / 'libfoo.so.12'))
    os.symlink(real.name, str(folder / 'libfoo.so.2'))
    os.symlink('libfoo.so.470.1', str(folder / 'libfoo.so.1'))  # shorter, but another file
    (folder / 'libfoo.so.3').write_text('a copy, not a link')
    names = sorted(os.listdir(str(folder)))
    assert _cdi.soname_of(str(real), names) == 'libfoo.so.2'
    # Nothing points at it: its own name.
    lonely = folder / ('libbar.so.%s' % VERSION)
    lonely.write_text('x')
    assert _cdi.soname_of(str(lonely), names + [lonely.name]) == lonely.name


# ---- libraries, binaries, firmware, IPC ---------------------------------------------------------

def test_libraries_each_file_and_each_soname_once(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'))
    lib = os.path.join(root, LIB64)
    first = os.path.join(root, 'opt/drv')
    os.makedirs(first)
    # Searched first: links into lib64 (as a distribution folder may have them), one under
    # another name; a new library; a dangling link and names that are not driver libraries.
    os.symlink(os.path.join(lib, 'libcuda.so.%s' % VERSION), os.path.join(first, 'libcuda.so.%s' % VERSION))
    os.symlink('libcuda.so.%s' % VERSION, os.path.join(first, 'libcuda.so.1'))
    os.symlink(os.path.join(lib, 'libnvidia-ml.so.%s' % VERSION), os.path.join(first, 'libnvidia-alias.so.%s' % VERSION))
    write(os.path.join(first, 'libb-new.so.%s' % VERSION), b'x')
    os.symlink('nowhere', os.path.join(first, 'libdangling.so.%s' % VERSION))
    write(os.path.join(first, 'notlib.so.%s' % VERSION), b'x')
    write(os.path.join(first, 'libc-other.so.1.2.3'), b'x')
    # Searched last: another copy of libcuda (the same SONAME, another file), then a new library.
    later = os.path.join(root, 'opt/later')
    os.makedirs(later)
    write(os.path.join(later, 'libcuda.so.%s' % VERSION), b'copy')
    os.symlink('libcuda.so.%s' % VERSION, os.path.join(later, 'libcuda.so.1'))
    write(os.path.join(later, 'libzz-last.so.%s' % VERSION), b'x')
    found = _cdi.discover(root, root, ['/opt/missing', '/opt/drv', '/usr/local/nvidia/lib64', '/opt/later'],
                          VERSION, None)
    paths = [entry['host_path'] for entry in found['libraries']]
    sonames = [entry['soname'] for entry in found['libraries']]
    assert len(paths) == len(set(paths)), 'a file is mounted twice'
    assert len(sonames) == len(set(sonames)), 'two files are mounted under one name'
    assert {'host_path': os.path.join(lib, 'libcuda.so.%s' % VERSION), 'soname': 'libcuda.so.1'} in found['libraries']
    assert os.path.join(first, 'libb-new.so.%s' % VERSION) in paths
    assert os.path.join(lib, 'libnvidia-ptxjitcompiler.so.%s' % VERSION) in paths  # after the skipped ones
    assert os.path.join(later, 'libcuda.so.%s' % VERSION) not in paths
    assert paths[-1] == os.path.join(later, 'libzz-last.so.%s' % VERSION)
    assert not any('dangling' in p or 'notlib' in p or 'libc-other' in p for p in paths)
    assert len(paths) == 26 + 2


def test_binaries_need_an_executable_file(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'))
    smi = os.path.join(root, 'usr/local/nvidia/bin/nvidia-smi')
    os.chmod(smi, 0o644)  # in the first folder searched: a file, not executable
    later = write(os.path.join(root, 'usr/bin/nvidia-smi'), b'#!/bin/sh\n')
    os.chmod(later, 0o755)
    os.unlink(os.path.join(root, 'usr/local/nvidia/bin/nvidia-debugdump'))
    os.makedirs(os.path.join(root, 'usr/bin/nvidia-debugdump'))  # a folder (searchable, not a file)
    sbin = write(os.path.join(root, 'sbin/nvidia-debugdump'), b'#!/bin/sh\n')
    os.chmod(sbin, 0o755)
    found = _cdi.discover(root, root, [], VERSION, None)
    binaries = dict((b['name'], b['host_path']) for b in found['binaries'])
    assert binaries['nvidia-smi'] == later
    assert binaries['nvidia-debugdump'] == sbin
    assert len(found['binaries']) == 5


def test_firmware_is_the_gsp_files_of_the_running_driver(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'))
    folder = os.path.join(root, 'usr/local/nvidia/firmware/nvidia', VERSION)
    for name in ('gsp_notes.txt', 'other.bin', 'README'):
        write(os.path.join(folder, name), b'x')
    write(os.path.join(root, 'usr/local/nvidia/firmware/nvidia/570.86.15/gsp_ga10x.bin'), b'x')
    found = _cdi.discover(root, root, [], VERSION, None)
    assert found['firmware'] == [
        {'host_path': os.path.join(folder, name), 'container_path': '/lib/firmware/nvidia/%s/%s' % (VERSION, name)}
        for name in ('gsp_ga10x.bin', 'gsp_tu10x.bin')]


def test_ipc_sockets_of_persistenced_fabricmanager_and_mps(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'), ipc=True)
    write(os.path.join(root, 'run/nvidia-fabricmanager/socket'), b'')
    os.makedirs(os.path.join(root, 'tmp/nvidia-mps'))
    found = _cdi.discover(root, root, [], VERSION, None)
    assert found['ipc'] == [
        {'host_path': os.path.join(root, 'run/nvidia-persistenced/socket'),
         'container_path': '/run/nvidia-persistenced/socket'},
        {'host_path': os.path.join(root, 'run/nvidia-fabricmanager/socket'),
         'container_path': '/run/nvidia-fabricmanager/socket'},
        {'host_path': os.path.join(root, 'tmp/nvidia-mps'), 'container_path': '/tmp/nvidia-mps'},
    ]
    mounts = _cdi.build_spec(found)['containerEdits']['mounts']
    assert mounts[-3:] == [
        {'hostPath': ipc['host_path'], 'containerPath': ipc['container_path'],
         'options': ['ro', 'nosuid', 'nodev', 'bind', 'noexec']} for ipc in found['ipc']]
    # Only the sockets that exist: none on a host without the daemons.
    assert _cdi.discover(fake_driver.build(str(tmp_path / 'bare')), None, [], VERSION, [])['ipc'] == []


# ---- GPUs, capabilities, driver version ---------------------------------------------------------

def test_several_gpus_where_earlier_ones_are_broken(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'), gpus=2)
    gpus = [{'index': 0, 'uuid': 'GPU-a', 'minor_number': None},   # no minor number
            {'index': 1, 'uuid': 'GPU-b', 'minor_number': 7},      # no /dev/nvidia7
            {'index': 2, 'uuid': 'GPU-c', 'minor_number': 1},
            {'index': 3, 'uuid': 'GPU-d', 'minor_number': 0}]
    found = _cdi.discover(root, root, [], VERSION, gpus)
    assert found['problems'] == ['GPU 0 has no minor number',
                                 'device node /dev/nvidia7 of GPU 1 does not exist under %s' % root]
    assert [(g['index'], g['node'], g['caps']) for g in found['gpus']] == [(2, '/dev/nvidia1', []),
                                                                           (3, '/dev/nvidia0', [])]
    spec = _cdi.build_spec(found)
    assert _cdi.device_names(spec) == ['nvidia.com/gpu=%s' % n for n in ('2', 'GPU-c', '3', 'GPU-d', 'all')]


def test_gpus_from_dev_in_numeric_order(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'), gpus=3)
    for name in ('nvidia10', 'nvidia-uvm-tools', 'nvidia2x', 'nvidia-caps'):
        path = os.path.join(root, 'dev', name)
        if not os.path.exists(path):
            write(path, b'')
    found = _cdi.discover(root, root, [], VERSION, None)
    assert [(g['index'], g['minor_number'], g['uuid']) for g in found['gpus']] == \
        [(0, 0, None), (1, 1, None), (2, 2, None), (10, 10, None)]
    assert _cdi.discover(root, str(tmp_path / 'no-dev'), [], VERSION, None)['gpus'] == []


def test_unknown_capability_is_named(tmp_path):
    with pytest.raises(ValueError) as err:
        _cdi.discover(str(tmp_path), str(tmp_path), [], VERSION, [], caps=['mig-access', 'everything', 'all'])
    assert str(err.value) == 'unknown capability all, everything (known: mig-access, mig-monitor, mig-config)'


def test_monitor_and_config_minors_default_when_proc_does_not_say(tmp_path):
    root = fake_driver.build(str(tmp_path / 'r'))
    empty_proc = str(tmp_path / 'proc')
    found = _cdi.discover(root, root, [], VERSION, None, caps=['mig-monitor', 'mig-config'], proc_root=empty_proc)
    assert found['caps'] == ['/dev/nvidia-caps/nvidia-cap2', '/dev/nvidia-caps/nvidia-cap1']
    assert found['cap_problems'] == []


def test_mig_access_from_the_proc_root_given(tmp_path):
    # proc_root is an argument (the module's PROC_ROOT stays '/'): instances gi2 and gi10, in order.
    root = fake_driver.build(str(tmp_path / 'r'))
    proc = str(tmp_path / 'proc')
    fake_driver.build_mig_proc(proc, root, 0, {10: {'minor': 30, 'cis': {10: 32, 2: 31}}, 2: {'minor': 20}})
    # A gi entry that is a file, not a folder, and a stray name: ignored.
    write(os.path.join(proc, 'proc/driver/nvidia/capabilities/gpu0/mig/gi3'), b'')
    write(os.path.join(proc, 'proc/driver/nvidia/capabilities/gpu0/mig/notes'), b'')
    assert _cdi.mig_access_caps(0, proc) == [('gpu0/mig/gi2/access', 20), ('gpu0/mig/gi10/access', 30),
                                             ('gpu0/mig/gi10/ci2/access', 31), ('gpu0/mig/gi10/ci10/access', 32)]
    found = _cdi.discover(root, root, [], VERSION, None, proc_root=proc)
    assert found['gpus'][0]['caps'] == ['/dev/nvidia-caps/nvidia-cap%d' % m for m in (20, 30, 31, 32)]
    assert _cdi.mig_access_caps(1, proc) == []


def test_capability_minor_from_proc_text(tmp_path):
    path = tmp_path / 'access'
    path.write_text('DeviceFileMode: 292\nDeviceFileMinor: 17\n')
    assert _cdi._cap_minor(str(path)) == 17
    path.write_text('DeviceFileMode: 292\n')
    assert _cdi._cap_minor(str(path), 4) == 4
    assert _cdi._cap_minor(str(tmp_path / 'missing'), 5) == 5


@pytest.fixture
def proc_version(tmp_path, monkeypatch):
    """Stand-in for /proc/driver/nvidia/version (the code reads that fixed path): writes ``text``
    to a file that _cdi's open() is pointed at."""
    target = tmp_path / 'proc-driver-nvidia-version'
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == '/proc/driver/nvidia/version':
            if not target.exists():
                raise IOError(2, 'No such file or directory', path)
            path = str(target)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(_cdi, 'open', fake_open, raising=False)
    return target


NVRM = ('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  '
        'Thu Jan  1 00:00:00 UTC 1970\nGCC version:  gcc version 14.3.0 (GCC)\n')


def test_driver_version_from_proc_then_library_names(tmp_path, proc_version):
    lib_root = str(tmp_path / 'libs')
    write(os.path.join(lib_root, 'usr/lib/libcuda.so.570.86.15'), b'x')
    dirs = ['/missing', '/usr/lib']
    proc_version.write_text(NVRM)
    assert _cdi.driver_version_from_host('/', dirs) == '580.159.04'
    assert _cdi.driver_version_from_host(None, ['/nonexistent']) == '580.159.04'
    proc_version.write_text('NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n')
    assert _cdi.driver_version_from_host('', ['/nonexistent']) == '535.104.05'
    # The running kernel module describes this host's driver, not one under another driver_root.
    assert _cdi.driver_version_from_host(lib_root, dirs) == '570.86.15'
    # /proc without a version line, or no /proc file: the libcuda file name.
    proc_version.write_text('garbage\n')
    assert _cdi.driver_version_from_host(lib_root, dirs) == '570.86.15'
    proc_version.unlink()
    assert _cdi.driver_version_from_host(lib_root, dirs) == '570.86.15'
    assert _cdi.driver_version_from_host(lib_root, ['/missing']) is None


def test_discover_finds_the_driver_version_itself(tmp_path, proc_version):
    root = fake_driver.build(str(tmp_path / 'r'))
    found = _cdi.discover(root, root, [], None, None)
    assert found['driver_version'] == VERSION
    assert len(found['libraries']) == 26


# ---- small helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize('root,path,expected', [
    (None, '/dev/nvidia0', '/dev/nvidia0'),
    ('', '/dev/nvidia0', '/dev/nvidia0'),
    ('/', '/dev/nvidia0', '/dev/nvidia0'),
    ('/run/driver', '/dev/nvidia0', '/run/driver/dev/nvidia0'),
    ('/run/driver', 'dev/nvidia0', '/run/driver/dev/nvidia0'),
])
def test_host_path(root, path, expected):
    assert _cdi.host_path(root, path) == expected


def test_build_spec_defaults_and_gpus_without_caps():
    found = {'gpus': [{'index': 0, 'uuid': 'GPU-a', 'node': '/dev/nvidia0'}], 'control_nodes': ['/dev/nvidiactl'],
             'caps': [], 'libraries': [], 'binaries': [], 'firmware': [], 'ipc': []}
    spec = _cdi.build_spec(found)
    assert spec['kind'] == 'nvidia.com/gpu'
    assert [d['name'] for d in spec['devices']] == ['0', 'GPU-a', 'all']
    assert spec['devices'][-1]['containerEdits'] == {'deviceNodes': [{'path': '/dev/nvidia0'}]}
    assert 'hostPath' not in spec['containerEdits']['deviceNodes'][0]


def test_device_names():
    assert _cdi.device_names({'kind': 'example.com/gpu', 'devices': [{'name': 'a'}, 'junk', {'name': 1}]}) == \
        ['example.com/gpu=a', 'example.com/gpu=1']
    assert _cdi.device_names({'devices': [{'name': 'a'}]}) == ['=a']
    assert _cdi.device_names({'kind': 'k/c'}) == []
    assert _cdi.device_names(None) == [] and _cdi.device_names('nvidia.com/gpu=0') == []
