# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CDI specs for NVIDIA GPUs: validation, native generation, staleness.

``validate_spec`` checks a spec (a dict, from any generator) against the CDI rules and,
optionally, that every host path it references exists; it returns a list of problems in
words. The diagnose tooling uses it too. ``minimum_version`` is the lowest ``cdiVersion``
whose fields a spec uses (written specs declare it, so that older consumers such as
podman 4.3 or containerd 1.7, whose CDI library stops at 0.5.0, can read them).

``spec_driver_versions`` / ``stale_reason`` tell which driver a spec was made for from the
spec itself: the driver's files carry its version in their host paths
(``libcuda.so.580.159.04``, ``/lib/firmware/nvidia/580.159.04/``). That works for any
generator, ``nvidia-ctk cdi generate`` included.

``discover`` + ``build_spec`` make a spec without any NVIDIA tool, from the files under
``driver_root`` and ``dev_root``. Without NVIDIA's hooks nothing can run ldconfig or create
symlinks in the container, so libraries are mounted under their SONAME in
``/usr/local/nvidia/lib64`` and binaries in ``/usr/local/nvidia/bin``: the folders the CUDA
images already have on LD_LIBRARY_PATH and PATH.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import re
import struct

CDI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0']
EARLIEST_VERSION = '0.3.0'  # the earliest the CDI library accepts; written specs declare minimum_version()
# Written by cdi_spec before it inferred the driver from the library names (with cdiVersion 0.6.0).
LEGACY_ANNOTATION_DRIVER = 'cdi.k3s-gpu.io/driver-version'
CONTAINER_LIB_DIR = '/usr/local/nvidia/lib64'
CONTAINER_BIN_DIR = '/usr/local/nvidia/bin'
MOUNT_OPTIONS = ['ro', 'nosuid', 'nodev', 'bind']
CONTROL_NODES = ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia-modeset']
BINARIES = ['nvidia-smi', 'nvidia-debugdump', 'nvidia-persistenced', 'nvidia-cuda-mps-control',
            'nvidia-cuda-mps-server']
BIN_DIRS = ['/usr/local/nvidia/bin', '/usr/bin', '/usr/sbin', '/bin', '/sbin', '/run/current-system/sw/bin',
            '/opt/nvidia/bin']
LIB_DIRS = ['/usr/local/nvidia/lib64', '/usr/local/nvidia/lib', '/run/opengl-driver/lib',
            '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib',
            '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/lib64', '/lib', '/usr/lib/wsl/lib']
FIRMWARE_DIRS = ['/lib/firmware/nvidia', '/usr/lib/firmware/nvidia', '/usr/local/nvidia/firmware/nvidia']
IPC_PATHS = ['/run/nvidia-persistenced/socket', '/run/nvidia-fabricmanager/socket', '/tmp/nvidia-mps']
# /dev/nvidia-caps: which capability a node grants is in /proc (DeviceFileMinor); config and
# monitor have these minors when /proc does not say.
PROC_ROOT = '/'
PROC_CAPS = '/proc/driver/nvidia/capabilities'
CAPS = ['mig-access', 'mig-monitor', 'mig-config']
CAP_DEFAULT_MINORS = {'mig-config': 1, 'mig-monitor': 2}
HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']

