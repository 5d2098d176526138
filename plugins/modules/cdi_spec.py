#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cdi_spec
short_description: Keep a CDI spec for the host's NVIDIA GPUs that matches the running driver
version_added: 0.1.0
description:
  - Ensures a Container Device Interface (CDI) spec at O(path) that describes the host's NVIDIA
    GPUs for the driver that is running now. A spec made for another driver (the stale spec
    after a driver upgrade) is regenerated, whoever wrote it. The driver a spec was made for is
    read from the spec itself, from the version in the names of the driver files it mounts
    (C(libcuda.so.580.159.04), C(/lib/firmware/nvidia/580.159.04/)).
  - The spec declares the lowest C(cdiVersion) whose fields it uses (C(0.5.0) for devices named by
    index), so that consumers with an older CDI library (podman 4.3, containerd 1.7) read it. A
    C(0.6.0) spec with the C(cdi.k3s-gpu.io/driver-version) annotation, written by earlier versions
    of this module, is rewritten that way.
  - The C(nvidia-ctk) backend runs C(nvidia-ctk cdi generate). The C(native) backend needs no
    NVIDIA tool; it reads the device nodes under O(dev_root) and the driver files under
    O(driver_root). It cannot run NVIDIA's hooks, so it mounts the driver libraries under their
    SONAME in C(/usr/local/nvidia/lib64) and the utilities in C(/usr/local/nvidia/bin), the folders
    CUDA images already search. Images that do not search them need E(LD_LIBRARY_PATH) set.
  - The comparison with an existing spec is semantic (key order and formatting do not count).
    Every absolute host path a spec references must exist and the spec must pass the rules of the
    reference CDI library, else the problems are listed; with O(validate_only=true) the existing spec
    is checked and nothing is written. Checks stricter than the library's are warnings (RV(advice)).
  - The driver version and GPU list come from one run of nvidia-smi when it is available; without it
    from C(/proc/driver/nvidia/version), the libraries' names and the C(/dev/nvidiaN) nodes.
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - ansible.builtin.files
  - k3s_gpu.cluster.attributes.writer
  - k3s_gpu.cluster.attributes.backup
options:
  state:
    description: C(absent) removes the spec.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: The spec file. CDI runtimes read C(/etc/cdi) and C(/var/run/cdi).
    type: path
    default: /etc/cdi/nvidia.yaml
  backend:
    description:
      - C(auto) uses C(nvidia-ctk) when it is installed, else C(native).
    type: str
    choices: [auto, nvidia-ctk, native]
    default: auto
  driver_root:
    description: Root of the driver files (C(/run/nvidia/driver) for a driver container).
    type: path
    default: /
  dev_root:
    description: Root under which C(/dev/nvidia*) are found.
    type: path
    default: /
  library_dirs:
    description:
      - Extra folders to search for the driver libraries (relative to O(driver_root)), before the ld
        cache and the known folders such as C(/usr/local/nvidia/lib64), C(/run/opengl-driver/lib)
        and C(/usr/lib/x86_64-linux-gnu).
    type: list
    elements: path
    default: []
  device_name_strategy:
    description: How devices are named; C(all) is always there.
    type: list
    elements: str
    choices: [index, uuid]
    default: [index, uuid]
  vendor:
    description: Vendor part of the CDI kind.
    type: str
    default: nvidia.com
  caps:
    description:
      - Which C(/dev/nvidia-caps) capabilities the C(native) backend gives containers. None of them is
        needed to use a whole GPU whose MIG mode is off.
      - C(mig-access) gives the devices of a GPU in MIG mode the access capabilities of the GPU and
        compute instances that exist on it (what CUDA needs to use them), as C(nvidia-ctk) does for
        its MIG devices. The devices of other GPUs get none.
      - C(mig-monitor) gives every device the host-wide MIG monitor capability (lists all MIG
        instances, read-only; for monitoring agents).
      - C(mig-config) gives every device the host-wide MIG config capability, with which a root
        process in the container can create and destroy MIG instances of every GPU; meant for a MIG
        manager only.
      - The C(nvidia-ctk) backend ignores this option.
      - A monitor or config capability whose device node does not exist fails the task; a missing
        MIG access node is a warning (C(nvidia-modprobe -f) creates the nodes).
    type: list
    elements: str
    choices: [mig-access, mig-monitor, mig-config]
    default: [mig-access]
  class:
    description: Class part of the CDI kind.
    type: str
    default: gpu
  format:
    description: File format.
    type: str
    choices: [yaml, json]
    default: yaml
  validate_only:
    description: Check the existing spec (CDI rules, host paths, driver version) and write nothing.
    type: bool
    default: false
  nvidia_smi_path:
    description: nvidia-smi to ask for the driver version and GPUs (default, looked up as nvidia_smi_facts does).
    type: path
  nvidia_ctk_path:
    description: nvidia-ctk for the C(nvidia-ctk) backend (default, looked up on E(PATH)).
    type: path
  timeout:
    description: Seconds to wait for nvidia-smi and nvidia-ctk.
    type: int
    default: 60
