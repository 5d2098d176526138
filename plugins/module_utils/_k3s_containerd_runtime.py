# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the k3s_containerd_runtime module does once its options are parsed (``run``): find the
config version and the way K3s reads, check the request, write or remove the drop-in or the
template block, and report what K3s's containerd really runs. The module
(plugins/modules/k3s_containerd_runtime.py) only declares its options and calls ``run``; the
containerd rules are in ``_containerd``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

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


def containerd2(module, version):
    """True when K3s's containerd is 2.x: from `k3s --version` when it can be run, else from the
    config version (version 3 exists only with containerd 2)."""
    k3s = module.params['k3s_path'] or module.get_bin_path('k3s', opt_dirs=['/usr/local/bin'])
    if k3s and os.path.isfile(k3s) and os.access(k3s, os.X_OK):
        rc, out, _err = module.run_command([k3s, '--version'])
        found = ctd.version_from_k3s(out) if rc == 0 else None
        if found:
            return found == 3
    return version == 3


def loaded_config(module, cfg_path, config):
    """config.toml merged with the imported files containerd loaded with it: those not newer
    than config.toml, which K3s rewrites at every start before containerd starts."""
    try:
        cfg_mtime = os.stat(cfg_path).st_mtime
    except OSError:
        return config
    merged = config
    for path in ctd.imported_files(config, os.path.dirname(cfg_path)):
        try:
            if os.stat(path).st_mtime > cfg_mtime:
                continue
            merged = ctd.merge_tables(merged, _toml.loads(_files.read_text(path) or ''))
        except (OSError, _toml.TomlError) as exc:
            module.warn('cannot read %s, which config.toml imports (%s): effective leaves it out' % (path, exc))
    return merged


def read_checked(module, result, templates, drop_ins):
    """Current text of every file the module may change; a damaged one stops the module here."""
    texts = {}
    try:
        for path in templates:
            texts[path] = _files.read_text(path)
            ctd.check_template(texts[path], path)
        for path in drop_ins:
            texts[path] = _files.read_text(path)
            ctd.check_drop_in(texts[path], path)
    except ctd.DamagedFile as exc:
        module.fail_json(msg=str(exc), **result)
    return texts


def check_request(module, result, version, method, runtimes):
    """Refusals that depend on the way chosen; nothing has changed yet."""
    p = module.params
    if method == 'template':
        if p['enable_cdi'] and version == 2:
            module.fail_json(msg='enable_cdi needs containerd config version 3 here: with version 2 (containerd 1.7) '
                                 'enable_cdi lives in the CRI plugin table that K3s\'s base template defines, and a '
                                 'template cannot define that table again. Upgrade K3s to a containerd 2 release '
                                 '(v1.31.6+k3s1, v1.32.2+k3s1 or later) or use the nvidia-cdi runtime instead', **result)
        if p['cdi_spec_dirs'] is not None and (version == 2 or p['cdi_spec_dirs'] != ctd.CONTAINERD2_CDI_SPEC_DIRS):
            module.fail_json(msg='cdi_spec_dirs can only be containerd 2\'s default %s with a template: the setting '
                                 'lives in the CRI plugin table of K3s\'s base template, which a template cannot '
                                 'extend. Put CDI specs in /etc/cdi or /var/run/cdi, or use a K3s whose generated '
                                 'config imports the drop-in folder' % ctd.CONTAINERD2_CDI_SPEC_DIRS, **result)
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