# The reference CDI library's rules (tags.cncf.io/container-device-interface, pkg/cdi and
# specs-go), restated: the decoder knows these fields and types only (unknown fields and
# wrong types are refused); vendor and class start with a letter, end with a letter or digit
# and use letters, digits, "_", "-" and "." in between; a device name may also use ":" and
# start with a digit. tests/unit/test_cdi_peer.py runs a table of specs through the library
# itself and through validate_spec and fails on any disagreement.
_NAME_INNER = r'[A-Za-z0-9_.-]'
_VENDOR_OR_CLASS = re.compile(r'^[A-Za-z](%s*[A-Za-z0-9])?$' % _NAME_INNER)
_DEVICE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$')
# Stricter than the library (advice only): a vendor that is a DNS subdomain (the CDI spec asks
# for a domain the vendor controls), class names of at most 63 characters, env names that a
# shell can use.
_DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$')
_ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
DEVICE_NODE_TYPES = ('', 'b', 'c', 'u', 'p')
NO_PERMISSIONS = 'none'
# Field -> type, as the library's decoder reads them ([x]: a list of x; a name: a table).
_SCHEMA = {
    'spec': {'cdiVersion': 'str', 'kind': 'str', 'annotations': 'annotations', 'devices': ['device'],
             'containerEdits': 'edits'},
    'device': {'name': 'str', 'annotations': 'annotations', 'containerEdits': 'edits'},
    'edits': {'env': ['str'], 'deviceNodes': ['deviceNode'], 'netDevices': ['netDevice'], 'hooks': ['hook'],
              'mounts': ['mount'], 'intelRdt': 'intelRdt', 'additionalGids': ['uint32']},
    'deviceNode': {'path': 'str', 'hostPath': 'str', 'type': 'str', 'major': 'int', 'minor': 'int',
                   'fileMode': 'uint32', 'permissions': 'str', 'uid': 'uint32', 'gid': 'uint32'},
    'mount': {'hostPath': 'str', 'containerPath': 'str', 'options': ['str'], 'type': 'str'},
    'hook': {'hookName': 'str', 'path': 'str', 'args': ['str'], 'env': ['str'], 'timeout': 'int'},
    'intelRdt': {'closID': 'str', 'l3CacheSchema': 'str', 'memBwSchema': 'str', 'schemata': ['str'],
                 'enableMonitoring': 'bool'},
    'netDevice': {'hostInterfaceName': 'str', 'name': 'str'},
}
_SCALARS = (str, int, float, bool)
# The library's YAML decoder (go.yaml.in/yaml/v3, also for JSON files) reads these words into a
# bool field, quoted or not (its YAML 1.1 compatibility); any other string it refuses. A number
# with a fraction it truncates toward zero before the range check of an integer field.
_BOOL_WORDS = dict([(w, True) for w in ('y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON')] +
                   [(w, False) for w in ('n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF')])


def _version_tuple(version):
    try:
        return tuple(int(p) for p in str(version).split('.'))
    except ValueError:
        return (0,)


def _text(value):
    """A scalar as the library's decoder stores it in a string field (null: empty)."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _bool(value):
    """A bool field as the library's decoder reads it: True, False, or None when it refuses it."""
    if isinstance(value, bool):
        return value
    return _BOOL_WORDS.get(value) if isinstance(value, str) else None


def _whole(value):
    """An integer field as the library's decoder reads it (a fraction truncated toward zero), or
    None when it refuses it (bool, string, infinity, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not math.isinf(value) and not math.isnan(value):
        return int(value)
    return None


def host_path(root, path):
    """``path`` as seen on the host when the driver (or /dev) lives under ``root``."""
    if not root or root == '/':
        return path
    return os.path.join(root, path.lstrip('/'))


# ---- validation ---------------------------------------------------------------------------------

def _decode_problems(value, kind, where):
    """Problems the library's strict decoder has with ``value`` read as ``kind`` (see _SCHEMA)."""
    if value is None:
        return []  # null: the zero value
    if isinstance(kind, list):
        if not isinstance(value, list):
            return ['%s must be a list' % where]
        problems = []
        for index, item in enumerate(value):
            problems.extend(_decode_problems(item, kind[0], '%s[%d]' % (where, index)))
        return problems
    if kind == 'str':
        return [] if isinstance(value, _SCALARS) else ['%s must be a string' % where]
    if kind in ('int', 'uint32'):
        number = _whole(value)
        if number is None:
            return ['%s must be a whole number' % where]
        if kind == 'uint32' and not 0 <= number < 2 ** 32:
            return ['%s must be a whole number from 0 to 4294967295' % where]
        return []
    if kind == 'bool':
        return [] if _bool(value) is not None else ['%s must be true or false' % where]
    if kind == 'annotations':
        if not isinstance(value, dict):
            return ['%s must be a mapping' % where]
        return ['%s: annotation %s must be a string' % (where, key)
                for key, item in value.items() if item is not None and not isinstance(item, _SCALARS)]
    if not isinstance(value, dict):
        return ['%s must be a mapping' % where]
    fields = _SCHEMA[kind]
    problems = ['%s: unknown field %r' % (where, key) for key in sorted(set(value) - set(fields), key=str)]
    for key in fields:
        if key in value:
            problems.extend(_decode_problems(value[key], fields[key], '%s.%s' % (where, key)))
    return problems


