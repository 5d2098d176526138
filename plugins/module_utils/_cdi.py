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

_VENDOR = re.compile(r'^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$')
_CLASS = re.compile(r'^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$')
_DEVICE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$')
_ENV = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')


def _version_tuple(version):
    try:
        return tuple(int(p) for p in str(version).split('.'))
    except ValueError:
        return (0,)


def host_path(root, path):
    """``path`` as seen on the host when the driver (or /dev) lives under ``root``."""
    if not root or root == '/':
        return path
    return os.path.join(root, path.lstrip('/'))


# ---- validation ---------------------------------------------------------------------------------

def _validate_edits(edits, where, problems, check_paths, exists):
    if not isinstance(edits, dict):
        problems.append('%s: containerEdits must be a mapping' % where)
        return
    known = {'env', 'deviceNodes', 'mounts', 'hooks', 'intelRdt', 'additionalGids', 'netDevices'}
    for key in sorted(set(edits) - known):
        problems.append('%s: unknown containerEdits field %r' % (where, key))
    for item in edits.get('env') or []:
        if not isinstance(item, str) or not _ENV.match(item):
            problems.append('%s: env entry %r is not NAME=value' % (where, item))
    for node in edits.get('deviceNodes') or []:
        if not isinstance(node, dict) or not node.get('path'):
            problems.append('%s: a deviceNode has no path' % where)
            continue
        if not str(node['path']).startswith('/'):
            problems.append('%s: deviceNode path %s is not absolute' % (where, node['path']))
        if node.get('type') not in (None, 'b', 'c', 'u', 'p'):
            problems.append('%s: deviceNode %s has type %r (b, c, u or p)' % (where, node['path'], node.get('type')))
        for field in ('major', 'minor'):
            if field in node and not isinstance(node[field], int):
                problems.append('%s: deviceNode %s %s must be a number' % (where, node['path'], field))
        if node.get('permissions') and not re.match(r'^[rwm]+$', str(node['permissions'])):
            problems.append('%s: deviceNode %s permissions %r (letters r, w, m)'
                            % (where, node['path'], node['permissions']))
        if check_paths:
            path = node.get('hostPath') or node['path']
            if not exists(path):
                problems.append('%s: device node %s does not exist on the host' % (where, path))
    for mount in edits.get('mounts') or []:
        if not isinstance(mount, dict) or not mount.get('hostPath') or not mount.get('containerPath'):
            problems.append('%s: a mount needs hostPath and containerPath' % where)
            continue
        if not str(mount['containerPath']).startswith('/'):
            problems.append('%s: mount containerPath %s is not absolute' % (where, mount['containerPath']))
        if not isinstance(mount.get('options', []), list):
            problems.append('%s: mount %s options must be a list' % (where, mount['containerPath']))
        if check_paths and not exists(mount['hostPath']):
            problems.append('%s: mount source %s does not exist on the host' % (where, mount['hostPath']))
    for hook in edits.get('hooks') or []:
        if not isinstance(hook, dict) or hook.get('hookName') not in HOOK_NAMES:
            problems.append('%s: hook %r needs hookName, one of %s' % (where, hook, ', '.join(HOOK_NAMES)))
            continue
        if not str(hook.get('path', '')).startswith('/'):
            problems.append('%s: hook path %r must be absolute' % (where, hook.get('path')))
        elif check_paths and not exists(hook['path']):
            problems.append('%s: hook program %s does not exist on the host' % (where, hook['path']))


