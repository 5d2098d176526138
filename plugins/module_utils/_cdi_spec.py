# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cdi_spec module does once its options are parsed (``run``): remove, validate or
write the CDI spec. The module (plugins/modules/cdi_spec.py) only declares its options and
calls ``run``; generation and checks are in ``_cdi_generate`` and ``_cdi``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_generate
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _files


def host_facts(module):
    """Driver version and GPUs from one nvidia-smi run; (None, None) when nvidia-smi is absent."""
    try:
        driver_version, gpus, _facts = _cdi_generate.host_facts(module.get_bin_path, module.params['nvidia_smi_path'],
                                                                module.params['timeout'])
    except _cdi_generate.CdiError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    return driver_version, gpus


def run(module):
    """Run the cdi_spec module with its parsed ``module`` (an AnsibleModule); exits through it."""
    p = module.params
    result = dict(changed=False, path=p['path'], spec=None, devices=[], driver_version=None, backend=None,
                  problems=[], advice=[], reason='')
    if p['state'] == 'absent':
        done = _files.remove_file(module, p['path'], backup=p['backup'])
        result.update(changed=done['changed'], reason='removed' if done['changed'] else 'no spec at %s' % p['path'],
                      diff=done['diff'])
        if done['backup_file']:
            result['backup_file'] = done['backup_file']
        module.exit_json(**result)

    text, existing, read_problem = _cdi_generate.read_spec(p['path'], module)
    driver_version, gpus = host_facts(module)
    cache_dirs = _cdi_generate.ld_cache_dirs(module.get_bin_path, module.run_command, p['driver_root'])
    if driver_version is None:
        driver_version = _cdi.driver_version_from_host(p['driver_root'], list(p['library_dirs']) + cache_dirs +
                                                       _cdi.LIB_DIRS)
    result['driver_version'] = driver_version

    if p['validate_only']:
        if text is None:
            result['problems'] = ['there is no spec at %s' % p['path']]
        elif read_problem:
            result['problems'] = [read_problem]
        else:
            result['spec'] = existing
            result['devices'] = _cdi.device_names(existing)
            result['problems'], result['advice'] = _cdi.check_spec(existing, check_paths=True)
            stale = _cdi.stale_reason(existing, driver_version)
            if stale:
                result['problems'].append('%s: regenerate it' % stale)
        result['reason'] = 'validate_only'
        for advice in result['advice']:
            module.warn(advice)
        module.exit_json(**result)

    try:
        ctk = _cdi_generate.find_ctk(module.get_bin_path, p)
        result['backend'] = 'nvidia-ctk' if ctk else 'native'
        spec, result['backend'], result['advice'] = _cdi_generate.make_spec(p, driver_version, gpus, cache_dirs, ctk,
                                                                            module.warn)
    except _cdi_generate.CdiError as exc:
        details = dict(result)
        details.update(exc.details)
        details.pop('msg', None)
        module.fail_json(msg=exc.msg, **details)
    result['spec'] = spec
    result['devices'] = _cdi.device_names(spec)

    if existing == spec:
        result['reason'] = 'the spec is up to date'
    else:
        result['reason'] = _cdi_generate.why_rewrite(text, existing, read_problem, driver_version, spec)
    new_text = _cdi_generate.render(spec, p['format'])
    if existing == spec:
        new_text = text  # same content: keep the file as it is (formatting does not count)
    done = _files.write_text(module, p['path'], new_text, backup=p['backup'])
    result['changed'] = done['changed']
    if done['changed']:
        result['diff'] = done['diff']
    if done['backup_file']:
        result['backup_file'] = done['backup_file']
    module.exit_json(**result)