def _env_rules(env, where, problems, advice):
    for item in env or []:
        text = _text(item)
        if text.find('=') <= 0:
            problems.append('%s: env entry %r is not NAME=value' % (where, text))
        elif not _ENV_NAME.match(text):
            advice.append('%s: env entry %r does not start with a name a shell can use (letters, digits, "_")'
                          % (where, text))


def _path_check(path, what, where, check_paths, exists, problems, advice):
    """A host path: advice when it is relative; a problem when it is absolute and missing."""
    if not path.startswith('/'):
        advice.append('%s: %s %s is not an absolute path%s'
                      % (where, what, path, ' (it cannot be checked on the host)' if check_paths else ''))
    elif check_paths and not exists(path):
        problems.append('%s: %s %s does not exist on the host' % (where, what, path))


def _edits_rules(edits, where, problems, advice, check_paths, exists):
    """The library's container-edits rules (and the project's advice) for a decoded table."""
    if not isinstance(edits, dict):
        return
    _env_rules(edits.get('env'), where, problems, advice)
    for node in edits.get('deviceNodes') or []:
        if node is None:
            problems.append('%s: a deviceNode is empty (null)' % where)
            continue
        path = _text(node.get('path'))
        if not path:
            problems.append('%s: a deviceNode has no path' % where)
            continue
        if _text(node.get('type')) not in DEVICE_NODE_TYPES:
            problems.append('%s: deviceNode %s has type %r (b, c, u or p)' % (where, path, _text(node.get('type'))))
        for field in ('major', 'minor'):
            if (_whole(node.get(field)) or 0) < 0:
                problems.append('%s: deviceNode %s has a negative %s' % (where, path, field))
        permissions = _text(node.get('permissions'))
        if permissions and permissions != NO_PERMISSIONS and permissions.strip('rwm'):
            problems.append('%s: deviceNode %s permissions %r (letters r, w, m, or "none")'
                            % (where, path, permissions))
        if not path.startswith('/'):
            advice.append('%s: deviceNode path %s is not an absolute path in the container' % (where, path))
        host = _text(node.get('hostPath')) or path
        _path_check(host, 'device node', where, check_paths, exists, problems, advice)
    for mount in edits.get('mounts') or []:
        if mount is None:
            problems.append('%s: a mount is empty (null)' % where)
            continue
        source, target = _text(mount.get('hostPath')), _text(mount.get('containerPath'))
        if not source or not target:
            problems.append('%s: a mount needs hostPath and containerPath' % where)
            continue
        if not target.startswith('/'):
            advice.append('%s: mount containerPath %s is not an absolute path' % (where, target))
        _path_check(source, 'mount source', where, check_paths, exists, problems, advice)
    for hook in edits.get('hooks') or []:
        if hook is None:
            problems.append('%s: a hook is empty (null)' % where)
            continue
        name = _text(hook.get('hookName'))
        if name not in HOOK_NAMES:
            problems.append('%s: hook name %r is not one of %s' % (where, name, ', '.join(HOOK_NAMES)))
            continue
        path = _text(hook.get('path'))
        if not path:
            problems.append('%s: hook %s has no path' % (where, name))
            continue
        _env_rules(hook.get('env'), '%s: hook %s' % (where, name), problems, advice)
        _path_check(path, 'hook program', where, check_paths, exists, problems, advice)
    rdt = edits.get('intelRdt')
    if isinstance(rdt, dict):
        clos = _text(rdt.get('closID'))
        if clos != '/' and (len(clos) >= 4096 or clos in ('.', '..') or '/' in clos or '\n' in clos):
            problems.append('%s: intelRdt closID %r is not a file name' % (where, clos))
    hosts, names = set(), set()
    for net in edits.get('netDevices') or []:
        if net is None:
            problems.append('%s: a netDevice is empty (null)' % where)
            continue
        host, name = _text(net.get('hostInterfaceName')), _text(net.get('name'))
        if not host or not name:
            problems.append('%s: a netDevice needs hostInterfaceName and name' % where)
            continue
        if host in hosts or name in names:
            problems.append('%s: netDevice %s (%s) repeats a hostInterfaceName or name' % (where, name, host))
        hosts.add(host)
        names.add(name)


def _edits_empty(edits):
    """True when a device's containerEdits change nothing (the library refuses such a device)."""
    if not isinstance(edits, dict):
        return True
    return not any(edits.get(k) for k in ('env', 'deviceNodes', 'hooks', 'mounts', 'additionalGids', 'netDevices')) \
        and edits.get('intelRdt') is None


