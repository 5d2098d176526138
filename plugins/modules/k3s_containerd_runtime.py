#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: k3s_containerd_runtime
short_description: Make K3s's embedded containerd know the NVIDIA runtimes
version_added: 0.1.0
description:
  - Adds runtimes to the containerd that K3s embeds, in one of two ways, chosen from the config
    C(<data_dir>/agent/etc/containerd/config.toml) K3s generated at its last start
    (O(method=auto)).
  - B(Drop-in:) where the generated config imports K3s's drop-in folder
    (C(imports = [".../config-v3.toml.d/*.toml"]), C(config.toml.d) for config version 2), a
    plain TOML file C(50-k3s-gpu-cluster.toml) in that folder. containerd 2.x merges it table by
    table over K3s's config, so it can also redefine a runtime K3s detected itself (another
    binary, C(SystemdCgroup)) and set C(enable_cdi) and C(cdi_spec_dirs). A template written
    earlier loses its block (the file goes when nothing else is left). Not with containerd 1.x,
    which replaces K3s's whole CRI plugin table with an imported one.
  - B(Template:) where the generated config imports no drop-in folder (older K3s), the template
    K3s renders its config from, C(config-v3.toml.tmpl) (config version 3, containerd 2.x) or
    C(config.toml.tmpl) (version 2, containerd 1.7). A new template starts with
    C({{ template "base" . }}) so that K3s's own config is extended, not replaced. The module's
    content lives in one marked block; anything outside it is kept. Each runtime table is
    guarded so that K3s does not render it twice when K3s detected a runtime of the same name
    (a table defined twice stops containerd); the runtime K3s detected then wins.
  - Before K3s's first start there is no config.toml; with config version 3 the module writes the
    drop-in. If the config K3s then generates does not import it, the next call writes the
    template, removes the drop-in and returns RV(restart_required) (the K3s roles restart K3s once).
  - When K3s already detects every requested runtime on its own (known name, standard binary
    path, default runtime type, O(runtimes[].systemd_cgroup=auto), nothing else to set), nothing
    is written (RV(managed=false)) and what the module wrote earlier is removed.
  - A template whose managed block is damaged (a BEGIN line without its END line, two of
    either) or that cannot be parsed, and a drop-in file that is not the module's or not TOML,
    are refused with a message that names the file; nothing is rewritten then.
  - K3s must be restarted to read a change; the module does not restart it but returns
    RV(restart_required) and RV(effective).
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - k3s_gpu.cluster.attributes.writer
options:
  data_dir:
    description: K3s data directory (K3s's C(--data-dir)).
    type: path
    default: /var/lib/rancher/k3s
  method:
    description:
      - How the runtimes reach containerd. C(auto) reads the generated C(config.toml) (see the
        description); C(drop_in) and C(template) force one way.
      - C(drop_in) fails before any change when an existing config.toml imports no drop-in folder.
    type: str
    choices: [auto, drop_in, template]
    default: auto
    version_added: 0.2.0
  fallback_template:
    description:
      - With the drop-in, write the template as well. For a K3s that is about to be replaced by an
        older release, which may not import the drop-in folder; the next call after the start
        removes whichever of the two K3s does not read. The K3s roles set it on a downgrade.
    type: bool
    default: false
    version_added: 0.2.0
  config_version:
    description:
      - containerd config version of the template to write.
      - C(auto) reads C(version) from the generated C(config.toml); without one, it runs
        C(k3s --version) (containerd 2, version 3, from v1.31.6+k3s1 and v1.32.2+k3s1 on).
    type: str
    choices: [auto, '2', '3']
    default: auto
  k3s_path:
    description:
      - The k3s binary run (C(k3s --version)) by O(config_version=auto) when no config.toml exists
        yet, and to tell containerd 1.x from 2.x when a version 2 config imports C(config.toml.d).
    type: path
  runtimes:
    description: Runtimes to add.
    type: list
    elements: dict
    default: [{name: nvidia}]
    suboptions:
      name:
        description: Runtime handler name (what a RuntimeClass's C(handler) refers to).
        type: str
        required: true
      binary:
        description:
          - Absolute path of the runtime binary.
          - Default for C(nvidia), C(nvidia-experimental) and C(nvidia-cdi) is the binary K3s
            would look for (C(nvidia-container-runtime), ...) found on E(PATH), in
            C(/usr/local/nvidia/toolkit) or C(/usr/bin).
        type: path
      runtime_type:
        description: containerd shim.
        type: str
        default: io.containerd.runc.v2
      systemd_cgroup:
        description:
          - C(SystemdCgroup) of the runtime, C(true), C(false) or C(auto).
          - C(auto) copies the value of K3s's C(runc) runtime from the generated config.toml,
            else uses true on a host that runs systemd with cgroup v2.
        type: raw
        default: auto
  default_runtime:
    description:
      - Runtime to make containerd's default. K3s's base template owns that setting, so the
        module does not write it; it checks that K3s will detect the runtime and returns
        RV(k3s_config) with C(default-runtime) for K3s's config.yaml.
    type: str
  enable_cdi:
    description:
      - Require CDI in containerd's CRI plugin. The drop-in sets C(enable_cdi = true). A template
        cannot add it; containerd 2.x (config version 3) has it on by default, which is checked,
        and with a version 2 template the module fails before changing anything.
      - CDI specs with C(cdiVersion) 0.7.0 (the NVIDIA toolkit's default from 1.19.1) need
        containerd 1.7.16 or later; every K3s with containerd 2.x reads them.
    type: bool
    default: false
  cdi_spec_dirs:
    description:
      - CDI spec folders containerd must read. The drop-in sets them; with a template only
        containerd 2.x's default (C(/etc/cdi), C(/var/run/cdi)) can be had.
    type: list
    elements: path
  allow_missing_binary:
    description: Write a runtime whose binary does not exist (yet) instead of failing.
    type: bool
    default: false
  state:
    description: C(absent) removes only the module's block (and the template when nothing else is left) and its drop-in.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description:
      - Keep a timestamped copy (C(<file>.<pid>.<time>~)) of a file before replacing or removing it.
        Backups in the drop-in folder do not end in C(.toml), so containerd does not read them.
    type: bool
    default: true
notes:
  - The check that a runtime was detected by K3s uses the binary names and folders K3s
    searches; it cannot see the E(PATH) of K3s's service.
  - RV(effective) counts a drop-in only when it is older than config.toml, which K3s rewrites
    at every start just before it starts containerd; a newer one has not been loaded yet.
'''

EXAMPLES = r'''
- name: Add the nvidia runtime to K3s's containerd
  k3s_gpu.cluster.k3s_containerd_runtime:
    runtimes:
      - name: nvidia
        binary: /usr/bin/nvidia-container-runtime
  register: k3s_runtime

- name: Restart K3s when containerd does not run the runtimes as asked
  ansible.builtin.service:
    name: k3s
    state: restarted
  when: k3s_runtime.restart_required

- name: Remove the runtimes again
  k3s_gpu.cluster.k3s_containerd_runtime:
    state: absent
'''

RETURN = r'''
path:
  description: The file that holds (or would hold) the runtimes, the drop-in or the template.
  returned: always
  type: str
  sample: /var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/50-k3s-gpu-cluster.toml
method:
  description: C(drop_in) or C(template), the way chosen (also for O(state=absent) and when nothing is managed).
  returned: always
  type: str
  sample: drop_in
method_reason:
  description: Why that way.
  returned: always
  type: str
template_path:
  description: The template for the config version in use.
  returned: always
  type: str
  sample: /var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl
drop_in_path:
  description: The module's drop-in file.
  returned: always
  type: str
imports:
  description: The drop-in folder the generated config.toml imports, or null.
  returned: always
  type: str
config_version:
  description: containerd config version written for (2 or 3).
  returned: always
  type: int
  sample: 3
runtimes:
  description: The runtimes with binary and systemd_cgroup resolved.
  returned: always
  type: list
  elements: dict
  sample: [{name: nvidia, binary: /usr/bin/nvidia-container-runtime, runtime_type: io.containerd.runc.v2,
            systemd_cgroup: true, k3s_detects: true}]
managed:
  description: Whether the module's block or drop-in is in place (false when K3s does it alone or O(state=absent)).
  returned: always
  type: bool
reason:
  description: Why nothing is managed, or what the block or drop-in does.
  returned: always
  type: str
restart_required:
  description:
    - K3s must restart, because the containerd config it generated at its last start, with the drop-ins
      it loaded then, lacks what was asked (or, before the first start, a file changed).
    - A change that K3s's running containerd already reflects (the block moving from the template
      to a drop-in) needs no restart.
  returned: always
  type: bool
effective:
  description: Whether the config.toml K3s generated last, merged with the drop-ins loaded with it, has the runtimes
    (and CDI when asked). False when there is no config.toml yet.
  returned: always
  type: bool
effective_problems:
  description: What that config lacks; empty when RV(effective) is true.
  returned: always
  type: list
  elements: str
k3s_config:
  description: Settings for K3s's config.yaml (C(default-runtime) when O(default_runtime) is set).
  returned: always
  type: dict
  sample: {default-runtime: nvidia}
backup_files:
  description: Backups made, one per file changed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _k3s_containerd_runtime


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type='path', default='/var/lib/rancher/k3s'),
            method=dict(type='str', default='auto', choices=['auto', 'drop_in', 'template']),
            fallback_template=dict(type='bool', default=False),
            config_version=dict(type='str', default='auto', choices=['auto', '2', '3']),
            k3s_path=dict(type='path'),
            runtimes=dict(type='list', elements='dict', default=[{'name': 'nvidia'}], options=dict(
                name=dict(type='str', required=True),
                binary=dict(type='path'),
                runtime_type=dict(type='str', default=ctd.DEFAULT_RUNTIME_TYPE),
                systemd_cgroup=dict(type='raw', default='auto'),
            )),
            default_runtime=dict(type='str'),
            enable_cdi=dict(type='bool', default=False),
            cdi_spec_dirs=dict(type='list', elements='path'),
            allow_missing_binary=dict(type='bool', default=False),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            backup=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    _k3s_containerd_runtime.run(module)


if __name__ == '__main__':
    main()
