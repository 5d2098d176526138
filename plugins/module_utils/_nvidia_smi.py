# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``nvidia-smi -q -x`` once and turn its output into facts; read the default
``nvidia-smi`` table that pods and diagnose capture. The collection's one nvidia-smi parser.

Pure functions (``classify``, ``parse_xml``, ``facts_from_output``, ``parse_table``) take
text and return dicts, so that the unit tests feed them real captures and derived fixtures.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import xml.etree.ElementTree as ET

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _proc

# Where nvidia-smi lives when it is not on PATH (Ubuntu/Debian, the GPU Operator's
# driver container and hosts like the H100 capture, NixOS, vendor bundles).
SEARCH_DIRS = ['/usr/bin', '/usr/local/nvidia/bin', '/run/current-system/sw/bin', '/opt/nvidia/bin']

STATUSES = ('ok', 'not_installed', 'no_devices', 'driver_not_loaded', 'driver_library_mismatch', 'error')

# Values nvidia-smi prints for "nothing to report". They become None, never a string.
_NULLS = frozenset(['n/a', '[n/a]', 'not available', 'not supported', '[not supported]',
                    'unknown error', '[unknown error]', 'none', ''])

# Compute capability by architecture, only where one architecture has exactly one value
# (the XML does not carry it; `nvidia-smi --query-gpu=compute_cap` would be a second call).
_CC_BY_ARCH = {'turing': '7.5', 'ada lovelace': '8.9', 'hopper': '9.0'}

_MESSAGES = {
    'not_installed': 'nvidia-smi was not found (looked on PATH and in %s): install the NVIDIA driver '
                     'utilities (e.g. nvidia-utils-<branch>-server on Ubuntu, nvidia-smi on Debian) '
                     'or set nvidia_smi_path' % ', '.join(SEARCH_DIRS),
    'driver_not_loaded': "nvidia-smi couldn't communicate with the NVIDIA driver: the kernel module is not "
                         'loaded. Check that the driver is installed for the running kernel '
                         '(dkms status; linux-headers-$(uname -r)), that nouveau is blacklisted, '
                         'then reboot or run modprobe nvidia',
    'driver_library_mismatch': 'Driver/library version mismatch: the NVIDIA user-space libraries were '
                               'upgraded but the old kernel module is still loaded. Reboot the host (or '
                               'unload and reload the nvidia kernel modules) after a driver upgrade',
    'no_devices': 'No NVIDIA GPU was found by the driver: check that the GPU is visible on the PCI bus '
                  '(lspci -d 10de:), that it is passed through to this VM, and dmesg for NVRM errors',
}

_KNOWN_FAILURES = (
    ('driver_library_mismatch', re.compile(r'driver/library version mismatch', re.I)),
    ('driver_not_loaded', re.compile(r"couldn'?t communicate with the nvidia driver", re.I)),
    ('no_devices', re.compile(r'no devices were found', re.I)),
)

# The default table (plain ``nvidia-smi``): its header line and one row per GPU.
_TABLE_HEADER = re.compile(
    r'NVIDIA-SMI\s+(?P<smi>[0-9.]+)\s+Driver Version:\s*(?P<driver>[0-9.]+)'
    r'\s+CUDA Version:\s*(?P<cuda>[0-9.]+|N/A)')
_TABLE_DRIVER = re.compile(r'Driver Version:\s*([0-9]+\.[0-9]+(?:\.[0-9]+)?)')
_TABLE_GPU_ROW = re.compile(r'^\|\s+(?P<index>\d+)\s+(?P<name>.+?)\s{2,}(On|Off)\s+\|')


def empty_facts(status, message):
    return {
        'status': status,
        'message': message,
        'nvidia_smi_path': None,
        'driver_version': None,
        'driver_branch': None,
        'cuda_version': None,
        'gpu_count': 0,
        'gpus': [],
    }


def find_nvidia_smi(get_bin_path, explicit=None):
    """Return the path of nvidia-smi or None. ``get_bin_path`` is AnsibleModule.get_bin_path."""
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    return get_bin_path('nvidia-smi', required=False, opt_dirs=SEARCH_DIRS)


def run_nvidia_smi(path, timeout):
    """Run ``nvidia-smi -q -x`` once. Returns (rc, stdout, stderr); rc None means timeout."""
    return _proc.run([path, '-q', '-x'], timeout)


def _text(node, path):
    """Stripped text of a child element, None when missing or a 'nothing' value."""
    if node is None:
        return None
    child = node.find(path)
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    if value.lower() in _NULLS:
        return None
    return value


def _int(value):
    if value is None:
        return None
    match = re.match(r'^\s*(-?\d+)', value)
    return int(match.group(1)) if match else None


def _enabled(value):
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ('enabled', 'yes', 'on', 'true'):
        return True
    if lowered in ('disabled', 'no', 'off', 'false'):
        return False
    return None


def _mig_device(node):
    shared = node.find('device_attributes/shared')
    return {
        'index': _int(_text(node, 'index')),
        'uuid': _text(node, 'uuid'),
        'gpu_instance_id': _int(_text(node, 'gpu_instance_id')),
        'compute_instance_id': _int(_text(node, 'compute_instance_id')),
        'memory_total_mib': _int(_text(node, 'fb_memory_usage/total')),
        'multiprocessor_count': _int(_text(shared, 'multiprocessor_count')),
    }