def _edits_needs(edits, where):
    """(version, what) for the fields of one containerEdits that need more than 0.3.0."""
    if not isinstance(edits, dict):
        return []
    needs = []
    for mount in edits.get('mounts') or []:
        if isinstance(mount, dict) and _text(mount.get('type')):
            needs.append(('0.4.0', '%s: mount type' % where))
            break
    for node in edits.get('deviceNodes') or []:
        if isinstance(node, dict) and _text(node.get('hostPath')):
            needs.append(('0.5.0', '%s: deviceNode hostPath' % where))
            break
    rdt = edits.get('intelRdt')
    if rdt is not None:
        needs.append(('0.7.0', '%s: intelRdt' % where))
        if isinstance(rdt, dict) and (rdt.get('schemata') is not None or _bool(rdt.get('enableMonitoring'))):
            needs.append(('1.1.0', '%s: intelRdt schemata and enableMonitoring' % where))
    if edits.get('additionalGids'):
        needs.append(('0.7.0', '%s: additionalGids' % where))
    if edits.get('netDevices'):
        needs.append(('1.1.0', '%s: netDevices' % where))
    return needs


def version_needs(spec):
    """(version, what) for every field of ``spec`` that needs a cdiVersion above the earliest,
    following the CDI library's own minimum-version rules."""
    if not isinstance(spec, dict):
        return []
    needs = []
    if spec.get('annotations'):
        needs.append(('0.6.0', 'annotations'))
    kind = _text(spec.get('kind'))
    if '/' in kind and '.' in kind.split('/', 1)[1]:
        needs.append(('0.6.0', 'a "." in the class of kind %s' % kind))
    for device in spec.get('devices') or []:
        if not isinstance(device, dict):
            continue
        name = _text(device.get('name'))
        if '0' <= name[:1] <= '9':
            needs.append(('0.5.0', 'device name %r, which starts with a digit' % name))
        if device.get('annotations'):
            needs.append(('0.6.0', 'device %s: annotations' % name))
        needs.extend(_edits_needs(device.get('containerEdits'), 'device %s' % name))
    needs.extend(_edits_needs(spec.get('containerEdits'), 'containerEdits'))
    return needs


def minimum_version(spec):
    """The lowest cdiVersion whose fields ``spec`` uses (what a spec should declare)."""
    return max([EARLIEST_VERSION] + [v for v, _what in version_needs(spec)], key=_version_tuple)


def _kind_rules(kind, problems, advice):
    vendor, sep, cls = kind.partition('/')
    if not sep or not vendor or not cls:
        problems.append('kind %r must be vendor/class, e.g. nvidia.com/gpu' % kind)
        return
    for what, name in (('vendor', vendor), ('class', cls)):
        if not _VENDOR_OR_CLASS.match(name):
            problems.append('%s %r must start with a letter, end with a letter or digit and use only letters, '
                            'digits, "_", "-" and "." in between' % (what, name))
    if _VENDOR_OR_CLASS.match(vendor) and (len(vendor) > 253 or not _DNS_SUBDOMAIN.match(vendor)):
        advice.append('vendor %r is not a DNS subdomain of at most 253 characters (lower case letters, digits, "-" '
                      'and "."): the CDI spec asks for a domain the vendor controls, e.g. example.com' % vendor)
    if _VENDOR_OR_CLASS.match(cls) and len(cls) > 63:
        advice.append('class %r is longer than 63 characters' % cls)


