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
  - Writes the containerd runtimes into the template K3s renders its containerd config from,
    C(config-v3.toml.tmpl) for containerd config version 3 (containerd 2.x) or
    C(config.toml.tmpl) for version 2 (containerd 1.7), under C(<data_dir>/agent/etc/containerd).
  - A new template starts with C({{ template "base" . }}) so that K3s's own config is extended,
    not replaced. The module's content lives in one marked block; anything written outside the
    block is kept. When the version changes, the block is removed from the other template.
  - Each runtime table is guarded so that K3s does not render it twice when K3s detected a
    runtime of the same name itself (a table defined twice stops containerd).
  - When K3s already detects every requested runtime on its own (known name, standard binary
    path, default runtime type, O(runtimes[].systemd_cgroup=auto), no CDI to switch on), nothing
    is written (RV(managed=false)) and a block written earlier is removed.
  - K3s must be restarted to render the template; the module does not restart it but returns
    RV(restart_required) and RV(effective).
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
extends_documentation_fragment:
  - k3s_gpu.cluster.attributes.writer
  - k3s_gpu.cluster.attributes.backup
options:
  data_dir:
    description: K3s data directory (K3s's C(--data-dir)).
    type: path
    default: /var/lib/rancher/k3s
  config_version:
    description:
      - containerd config version of the template to write.
      - C(auto) reads C(version) from the generated C(config.toml); without one, it runs
        C(k3s --version) (containerd 2, version 3, from v1.31.6+k3s1 and v1.32.2+k3s1 on).
    type: str
    choices: [auto, '2', '3']
    default: auto
  k3s_path:
    description: The k3s binary used by O(config_version=auto) when no config.toml exists yet.
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
      - Require CDI in containerd's CRI plugin. containerd 2.x (config version 3) has it on
        by default, so nothing is written; with config version 2 it cannot be added on top of
        K3s's base template and the module fails before changing anything.
    type: bool
    default: false
  cdi_spec_dirs:
    description:
      - CDI spec folders containerd must read. Only containerd 2.x's default
        (C(/etc/cdi), C(/var/run/cdi)) can be had with a template that extends K3s's base.
    type: list
    elements: path
  allow_missing_binary:
    description: Write a runtime whose binary does not exist (yet) instead of failing.
    type: bool
    default: false
  state:
    description: C(absent) removes only the module's block (and the template when nothing else is left).
    type: str
    choices: [present, absent]
    default: present
notes:
  - The check that a runtime was detected by K3s uses the binary names and folders K3s
    searches; it cannot see the E(PATH) of K3s's service.
'''

EXAMPLES = r'''
- name: Add the nvidia runtime to K3s's containerd
  k3s_gpu.cluster.k3s_containerd_runtime:
    runtimes:
      - name: nvidia
        binary: /usr/bin/nvidia-container-runtime
  register: k3s_runtime

- name: Restart K3s when the template changed
  ansible.builtin.service:
    name: k3s
    state: restarted
  when: k3s_runtime.restart_required

- name: Remove the runtimes again
  k3s_gpu.cluster.k3s_containerd_runtime:
    state: absent
    backup: true
'''

RETURN = r'''
path:
  description: The template for the config version in use.
  returned: always
  type: str
  sample: /var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl
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
  description: Whether the module's block is in the template (false when K3s does it alone or O(state=absent)).
  returned: always
  type: bool
reason:
  description: Why nothing is managed, or what the block does.
  returned: always
  type: str
restart_required:
  description: K3s must restart to render the change (the template changed, or config.toml lacks the runtimes).
  returned: always
  type: bool
effective:
  description: Whether the config.toml K3s generated last already has the runtimes (and CDI when asked).
    False when there is no config.toml yet.
  returned: always
  type: bool
effective_problems:
  description: What config.toml lacks; empty when RV(effective) is true.
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _files
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml


def detect_version(module, cfg_text):
    wanted = module.params['config_version']
    if wanted != 'auto':
        return int(wanted), 'config_version=%s' % wanted
    version = ctd.version_from_config(cfg_text)
    if version:
        return version, 'version in the generated config.toml'
    k3s = module.params['k3s_path'] or module.get_bin_path('k3s', opt_dirs=['/usr/local/bin'])
    if k3s and os.path.isfile(k3s) and os.access(k3s, os.X_OK):
        rc, out, err = module.run_command([k3s, '--version'])
        version = ctd.version_from_k3s(out) if rc == 0 else None
        if version:
            return version, 'k3s --version'
    module.fail_json(msg='cannot tell which containerd config version K3s uses: there is no config.toml under %s '
                         'and no k3s binary that prints its version; set config_version to 2 (K3s with '
                         'containerd 1.7) or 3 (containerd 2: v1.31.6+k3s1, v1.32.2+k3s1 and later)'
                     % ctd.containerd_dir(module.params['data_dir']))


def systemd_host():
    return os.path.isdir('/run/systemd/system') and os.path.exists('/sys/fs/cgroup/cgroup.controllers')


def resolve_runtimes(module, version, config):
    resolved, problems = [], []
    names = [r['name'] for r in module.params['runtimes']]
    if len(set(names)) != len(names):
        module.fail_json(msg='runtimes has the same name twice (%s): give each runtime one entry' % ', '.join(names))
    for item in module.params['runtimes']:
        runtime = dict(name=item['name'], runtime_type=item['runtime_type'], binary=item['binary'])
        if not runtime['binary']:
            default = ctd.K3S_DETECTED.get(item['name'])
            if default is None:
                problems.append('runtime %s: set binary (only %s have a default)'
                                % (item['name'], ', '.join(sorted(ctd.K3S_DETECTED))))
                continue
            found = module.get_bin_path(default, opt_dirs=ctd.K3S_RUNTIME_DIRS)
            runtime['binary'] = found or os.path.join('/usr/bin', default)
        problems.extend(ctd.validate_runtime(runtime))
        if (not module.params['allow_missing_binary'] and os.path.isabs(runtime['binary'])
                and not (os.path.isfile(runtime['binary']) and os.access(runtime['binary'], os.X_OK))):
            problems.append('runtime %s: %s does not exist or is not executable: install the NVIDIA container '
                            'toolkit first (nvidia-container-toolkit), fix binary, or set allow_missing_binary'
                            % (runtime['name'], runtime['binary']))
        value = item['systemd_cgroup']
        if isinstance(value, str) and value.lower() == 'auto':
            current = ctd.runc_systemd_cgroup(config, version)
            runtime['systemd_cgroup'] = current if current is not None else systemd_host()
            runtime['systemd_cgroup_auto'] = True
        else:
            try:
                runtime['systemd_cgroup'] = boolean(value, strict=True)
            except TypeError:
                problems.append('runtime %s: systemd_cgroup must be true, false or auto, got %r'
                                % (item['name'], value))
                continue
            runtime['systemd_cgroup_auto'] = False
        runtime['k3s_detects'] = ctd.k3s_detects(runtime)
        resolved.append(runtime)
    if problems:
        module.fail_json(msg='; '.join(problems))
    return resolved


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type='path', default='/var/lib/rancher/k3s'),
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
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    folder = ctd.containerd_dir(p['data_dir'])
    cfg_path = os.path.join(folder, 'config.toml')
    cfg_text = _files.read_text(cfg_path)
    config = {}
    if cfg_text is not None:
        try:
            config = _toml.loads(cfg_text)
        except _toml.TomlError as exc:
            module.warn('cannot parse %s (%s): effective is reported false' % (cfg_path, exc))
    version, version_source = detect_version(module, cfg_text)
    other = 2 if version == 3 else 3
    path = os.path.join(folder, ctd.TEMPLATE_NAME[version])
    other_path = os.path.join(folder, ctd.TEMPLATE_NAME[other])

    result = dict(changed=False, path=path, config_version=version, runtimes=[], managed=False, reason='',
                  restart_required=False, effective=False, effective_problems=[], k3s_config={},
                  backup_files=[], version_source=version_source)
    runtimes = []
    if p['state'] == 'present':
        runtimes = resolve_runtimes(module, version, config)
        result['runtimes'] = runtimes
        if p['enable_cdi'] and version == 2:
            module.fail_json(msg='enable_cdi needs containerd config version 3 here: with version 2 (containerd 1.7) '
                                 'enable_cdi lives in the CRI plugin table that K3s\'s base template defines, and a '
                                 'template cannot define that table again. Upgrade K3s to a containerd 2 release '
                                 '(v1.31.6+k3s1, v1.32.2+k3s1 or later) or use the nvidia-cdi runtime instead', **result)
        if p['cdi_spec_dirs'] is not None and (version == 2 or p['cdi_spec_dirs'] != ctd.CONTAINERD2_CDI_SPEC_DIRS):
            module.fail_json(msg='cdi_spec_dirs can only be containerd 2\'s default %s: the setting lives in the CRI '
                                 'plugin table of K3s\'s base template, which a template cannot extend. Put CDI specs '
                                 'in /etc/cdi or /var/run/cdi' % ctd.CONTAINERD2_CDI_SPEC_DIRS, **result)
        if p['default_runtime']:
            match = [r for r in runtimes if r['name'] == p['default_runtime']]
            if p['default_runtime'] != 'runc' and not (match and match[0]['k3s_detects']):
                module.fail_json(msg='default_runtime %s: K3s sets the default runtime itself (default-runtime in its '
                                     'config.yaml) and accepts only runtimes it detects: list it in runtimes with the '
                                     'standard binary (%s in /usr/bin or /usr/local/nvidia/toolkit)'
                                 % (p['default_runtime'], ', '.join('%s: %s' % kv for kv in sorted(ctd.K3S_DETECTED.items()))),
                                 **result)
            result['k3s_config'] = {'default-runtime': p['default_runtime']}
        problem = ctd.check_block_parses(version, runtimes)
        if problem:
            module.fail_json(msg=problem, **result)
        standard = all(r['k3s_detects'] and r['systemd_cgroup_auto'] for r in runtimes)
        result['managed'] = not standard
        if standard:
            result['reason'] = ('K3s detects %s on its own; nothing to write'
                                % ', '.join('%s (%s)' % (r['name'], r['binary']) for r in runtimes))
        else:
            added = [r['name'] for r in runtimes if not (r['k3s_detects'] and r['systemd_cgroup_auto'])]
            result['reason'] = 'the template adds %s' % ', '.join(added)
    else:
        result['reason'] = 'state=absent'

    before = _files.read_text(path)
    if result['managed']:
        outside = ctd.split_template(before)
        for runtime in runtimes:
            if ctd.defines_runtime(outside[0] + outside[2], version, runtime['name']):
                module.fail_json(msg='%s already defines runtime %s outside the block this module manages: remove that '
                                     'table or drop %s from runtimes' % (path, runtime['name'], runtime['name']), **result)
        wanted = ctd.apply_block(before, version, runtimes)
    else:
        wanted = ctd.remove_block(before)
    diffs = []
    for target, text in ((path, wanted), (other_path, ctd.remove_block(_files.read_text(other_path)))):
        current = _files.read_text(target)
        if text == current:
            continue
        if text is None:
            done = _files.remove_file(module, target, backup=p['backup'])
        else:
            done = _files.write_text(module, target, text, backup=p['backup'])
        diffs.append(done['diff'])
        result['changed'] = result['changed'] or done['changed']
        if done['backup_file']:
            result['backup_files'].append(done['backup_file'])
    if result['managed'] and _files.read_text(other_path) is not None and version == 3 and not module.check_mode:
        module.warn('%s exists too: K3s reads %s first and ignores the version 2 template'
                    % (other_path, os.path.basename(path)))

    if p['state'] == 'present' and cfg_text is not None:
        result['effective_problems'] = ctd.effective_problems(config, version, runtimes, p['enable_cdi'])
        result['effective'] = not result['effective_problems']
    elif p['state'] == 'present':
        result['effective_problems'] = ['there is no %s yet (K3s has not started)' % cfg_path]
    else:
        result['effective'] = not any(ctd.runtime_table(config, version, n) for n in
                                      [r['name'] for r in p['runtimes']]) if cfg_text is not None else True
    result['restart_required'] = result['changed'] or (cfg_text is not None and not result['effective'])
    if diffs:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