notes:
  - The native backend does not expose MIG devices as separate CDI devices; see O(caps) for what a
    GPU in MIG mode gets.
'''

EXAMPLES = r'''
- name: Write the CDI spec for the NVIDIA GPUs
  k3s_gpu.cluster.cdi_spec:
  register: cdi

- name: Show the device names
  ansible.builtin.debug:
    var: cdi.devices

- name: Generate without any NVIDIA tool, for a driver under /usr/local/nvidia
  k3s_gpu.cluster.cdi_spec:
    backend: native
    library_dirs: [/usr/local/nvidia/lib64]

- name: Also let containers list MIG instances (a monitoring agent)
  k3s_gpu.cluster.cdi_spec:
    backend: native
    caps: [mig-access, mig-monitor]

- name: Check a spec written by someone else
  k3s_gpu.cluster.cdi_spec:
    path: /var/run/cdi/nvidia.yaml
    validate_only: true
  register: cdi_check
'''

RETURN = r'''
path:
  description: The spec file.
  returned: always
  type: str
  sample: /etc/cdi/nvidia.yaml
spec:
  description: The spec (as written, or as found with O(validate_only=true)); null when absent.
  returned: always
  type: dict
devices:
  description: Fully qualified device names.
  returned: always
  type: list
  elements: str
  sample: [nvidia.com/gpu=0, nvidia.com/gpu=GPU-89fcfae2-3b36-7d29-858e-7396743c537e, nvidia.com/gpu=all]
driver_version:
  description: The running driver version the spec is for.
  returned: always
  type: str
  sample: 580.159.04
backend:
  description: The backend used (C(native) or C(nvidia-ctk)), null with O(validate_only=true) or O(state=absent).
  returned: always
  type: str
  sample: native
problems:
  description:
    - What is wrong with the spec (the existing one with O(validate_only=true)); empty when valid.
    - A spec is valid when the reference CDI library (C(tags.cncf.io/container-device-interface)) accepts it
      (known fields and types, C(cdiVersion) 0.3.0 or later and at least what its fields need, vendor, class
      and device names, device nodes, mounts, hooks and env entries, at least one device, every device with
      container edits, no device name twice) and every absolute host path it references exists.
  returned: always
  type: list
  elements: str
advice:
  description:
    - What the project asks for beyond the CDI library's rules, also given as warnings; it never makes a
      spec invalid. For example container paths that are not absolute, a vendor that is not a DNS
      subdomain, env names a shell cannot use, a C(cdiVersion) higher than the spec's fields need.
  returned: always
  type: list
  elements: str
  sample: ["mount containerPath lib is not an absolute path"]
reason:
  description: Why the spec was (re)written, or why not.
  returned: always
  type: str
  sample: the spec was made for driver 570.86.15, the running driver is 580.159.04
backup_file:
  description: The backup made before replacing or removing the spec.
  returned: when a backup was made
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_spec


def main():
    module = AnsibleModule(
        argument_spec={
            'state': dict(type='str', default='present', choices=['present', 'absent']),
            'path': dict(type='path', default='/etc/cdi/nvidia.yaml'),
            'backend': dict(type='str', default='auto', choices=['auto', 'nvidia-ctk', 'native']),
            'driver_root': dict(type='path', default='/'),
            'dev_root': dict(type='path', default='/'),
            'library_dirs': dict(type='list', elements='path', default=[]),
            'device_name_strategy': dict(type='list', elements='str', choices=['index', 'uuid'],
                                         default=['index', 'uuid']),
            'vendor': dict(type='str', default='nvidia.com'),
            'class': dict(type='str', default='gpu'),
            'caps': dict(type='list', elements='str', choices=list(_cdi.CAPS), default=['mig-access']),
            'format': dict(type='str', default='yaml', choices=['yaml', 'json']),
            'validate_only': dict(type='bool', default=False),
            'nvidia_smi_path': dict(type='path'),
            'nvidia_ctk_path': dict(type='path'),
            'timeout': dict(type='int', default=60),
            'backup': dict(type='bool', default=False),
        },
        supports_check_mode=True,
        add_file_common_args=True,
    )
    _cdi_spec.run(module)


if __name__ == '__main__':
    main()