def check_spec(spec, check_paths=False, exists=os.path.exists):
    """(problems, advice) for a CDI spec (a dict read from YAML or JSON).

    ``problems`` is empty when the reference CDI library accepts the spec (and, with
    ``check_paths``, every absolute host path it references exists); ``advice`` lists what the
    project asks for beyond the library's rules (absolute container paths, a DNS vendor, env
    names a shell can use, no higher cdiVersion than the fields need). Advice never makes a
    spec invalid."""
    if not isinstance(spec, dict):
        return ['the spec is not a mapping (YAML or JSON object)'], []
    problems = _decode_problems(spec, 'spec', 'the spec')
    if problems:
        return problems, []  # the library stops at the decoder
    advice = []
    declared = _text(spec.get('cdiVersion'))
    version = declared[1:] if declared.startswith('v') else declared
    needed = minimum_version(spec)
    if version not in CDI_VERSIONS:
        problems.append('cdiVersion %r is not one of %s' % (declared, ', '.join(CDI_VERSIONS)))
    elif _version_tuple(version) < _version_tuple(needed):
        whats = [what for v, what in version_needs(spec) if _version_tuple(version) < _version_tuple(v)]
        problems.append('cdiVersion %s is too old: at least %s is needed%s' % (
            declared, needed, (' (for %s)' % '; '.join(whats)) if whats else ''))
    elif _version_tuple(version) > _version_tuple(needed):
        advice.append('cdiVersion %s is higher than the spec\'s fields need (%s): CDI consumers whose library '
                      'does not know %s refuse it, %s would let them read it' % (declared, needed, version, needed))
    _kind_rules(_text(spec.get('kind')), problems, advice)
    _edits_rules(spec.get('containerEdits'), 'containerEdits', problems, advice, check_paths, exists)
    seen = set()
    devices = spec.get('devices') or []
    for device in devices:
        device = device or {}
        name = _text(device.get('name'))
        if not _DEVICE.match(name):
            problems.append('device name %r must be letters, digits, "_", "-", "." or ":" with a letter or digit '
                            'at both ends' % name)
        if name in seen:
            problems.append('device %s is defined twice' % name)
        seen.add(name)
        edits = device.get('containerEdits')
        if _edits_empty(edits):
            problems.append('device %s has no containerEdits (a device must change something)' % name)
        _edits_rules(edits, 'device %s' % name, problems, advice, check_paths, exists)
    if not devices:
        problems.append('the spec has no devices (at least one is needed)')
    return problems, advice


def validate_spec(spec, check_paths=False, exists=os.path.exists):
    """Problems with a CDI spec (a list of sentences; empty when valid): check_spec's first half."""
    return check_spec(spec, check_paths, exists)[0]


# A driver version: three-digit major (390, 470, 535, 580, ...), then one or two parts. Other
# libraries a spec may mount carry their own versions (libnvidia-egl-wayland.so.1.1.13).
_DRIVER_VERSION = r'[1-9][0-9]{2}\.[0-9]+(?:\.[0-9]+)?'
_LIB_WITH_VERSION = re.compile(r'(?:^|/)lib[^/]*\.so\.(%s)$' % _DRIVER_VERSION)
_FIRMWARE_WITH_VERSION = re.compile(r'/firmware/nvidia/(%s)/' % _DRIVER_VERSION)


def driver_version_of_path(path):
    """The driver version a host path names (``.../libcuda.so.580.159.04``,
    ``.../firmware/nvidia/580.159.04/gsp_ga10x.bin``), or None."""
    path = str(path or '')
    match = _LIB_WITH_VERSION.search(path) or _FIRMWARE_WITH_VERSION.search(path)
    return match.group(1) if match else None


def _host_paths(spec):
    edits = [spec.get('containerEdits')] + [d.get('containerEdits') for d in spec.get('devices') or []
                                            if isinstance(d, dict)]
    for edit in edits:
        if not isinstance(edit, dict):
            continue
        for mount in edit.get('mounts') or []:
            if isinstance(mount, dict):
                yield mount.get('hostPath')


def spec_driver_versions(spec):
    """Sorted driver versions named by the driver files a spec mounts (libraries, firmware),
    whoever generated it; empty when it mounts none."""
    if not isinstance(spec, dict):
        return []
    found = set(v for v in (driver_version_of_path(p) for p in _host_paths(spec)) if v)
    return sorted(found, key=_version_tuple)


def spec_driver_version(spec):
    """The driver version a spec was made for: the one its driver files name, else the annotation
    an earlier cdi_spec wrote; None when unknown or when the files name several versions."""
    versions = spec_driver_versions(spec)
    if versions:
        return versions[0] if len(versions) == 1 else None
    annotations = spec.get('annotations') if isinstance(spec, dict) else None
    annotation = annotations.get(LEGACY_ANNOTATION_DRIVER) if isinstance(annotations, dict) else None
    return str(annotation) if annotation else None


def stale_reason(spec, driver_version):
    """Why ``spec`` does not fit the running ``driver_version`` (a sentence), or None when it
    fits or either side is unknown."""
    if not driver_version or not isinstance(spec, dict):
        return None
    versions = spec_driver_versions(spec)
    if len(versions) > 1:
        return ('the spec mounts files of drivers %s, the running driver is %s'
                % (', '.join(versions), driver_version))
    made_for = spec_driver_version(spec)
    if made_for and made_for != driver_version:
        return 'the spec was made for driver %s, the running driver is %s' % (made_for, driver_version)
    return None


