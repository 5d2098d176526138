# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One owner for the CDI devices of the NVIDIA GPUs.

CDI consumers read every spec in ``/etc/cdi`` and ``/var/run/cdi``. Two specs that define
the same device (same kind, same name) are a conflict: within one folder the CDI library
refuses the device, across the folders the one in ``/var/run/cdi`` silently wins. Toolkit
1.18+ ships ``nvidia-cdi-refresh.path``/``.service``, which write ``/var/run/cdi/nvidia.yaml``;
the collection writes ``/etc/cdi/nvidia.yaml`` (``cdi_spec``) and refreshes it with its own
``k3s-gpu-cdi-refresh`` units. The rule (docs/driver-upgrade.md): where the collection's spec
exists, the toolkit's refresh units do not run and a spec they left is removed.

``device_owners`` maps each fully qualified device name to the spec files defining it;
``conflicts`` lists the other files that define a device of one given spec.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml

SPEC_DIRS = ('/etc/cdi', '/var/run/cdi')
TOOLKIT_SPEC = '/var/run/cdi/nvidia.yaml'
TOOLKIT_UNITS = ('nvidia-cdi-refresh.path', 'nvidia-cdi-refresh.service')
REFRESH_UNIT = 'k3s-gpu-cdi-refresh.service'


def _same_file(path):
    """/run/cdi and /var/run/cdi are one folder on most hosts (/var/run -> /run)."""
    path = str(path)
    return '/var' + path if path.startswith('/run/') else path


def spec_devices(text):
    """Fully qualified device names a spec's text defines (``nvidia.com/gpu=0``); [] when the
    text is not a spec."""
    try:
        spec = _yaml.loads(text or '')
    except ValueError:
        return []
    if not isinstance(spec, dict) or not isinstance(spec.get('devices'), list):
        return []
    kind = str(spec.get('kind', ''))
    return ['%s=%s' % (kind, d.get('name')) for d in spec['devices'] if isinstance(d, dict) and d.get('name')]


def device_owners(specs):
    """{device: [paths]} for the spec files in ``specs`` (path -> text)."""
    owners = {}
    for path, text in sorted((specs or {}).items()):
        for device in spec_devices(text):
            paths = owners.setdefault(device, [])
            if _same_file(path) not in [_same_file(p) for p in paths]:
                paths.append(str(path))
    return owners


def duplicates(specs):
    """[{device, paths}] for every device defined by more than one spec file."""
    return [{'device': device, 'paths': paths} for device, paths in sorted(device_owners(specs).items())
            if len(paths) > 1]


def conflicts(specs, own_path):
    """[{path, devices, toolkit}] for each other spec that defines a device of the spec at
    ``own_path``; ``toolkit`` is true for the file the toolkit's refresh units write."""
    own = _same_file(own_path)
    mine = set()
    for path, text in (specs or {}).items():
        if _same_file(path) == own:
            mine.update(spec_devices(text))
    found = []
    for path, text in sorted((specs or {}).items()):
        if _same_file(path) == own:
            continue
        shared = sorted(mine.intersection(spec_devices(text)))
        if shared:
            found.append({'path': str(path), 'devices': shared, 'toolkit': _same_file(path) == TOOLKIT_SPEC})
    return found