def _gpu(node, index):
    arch = _text(node, 'product_architecture')
    compute_cap = _text(node, 'compute_cap') or _text(node, 'cuda_compute_capability')
    if compute_cap is None and arch:
        compute_cap = _CC_BY_ARCH.get(arch.lower())
    mig_parent = node.find('mig_devices')
    mig_devices = [_mig_device(m) for m in mig_parent.findall('mig_device')] if mig_parent is not None else []
    return {
        'index': index,
        'uuid': _text(node, 'uuid'),
        'name': _text(node, 'product_name'),
        'architecture': arch,
        'pci_bus_id': _text(node, 'pci/pci_bus_id') or node.get('id'),
        'minor_number': _int(_text(node, 'minor_number')),
        'memory_total_mib': _int(_text(node, 'fb_memory_usage/total')),
        'persistence_mode': _enabled(_text(node, 'persistence_mode')),
        'mig_mode': {
            'current': _enabled(_text(node, 'mig_mode/current_mig')),
            'pending': _enabled(_text(node, 'mig_mode/pending_mig')),
        },
        'mig_devices': mig_devices,
        'compute_capability': compute_cap,
    }


def parse_xml(text):
    """Parse ``nvidia-smi -q -x`` output. Returns facts (status ok/no_devices/error)."""
    # The DOCTYPE names an external DTD; ElementTree never fetches it, but drop it anyway.
    cleaned = re.sub(r'<!DOCTYPE[^>]*>', '', text, count=1)
    try:
        root = ET.fromstring(cleaned.encode('utf-8'))
    except ET.ParseError as exc:
        first = text.strip().splitlines()[0][:200] if text.strip() else '(empty)'
        return empty_facts('error', 'nvidia-smi -q -x printed output that is not valid XML (%s); '
                                    'first line: %s. Run it by hand to see what is wrong' % (exc, first))
    if root.tag != 'nvidia_smi_log':
        return empty_facts('error', 'nvidia-smi -q -x printed XML whose root is <%s>, not <nvidia_smi_log>: '
                                    'this is not nvidia-smi output; check nvidia_smi_path' % root.tag)
    facts = empty_facts('ok', '')
    facts['driver_version'] = _text(root, 'driver_version')
    if facts['driver_version']:
        facts['driver_branch'] = facts['driver_version'].split('.')[0]
    facts['cuda_version'] = _text(root, 'cuda_version')
    facts['gpus'] = [_gpu(node, i) for i, node in enumerate(root.findall('gpu'))]
    facts['gpu_count'] = len(facts['gpus'])
    if not facts['gpus']:
        facts['status'] = 'no_devices'
        facts['message'] = _MESSAGES['no_devices']
    else:
        facts['message'] = '%d GPU(s), driver %s, CUDA %s' % (
            facts['gpu_count'], facts['driver_version'], facts['cuda_version'])
    return facts


def parse_table(text):
    """Driver, CUDA version and GPU names from the default ``nvidia-smi`` table.

    The header line gives the driver and CUDA versions (CUDA ``N/A``: None); without one, a
    ``Driver Version:`` line anywhere in the text gives the driver. Unknown values are None.
    """
    result = {'driver_version': None, 'cuda_version': None, 'gpus': []}
    for line in (text or '').splitlines():
        match = _TABLE_HEADER.search(line)
        if match:
            result['driver_version'] = match.group('driver')
            cuda = match.group('cuda')
            result['cuda_version'] = None if cuda == 'N/A' else cuda
            continue
        match = _TABLE_GPU_ROW.match(line)
        if match:
            result['gpus'].append(match.group('name').strip())
    if result['driver_version'] is None:
        match = _TABLE_DRIVER.search(text or '')
        result['driver_version'] = match.group(1) if match else None
    return result


def classify_failure(rc, stdout, stderr):
    """Facts for a run that did not produce XML (or exited non-zero)."""
    text = '%s\n%s' % (stdout, stderr)
    for status, pattern in _KNOWN_FAILURES:
        if pattern.search(text):
            return empty_facts(status, _MESSAGES[status])
    detail = ' '.join(text.split())[:300] or '(no output)'
    return empty_facts('error', 'nvidia-smi -q -x failed with exit code %s: %s. Run it by hand as root '
                                'to see the full error' % (rc, detail))


def facts_from_output(rc, stdout, stderr):
    """Facts from one run of nvidia-smi -q -x (rc None: it timed out)."""
    if rc is None:
        return empty_facts('error', 'nvidia-smi -q -x timed out: the driver may be hung (check dmesg for '
                                    'Xid errors) or persistence mode is off on a busy host; raise the timeout '
                                    'or enable nvidia-persistenced')
    if '<nvidia_smi_log' in stdout:
        facts = parse_xml(stdout)
        if rc != 0 and facts['status'] == 'ok':
            facts['message'] += ' (nvidia-smi exited with code %s)' % rc
        return facts
    return classify_failure(rc, stdout, stderr)


def gather(get_bin_path, explicit_path=None, timeout=30):
    """Find and run nvidia-smi once; return the facts dict."""
    path = find_nvidia_smi(get_bin_path, explicit_path)
    if path is None:
        if explicit_path:
            return empty_facts('not_installed', 'nvidia_smi_path %s does not exist or is not executable: '
                                                'fix the path or leave it unset to search PATH and %s'
                               % (explicit_path, ', '.join(SEARCH_DIRS)))
        return empty_facts('not_installed', _MESSAGES['not_installed'])
    rc, out, err = run_nvidia_smi(path, timeout)
    facts = facts_from_output(rc, out, err)
    facts['nvidia_smi_path'] = path
    return facts