# ---- discovery ------------------------------------------------------------------------------

def elf_soname(path):
    """DT_SONAME of a 64-bit little-endian ELF shared object, or None."""
    try:
        with open(path, 'rb') as handle:
            ident = handle.read(64)
            if len(ident) < 64 or ident[:4] != b'\x7fELF' or ident[4] != 2 or ident[5] != 1:
                return None
            phoff, = struct.unpack_from('<Q', ident, 32)
            phentsize, phnum = struct.unpack_from('<HH', ident, 54)
            handle.seek(phoff)
            headers = handle.read(phentsize * phnum)
            dynamic, loads = None, []
            for i in range(phnum):
                fields = struct.unpack_from('<IIQQQQ', headers, i * phentsize)
                p_type, p_offset, p_vaddr, p_filesz = fields[0], fields[2], fields[3], fields[5]
                if p_type == 2:
                    dynamic = (p_offset, p_filesz)
                elif p_type == 1:
                    loads.append((p_vaddr, p_offset, p_filesz))
            if dynamic is None:
                return None
            handle.seek(dynamic[0])
            data = handle.read(dynamic[1])
            strtab, soname = None, None
            for off in range(0, len(data) - 15, 16):
                tag, val = struct.unpack_from('<qQ', data, off)
                if tag == 0:
                    break
                if tag == 5:
                    strtab = val
                elif tag == 14:
                    soname = val
            if strtab is None or soname is None:
                return None
            for vaddr, offset, size in loads:
                if vaddr <= strtab < vaddr + size:
                    handle.seek(offset + (strtab - vaddr) + soname)
                    raw = handle.read(256).split(b'\0', 1)[0]
                    return raw.decode('ascii', 'replace') or None
    except (IOError, OSError, struct.error):
        return None
    return None


def soname_of(path, names_in_dir):
    """SONAME of a driver library: from the ELF header, else from the symlink that points at
    it (libcuda.so.1 -> libcuda.so.580.95.05), else its own name."""
    soname = elf_soname(path)
    if soname:
        return soname
    base = os.path.basename(path)
    stem = base.split('.so.', 1)[0] + '.so.'
    folder = os.path.dirname(path)
    candidates = []
    for name in names_in_dir:
        if name != base and name.startswith(stem):
            full = os.path.join(folder, name)
            if os.path.islink(full) and os.path.realpath(full) == os.path.realpath(path):
                candidates.append(name)
    if candidates:
        return sorted(candidates, key=len)[0]
    return base


def _gpu_minors(dev_root):
    folder = host_path(dev_root, '/dev')
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(int(n[6:]) for n in names if re.match(r'^nvidia\d+$', n))


def driver_version_from_host(driver_root, lib_dirs):
    """Driver version without nvidia-smi: /proc/driver/nvidia/version, else libcuda's file name."""
    try:
        with open('/proc/driver/nvidia/version') as handle:
            match = re.search(r'Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)', handle.read())
            if match and (not driver_root or driver_root == '/'):
                return match.group(1)
    except (IOError, OSError):
        pass
    for folder in lib_dirs:
        try:
            for name in sorted(os.listdir(host_path(driver_root, folder))):
                match = re.match(r'^libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$', name)
                if match:
                    return match.group(1)
        except OSError:
            continue
    return None


def _cap_minor(path, default=None):
    """DeviceFileMinor of a capability file in /proc/driver/nvidia/capabilities."""
    try:
        with open(path) as handle:
            match = re.search(r'^DeviceFileMinor:\s*(\d+)', handle.read(), re.M)
    except (IOError, OSError):
        return default
    return int(match.group(1)) if match else default


def _cap_node(minor):
    return '/dev/nvidia-caps/nvidia-cap%d' % minor