def run(module):
    """Run the k3s_containerd_runtime module with its parsed ``module`` (an AnsibleModule); exits through it."""
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
    templates = {v: os.path.join(folder, ctd.TEMPLATE_NAME[v]) for v in (2, 3)}
    imported = ctd.drop_in_import(config)
    drop_in_dirs = {v: os.path.join(folder, ctd.DROP_IN_DIR[v]) for v in (2, 3)}
    if imported:
        drop_in_dirs[imported[0]] = imported[1]
    drop_ins = {v: os.path.join(drop_in_dirs[v], ctd.DROP_IN_NAME) for v in (2, 3)}
    drop_in_version = imported[0] if imported else version

    result = dict(changed=False, path=templates[version], template_path=templates[version],
                  drop_in_path=drop_ins[drop_in_version], imports=imported[1] if imported else None,
                  method='template', method_reason='', config_version=version, runtimes=[], managed=False,
                  reason='', restart_required=False, effective=False, effective_problems=[], k3s_config={},
                  backup_files=[], version_source=version_source)
    texts = read_checked(module, result, templates.values(), drop_ins.values())

    method, result['method_reason'] = ctd.choose_method(
        p['method'], cfg_text is not None, imported,
        imported is not None and imported[0] == 2 and containerd2(module, version), version)
    result['method'] = method
    if method == 'drop_in':
        result['path'] = drop_ins[drop_in_version]
    runtimes = []
    if p['state'] == 'present':
        if p['method'] == 'drop_in' and cfg_text is not None and not imported:
            module.fail_json(msg='method=drop_in, but %s imports no drop-in folder (%s/*.toml): this K3s does not read '
                                 'drop-ins; use method=auto or template' % (cfg_path, drop_in_dirs[version]), **result)
        runtimes = resolve_runtimes(module, version, config)
        result['runtimes'] = runtimes
        check_request(module, result, version, method, runtimes)
        extra = (p['cdi_spec_dirs'] is not None and p['cdi_spec_dirs'] != ctd.CONTAINERD2_CDI_SPEC_DIRS)
        standard = all(r['k3s_detects'] and r['systemd_cgroup_auto'] for r in runtimes) and not extra
        result['managed'] = not standard
        if standard:
            result['reason'] = ('K3s detects %s on its own; nothing to write'
                                % ', '.join('%s (%s)' % (r['name'], r['binary']) for r in runtimes))
        else:
            added = [r['name'] for r in runtimes if not (r['k3s_detects'] and r['systemd_cgroup_auto'])] or \
                ['the CDI spec folders']
            result['reason'] = 'the %s adds %s' % ('drop-in' if method == 'drop_in' else 'template', ', '.join(added))
    else:
        result['reason'] = 'state=absent'

    wanted = {}
    use_template = result['managed'] and (method == 'template' or p['fallback_template'])
    for v, path in templates.items():
        if use_template and v == version:
            outside = ctd.split_template(texts[path], path)
            for runtime in runtimes:
                if ctd.defines_runtime(outside[0] + outside[2], version, runtime['name']):
                    module.fail_json(msg='%s already defines runtime %s outside the block this module manages: remove '
                                         'that table or drop %s from runtimes' % (path, runtime['name'], runtime['name']),
                                     **result)
            wanted[path] = ctd.apply_block(texts[path], version, runtimes, path)
        else:
            wanted[path] = ctd.remove_block(texts[path], path)
    for v, path in drop_ins.items():
        if result['managed'] and method == 'drop_in' and v == drop_in_version:
            wanted[path] = ctd.render_drop_in(v, runtimes, p['enable_cdi'], p['cdi_spec_dirs'])
        else:
            wanted[path] = None

    # What containerd loaded at K3s's last start, read before anything is written.
    loaded = loaded_config(module, cfg_path, config) if cfg_text is not None else {}
    diffs = []
    # New content first, removals after: an interrupted run leaves the runtimes defined somewhere.
    order = sorted(wanted, key=lambda path: wanted[path] is None)
    for path in order:
        text = wanted[path]
        if text == texts[path]:
            continue
        if text is None:
            done = _files.remove_file(module, path, backup=p['backup'])
        else:
            done = _files.write_text(module, path, text, backup=p['backup'])
        diffs.append(done['diff'])
        result['changed'] = result['changed'] or done['changed']
        if done['backup_file']:
            result['backup_files'].append(done['backup_file'])
    if use_template and texts[templates[other]] is not None and version == 3 and not module.check_mode:
        module.warn('%s exists too: K3s reads %s first and ignores the version 2 template'
                    % (templates[other], os.path.basename(templates[version])))

    if p['state'] == 'present' and cfg_text is not None:
        result['effective_problems'] = ctd.effective_problems(loaded, version, runtimes, p['enable_cdi'],
                                                              p['cdi_spec_dirs'] if method == 'drop_in' else None)
        result['effective'] = not result['effective_problems']
    elif p['state'] == 'present':
        result['effective_problems'] = ['there is no %s yet (K3s has not started)' % cfg_path]
    else:
        result['effective_problems'] = ctd.leftover_problems(loaded, version, [r['name'] for r in p['runtimes']])
        result['effective'] = not result['effective_problems']
    result['restart_required'] = (not result['effective']) if cfg_text is not None else result['changed']
    if diffs:
        result['diff'] = diffs
    module.exit_json(**result)