def _edits_needs(edits, where):
    """(version, what) for the fields of one containerEdits that need more than 0.3.0."""
    if not isinstance(edits, dict):
        return []
    needs = []
    for mount in edits.get('mounts') or []:
        if isinstance(mount, dict) and mount.get('type'):
            needs.append(('0.4.0', '%s: mount type' % where))
            break
    for node in edits.get('deviceNodes') or []:
        if isinstance(node, dict) and node.get('hostPath'):
            needs.append(('0.5.0', '%s: deviceNode hostPath' % where))
            break
    rdt = edits.get('intelRdt')
    if rdt is not None:
        needs.append(('0.7.0', '%s: intelRdt' % where))
        if isinstance(rdt, dict) and (rdt.get('schemata') is not None or rdt.get('enableMonitoring')):
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
    kind = str(spec.get('kind', ''))
    if '/' in kind and '.' in kind.split('/', 1)[1]:
        needs.append(('0.6.0', 'a "." in the class of kind %s' % kind))
    for device in spec.get('devices') or []:
        if not isinstance(device, dict):
            continue
        name = str(device.get('name', ''))
        if name[:1].isdigit():
            needs.append(('0.5.0', 'device name %r, which starts with a digit' % name))
        if device.get('annotations'):
            needs.append(('0.6.0', 'device %s: annotations' % name))
        needs.extend(_edits_needs(device.get('containerEdits'), 'device %s' % name))
    needs.extend(_edits_needs(spec.get('containerEdits'), 'containerEdits'))
    return needs


def minimum_version(spec):
    """The lowest cdiVersion whose fields ``spec`` uses (what a spec should declare)."""
    return max([EARLIEST_VERSION] + [v for v, _what in version_needs(spec)], key=_version_tuple)


def validate_spec(spec, check_paths=False, exists=os.path.exists):
    """Problems with a CDI spec (a list of sentences; empty when valid)."""
    problems = []
    if not isinstance(spec, dict):
        return ['the spec is not a mapping (YAML or JSON object)']
    known = {'cdiVersion', 'kind', 'devices', 'containerEdits', 'annotations'}
    for key in sorted(set(spec) - known):
        problems.append('unknown top-level field %r' % key)
    version = str(spec.get('cdiVersion', ''))
    if version not in CDI_VERSIONS:
        problems.append('cdiVersion %r is not one of %s' % (spec.get('cdiVersion'), ', '.join(CDI_VERSIONS)))
    kind = str(spec.get('kind', ''))
    if kind.count('/') != 1:
        problems.append('kind %r must be vendor/class, e.g. nvidia.com/gpu' % kind)
    else:
        vendor, cls = kind.split('/')
        if len(vendor) > 253 or not _VENDOR.match(vendor):
            problems.append('vendor %r must be a DNS subdomain starting with a letter (at most 253 characters)'
                            % vendor)
        if len(cls) > 63 or not _CLASS.match(cls):
            problems.append('class %r must start with a letter, end with a letter or digit and use only '
                            'letters, digits, "_", "-" and "." (at most 63 characters)' % cls)
    if 'annotations' in spec and not isinstance(spec['annotations'], dict):
        problems.append('annotations must be a mapping')
    if version in CDI_VERSIONS:
        for needed, what in version_needs(spec):
            if _version_tuple(version) < _version_tuple(needed):
                problems.append('cdiVersion %s is too old for %s (needs %s or later)' % (version, what, needed))
    devices = spec.get('devices')
    if not isinstance(devices, list) or not devices:
        problems.append('the spec has no devices (at least one is needed)')
        devices = []
    seen = set()
    for device in devices:
        if not isinstance(device, dict):
            problems.append('a device is not a mapping')
            continue
        name = str(device.get('name', ''))
        if not _DEVICE.match(name):
            problems.append('device name %r must be letters, digits, "_", "-", "." or ":" with a letter or digit '
                            'at both ends' % name)
        if name in seen:
            problems.append('device %s is defined twice' % name)
        seen.add(name)
        if 'containerEdits' not in device:
            problems.append('device %s has no containerEdits' % name)
        else:
            _validate_edits(device['containerEdits'], 'device %s' % name, problems, check_paths, exists)
    if 'containerEdits' in spec:
        _validate_edits(spec['containerEdits'], 'containerEdits', problems, check_paths, exists)
    return problems


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
