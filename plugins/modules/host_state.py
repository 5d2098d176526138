#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: host_state
short_description: Read files, packages and systemd units in one read-only call
version_added: 0.2.0
description:
  - Reports, for the paths, packages and units given, what a role needs to decide whether its
    template, copy, package and service tasks would change anything. The roles read it once; a
    file or folder whose entry is already as wanted is not sent again
    (M(k3s_gpu.cluster.managed_file)), a package task is skipped when
    P(k3s_gpu.cluster.packages_installed#test) says so, so that a no-change run makes one call per
    role instead of one per file.
  - Changes nothing; runs the same in check mode.
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - k3s_gpu.cluster.attributes.reader
options:
  files:
    description:
      - Paths to report. A final symlink is reported as a link, not followed.
    type: list
    elements: path
    default: []
  packages:
    description:
      - Package names whose installed version to report.
    type: list
    elements: str
    default: []
  package_manager:
    description:
      - Where installed versions are read. V(auto) takes C(dpkg-query) when present, else C(rpm).
    type: str
    choices: [auto, dpkg, rpm]
    default: auto
  units:
    description:
      - systemd units (with their suffix, for example C(k3s.service)) to report. Without a running
        systemd every state is empty.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Read the repository file and the packages in one call
  k3s_gpu.cluster.host_state:
    files: [/etc/apt/sources.list.d/example.sources]
    packages: [nvidia-container-toolkit]
    units: [k3s.service]
  register: state

- name: Add the repository (no call to the host when it is already exactly this)
  k3s_gpu.cluster.managed_file:
    template: example.sources.j2
    dest: /etc/apt/sources.list.d/example.sources
    owner: root
    group: root
    mode: "0644"
    found: "{{ state.host_state.files }}"
'''

RETURN = r'''
host_state:
  description: What was found.
  returned: always
  type: complex
  contains:
    files:
      description:
        - One entry per path. V(type) is C(absent), C(file), C(directory), C(link) or C(other);
          C(mode) (four octal digits), C(owner) and C(group) (names) unless absent; C(sha1) of a
          file's bytes; C(target) of a link.
      type: dict
      returned: always
      sample: {"/etc/k3s-gpu/cdi-refresh.json": {"type": "file", "sha1": "3f786850e387550fdab836ed7e6dc881de23001b",
               "mode": "0644", "owner": "root", "group": "root"}}
    packages:
      description: Installed version per package; empty when not (or only partly) installed.
      type: dict
      returned: always
      sample: {"nvidia-container-toolkit": "1.20.0-1"}
    units:
      description: C(LoadState), C(ActiveState) and C(UnitFileState) per unit, as systemctl shows them.
      type: dict
      returned: always
      sample: {"k3s.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}}
    systemd:
      description: Whether systemd runs (C(/run/systemd/system) exists).
      type: bool
      returned: always
      sample: true
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type='list', elements='path', default=[]),
            packages=dict(type='list', elements='str', default=[]),
            package_manager=dict(type='str', choices=['auto', 'dpkg', 'rpm'], default='auto'),
            units=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False, host_state=_host_state.run(module))


if __name__ == '__main__':
    main()