def mig_access_caps(gpu_minor, proc_root=None):
    """[(capability, minor)] of the GPU and compute instances that exist on the GPU with
    ``gpu_minor`` (none when MIG mode is off), from /proc/driver/nvidia/capabilities."""
    base = host_path(proc_root or PROC_ROOT, '%s/gpu%d/mig' % (PROC_CAPS, gpu_minor))
    found = []
    try:
        instances = [n for n in os.listdir(base) if re.match(r'^gi\d+$', n)]
    except OSError:
        return found
    for gi in sorted(instances, key=lambda n: int(n[2:])):
        files = [(gi, os.path.join(base, gi, 'access'))]
        try:
            cis = sorted((n for n in os.listdir(os.path.join(base, gi)) if re.match(r'^ci\d+$', n)),
                         key=lambda n: int(n[2:]))
        except OSError:
            cis = []
        files += [('%s/%s' % (gi, ci), os.path.join(base, gi, ci, 'access')) for ci in cis]
        for name, path in files:
            minor = _cap_minor(path)
            if minor is not None:
                found.append(('gpu%d/mig/%s/access' % (gpu_minor, name), minor))
    return found


def discover(driver_root='/', dev_root='/', library_dirs=None, driver_version=None, gpus=None, ld_cache_dirs=None,
             caps=('mig-access',), proc_root=None):
    """Find what the native spec needs. ``gpus``: list of dicts with index, uuid, minor_number
    (from nvidia-smi); without it, GPUs are the /dev/nvidiaN nodes, named by minor number.

    ``caps`` (see CAPS): ``mig-access`` gives each GPU's devices the access capabilities of
    the MIG instances on it; ``mig-monitor`` and ``mig-config`` add those host-wide
    capabilities to every device. A selected capability without its /dev/nvidia-caps node is
    listed in ``cap_problems`` (monitor, config) or ``warnings`` (access)."""
    lib_dirs = []
    for folder in list(library_dirs or []) + list(ld_cache_dirs or []) + LIB_DIRS:
        if folder not in lib_dirs:
            lib_dirs.append(folder)
    if not driver_version:
        driver_version = driver_version_from_host(driver_root, lib_dirs)
    found = {'driver_version': driver_version, 'gpus': [], 'control_nodes': [], 'caps': [], 'libraries': [],
             'binaries': [], 'firmware': [], 'ipc': [], 'lib_dirs': lib_dirs, 'problems': [], 'cap_problems': [],
             'warnings': []}
    caps = list(caps or [])
    unknown = sorted(set(caps) - set(CAPS))
    if unknown:
        raise ValueError('unknown capability %s (known: %s)' % (', '.join(unknown), ', '.join(CAPS)))
    if gpus is None:
        gpus = [{'index': m, 'uuid': None, 'minor_number': m} for m in _gpu_minors(dev_root)]
    for gpu in gpus:
        if gpu.get('minor_number') is None:
            found['problems'].append('GPU %s has no minor number' % gpu.get('index'))
            continue
        node = '/dev/nvidia%d' % gpu['minor_number']
        if not os.path.exists(host_path(dev_root, node)):
            found['problems'].append('device node %s of GPU %s does not exist under %s'
                                     % (node, gpu.get('index'), dev_root))
            continue
        gpu_caps = []
        if 'mig-access' in caps:
            for name, minor in mig_access_caps(gpu['minor_number'], proc_root):
                if os.path.exists(host_path(dev_root, _cap_node(minor))):
                    gpu_caps.append(_cap_node(minor))
                else:
                    found['warnings'].append(
                        'MIG capability %s of GPU %s has no device node %s: create it with "nvidia-modprobe -f '
                        '%s/%s" and run again' % (name, gpu.get('index'), _cap_node(minor), PROC_CAPS, name))
        found['gpus'].append(dict(gpu, node=node, caps=gpu_caps))
    for node in CONTROL_NODES:
        if os.path.exists(host_path(dev_root, node)):
            found['control_nodes'].append(node)
    for cap in ('mig-monitor', 'mig-config'):
        if cap not in caps:
            continue
        proc_file = '%s/mig/%s' % (PROC_CAPS, cap[4:])
        minor = _cap_minor(host_path(proc_root or PROC_ROOT, proc_file), CAP_DEFAULT_MINORS[cap])
        if os.path.exists(host_path(dev_root, _cap_node(minor))):
            found['caps'].append(_cap_node(minor))
        else:
            found['cap_problems'].append('%s is in caps but its device node %s does not exist under %s: create '
                                         'it with "nvidia-modprobe -f %s" or leave %s out of caps'
                                         % (cap, _cap_node(minor), dev_root, proc_file, cap))
    if driver_version:
        suffix = '.so.' + driver_version
        seen_real, seen_soname = set(), set()
        for folder in lib_dirs:
            real_folder = host_path(driver_root, folder)
            try:
                names = sorted(os.listdir(real_folder))
            except OSError:
                continue
            for name in names:
                if not name.endswith(suffix) or not name.startswith('lib'):
                    continue
                full = os.path.join(real_folder, name)
                real = os.path.realpath(full)
                if real in seen_real or not os.path.isfile(real):
                    continue
                soname = soname_of(full, names)
                if soname in seen_soname:
                    continue
                seen_real.add(real)
                seen_soname.add(soname)
                found['libraries'].append({'host_path': real, 'soname': soname})
        for folder in FIRMWARE_DIRS:
            real_folder = host_path(driver_root, os.path.join(folder, driver_version))
            if os.path.isdir(real_folder):
                for name in sorted(os.listdir(real_folder)):
                    if name.startswith('gsp') and name.endswith('.bin'):
                        found['firmware'].append({'host_path': os.path.join(real_folder, name),
                                                  'container_path': '/lib/firmware/nvidia/%s/%s'
                                                                    % (driver_version, name)})
                break
    for binary in BINARIES:
        for folder in BIN_DIRS:
            full = host_path(driver_root, os.path.join(folder, binary))
            if os.path.isfile(full) and os.access(full, os.X_OK):
                found['binaries'].append({'host_path': os.path.realpath(full), 'name': binary})
                break
    for path in IPC_PATHS:
        full = host_path(driver_root, path)
        if os.path.exists(full):
            found['ipc'].append({'host_path': full, 'container_path': path})
    return found


