#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: k3s_probe
short_description: Read what the K3s roles decide from, in one read-only call
version_added: 0.2.0
description:
  - The check step of the K3s roles (C(k3s_common), for k3s_server and k3s_agent) reads the host
    once before anything changes (the installed K3s version (and the binary's sha256 when it is
    pinned), the NVIDIA runtime binary, the files the roles write (the YAML ones read, to refuse
    what cannot be parsed; the others digested as M(k3s_gpu.cluster.host_state) digests them, for
    M(k3s_gpu.cluster.managed_file)), the airgap tarballs the host lacks or holds unlike the
    release's sha256sum file, the folders and links the roles make and the state of the K3s (and
    Docker) units). A no-change run then needs no other call to decide.
  - Changes nothing; runs the same in check mode. The result can carry credentials (the YAML
    files), so give the task C(no_log).
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - k3s_gpu.cluster.attributes.reader
options:
  bin:
    description: The K3s binary; its C(--version) output is returned as RV(k3s_probe.version).
    type: path
    required: true
  checksum:
    description: Also return the binary's sha256 (when the roles pin it with C(k3s_binary_sha256)).
    type: bool
    default: false
  files:
    description: Paths reported under RV(k3s_probe.paths) when they exist (links followed).
    type: list
    elements: path
    default: []
  digest:
    description: Those of O(files) whose sha1, mode, owner and group are reported too.
    type: list
    elements: path
    default: []
  images:
    description: The airgap image tarballs to compare with the release's sums.
    type: dict
    default: {}
    suboptions:
      dir:
        description: The folder K3s imports them from (C(<data-dir>/agent/images)).
        type: path
      names:
        description: The tarball file names.
        type: list
        elements: str
        default: []
      sums:
        description: The text of the release's C(sha256sum-<arch>.txt).
        type: str
        default: ''
  dirs:
    description: Folders reported under RV(k3s_probe.dirs) when they exist (links not followed).
    type: list
    elements: path
    default: []
  links:
    description: Paths whose link target is reported under RV(k3s_probe.links) (null when not a link).
    type: list
    elements: path
    default: []
  units:
    description: Service names without C(.service) whose state is reported under RV(k3s_probe.units).
    type: list
    elements: str
    default: []
seealso:
  - module: k3s_gpu.cluster.host_state
  - module: k3s_gpu.cluster.managed_file
'''

EXAMPLES = r'''
- name: Look at K3s on the host before any change
  k3s_gpu.cluster.k3s_probe:
    bin: /usr/local/bin/k3s
    files: [/usr/bin/nvidia-container-runtime, /etc/rancher/k3s/config.yaml]
    digest: [/etc/rancher/k3s/config.yaml]
    images:
      dir: /var/lib/rancher/k3s/agent/images
      names: [k3s-airgap-images-amd64.tar.zst]
      sums: "{{ lookup('ansible.builtin.file', 'airgap/sha256sum-amd64.txt') }}"
    dirs: [/etc/rancher/k3s]
    links: [/usr/local/bin/kubectl]
    units: [k3s]
  register: look
  no_log: true
'''

RETURN = r'''
k3s_probe:
  description: What was found.
  returned: always
  type: complex
  contains:
    paths:
      description:
        - The existing paths of O(files) - C(type) (C(file), C(directory), C(other)) and C(executable);
          C(content) (base64) of a C(.yaml) file; for those in O(digest) C(sha1), C(mode), C(owner), C(group).
      type: dict
      returned: always
      sample: {"/etc/rancher/k3s/config.yaml": {"type": "file", "executable": false, "content": "IyBNYW5hZ2Vk",
               "sha1": "3f786850e387550fdab836ed7e6dc881de23001b", "mode": "0600", "owner": "root", "group": "root"}}
    images_stale:
      description: The tarball names the host lacks, or holds with another sha256 than the sums list or not as 0644 root.
      type: list
      elements: str
      returned: always
      sample: [k3s-airgap-images-amd64.tar.zst]
    dirs:
      description: The existing paths of O(dirs) - C(dir) (whether a folder), C(mode), C(uid), C(gid).
      type: dict
      returned: always
      sample: {"/etc/rancher/k3s": {"dir": true, "mode": "0755", "uid": 0, "gid": 0}}
    links:
      description: Link target per path of O(links); null when the path is not a link.
      type: dict
      returned: always
      sample: {"/usr/local/bin/kubectl": "/usr/local/bin/k3s"}
    version:
      description: The output of C(<bin> --version); empty when there is no executable binary.
      type: str
      returned: always
      sample: "k3s version v1.36.3+k3s1 (abcdef12)\ngo version go1.26.1\n"
    sha256:
      description: The binary's sha256 with O(checksum); empty otherwise.
      type: str
      returned: always
    units:
      description: C(LoadState), C(ActiveState), C(UnitFileState) and C(MainPID) per name of O(units).
      type: dict
      returned: always
      sample: {"k3s": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled", "MainPID": "812"}}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _k3s_probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bin=dict(type='path', required=True),
            checksum=dict(type='bool', default=False),
            files=dict(type='list', elements='path', default=[]),
            digest=dict(type='list', elements='path', default=[]),
            images=dict(type='dict', default={}, options=dict(
                dir=dict(type='path'),
                names=dict(type='list', elements='str', default=[]),
                sums=dict(type='str', default='', no_log=False),
            )),
            dirs=dict(type='list', elements='path', default=[]),
            links=dict(type='list', elements='path', default=[]),
            units=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False, k3s_probe=_k3s_probe.run(module))


if __name__ == '__main__':
    main()
