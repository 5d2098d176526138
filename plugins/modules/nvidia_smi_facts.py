#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: nvidia_smi_facts
short_description: Gather NVIDIA driver and GPU facts from nvidia-smi
version_added: 0.1.0
description:
  - Runs C(nvidia-smi -q -x) exactly once and returns the driver, CUDA and per-GPU facts
    under C(ansible_facts.nvidia).
  - A host without a usable driver is not an error by default; the fact C(status) says what
    is wrong and C(message) how to fix it, so that roles can decide. With O(required=true)
    the module fails with that message instead.
  - Values that nvidia-smi reports as C(N/A) are returned as null, never as a string.
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - k3s_gpu.cluster.attributes.facts
options:
  nvidia_smi_path:
    description:
      - Path of the nvidia-smi binary.
      - When unset, nvidia-smi is looked up on E(PATH), then in C(/usr/bin), C(/usr/local/nvidia/bin),
        C(/run/current-system/sw/bin) and C(/opt/nvidia/bin).
    type: path
  timeout:
    description:
      - Seconds to wait for nvidia-smi before reporting C(status=error).
    type: int
    default: 30
  required:
    description:
      - Fail unless C(status) is C(ok), with the message that says what to fix.
    type: bool
    default: false
notes:
  - The XML of nvidia-smi does not carry the compute capability; C(compute_capability) is
    filled from the XML when a driver prints it, else from the architecture where that
    architecture has a single value (Turing, Ada Lovelace, Hopper), else null.
'''

EXAMPLES = r'''
- name: Gather GPU facts
  k3s_gpu.cluster.nvidia_smi_facts:

- name: Show the driver version
  ansible.builtin.debug:
    msg: "{{ ansible_facts.nvidia.driver_version }} on {{ ansible_facts.nvidia.gpu_count }} GPU(s)"
  when: ansible_facts.nvidia.status == 'ok'

- name: Require a working driver
  k3s_gpu.cluster.nvidia_smi_facts:
    required: true
    timeout: 60
'''

RETURN = r'''
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: complex
  contains:
    nvidia:
      description: What nvidia-smi reported.
      returned: always
      type: complex
      contains:
        status:
          description: C(ok), C(not_installed), C(no_devices), C(driver_not_loaded),
            C(driver_library_mismatch) or C(error).
          type: str
          returned: always
          sample: ok
        message:
          description: A summary when C(ok); otherwise what is wrong and how to fix it.
          type: str
          returned: always
          sample: 1 GPU(s), driver 580.159.04, CUDA 13.0
        nvidia_smi_path:
          description: The nvidia-smi that was run, null when none was found.
          type: str
          returned: always
          sample: /usr/bin/nvidia-smi
        driver_version:
          description: Driver version, null unless C(status=ok).
          type: str
          returned: always
          sample: 580.159.04
        driver_branch:
          description: Major number of the driver version.
          type: str
          returned: always
          sample: "580"
        cuda_version:
          description: Highest CUDA version the driver supports.
          type: str
          returned: always
          sample: "13.0"
        gpu_count:
          description: Number of GPUs.
          type: int
          returned: always
          sample: 1
        gpus:
          description: One entry per GPU, in nvidia-smi order.
          type: list
          elements: dict
          returned: always
          sample:
            - index: 0
              uuid: GPU-89fcfae2-3b36-7d29-858e-7396743c537e
              name: NVIDIA H100 80GB HBM3
              architecture: Hopper
              pci_bus_id: "00000000:00:06.0"
              minor_number: 0
              memory_total_mib: 81559
              persistence_mode: true
              mig_mode: {current: false, pending: false}
              mig_devices: []
              compute_capability: "9.0"
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _nvidia_smi


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type='path'),
            timeout=dict(type='int', default=30),
            required=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    if module.params['timeout'] < 1:
        module.fail_json(msg='timeout must be at least 1 second, got %d' % module.params['timeout'])
    facts = _nvidia_smi.gather(module.get_bin_path, module.params['nvidia_smi_path'], module.params['timeout'])
    if module.params['required'] and facts['status'] != 'ok':
        module.fail_json(msg=facts['message'], ansible_facts={'nvidia': facts})
    module.exit_json(changed=False, ansible_facts={'nvidia': facts})


if __name__ == '__main__':
    main()