def _node(path, dev_root):
    node = {'path': path}
    if dev_root and dev_root != '/':
        node['hostPath'] = host_path(dev_root, path)
    return node


def build_spec(found, vendor='nvidia.com', cls='gpu', strategies=('index', 'uuid'), dev_root='/'):
    """The native spec (a dict) from ``discover``'s result."""
    mounts = []
    for lib in found['libraries']:
        mounts.append({'hostPath': lib['host_path'], 'containerPath': '%s/%s' % (CONTAINER_LIB_DIR, lib['soname']),
                       'options': list(MOUNT_OPTIONS)})
    for binary in found['binaries']:
        mounts.append({'hostPath': binary['host_path'], 'containerPath': '%s/%s' % (CONTAINER_BIN_DIR, binary['name']),
                       'options': list(MOUNT_OPTIONS)})
    for firmware in found['firmware']:
        mounts.append({'hostPath': firmware['host_path'], 'containerPath': firmware['container_path'],
                       'options': list(MOUNT_OPTIONS)})
    for ipc in found['ipc']:
        mounts.append({'hostPath': ipc['host_path'], 'containerPath': ipc['container_path'],
                       'options': ['ro', 'nosuid', 'nodev', 'bind', 'noexec']})
    devices = []
    for gpu in found['gpus']:
        edits = {'deviceNodes': [_node(n, dev_root) for n in [gpu['node']] + gpu.get('caps', [])]}
        names = []
        if 'index' in strategies and gpu.get('index') is not None:
            names.append(str(gpu['index']))
        if 'uuid' in strategies and gpu.get('uuid'):
            names.append(gpu['uuid'])
        for name in names:
            devices.append({'name': name, 'containerEdits': {'deviceNodes': [dict(n) for n in edits['deviceNodes']]}})
    if found['gpus']:
        devices.append({'name': 'all', 'containerEdits': {
            'deviceNodes': [_node(n, dev_root) for gpu in found['gpus'] for n in [gpu['node']] + gpu.get('caps', [])]}})
    spec = {
        'cdiVersion': EARLIEST_VERSION,
        'kind': '%s/%s' % (vendor, cls),
        'devices': devices,
        'containerEdits': {
            'env': ['NVIDIA_VISIBLE_DEVICES=void'],
            'deviceNodes': [_node(n, dev_root) for n in found['control_nodes'] + found['caps']],
            'mounts': mounts,
        },
    }
    spec['cdiVersion'] = minimum_version(spec)
    return spec


def device_names(spec):
    kind = spec.get('kind', '') if isinstance(spec, dict) else ''
    return ['%s=%s' % (kind, d.get('name')) for d in (spec.get('devices') or []) if isinstance(d, dict)] \
        if isinstance(spec, dict) else []
