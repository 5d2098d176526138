# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action behind k3s_gpu.cluster.validate_inputs (documented in plugins/modules/validate_inputs.py).

Runs on the controller and changes nothing. The rules are in plugins/module_utils/_inputs.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _inputs
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain

FORMS = ['path', 'removable_path', 'token', 'endpoint', 'url', 'https_url', 'fingerprints', 'sha256',
         'positive_int', 'bool']


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(('argument_spec', 'inputs'))

    def _spec_options(self, entry_point):
        role = getattr(self._task, '_role', None)
        if role is None:
            raise AnsibleError('validate_inputs: argument_spec needs the task to run inside a role')
        path = os.path.join(role._role_path, 'meta', 'argument_specs.yml')
        with open(path) as handle:
            specs = (yaml.safe_load(handle) or {}).get('argument_specs') or {}
        if entry_point not in specs:
            raise AnsibleError('validate_inputs: %s has no entry point %r' % (path, entry_point))
        return specs[entry_point].get('options') or {}

    def _values(self, options, task_vars):
        values = {}
        for name in options:
            if name not in task_vars:
                continue
            try:
                values[name] = plain(self._templar.template(task_vars[name]))
            except AnsibleError:
                # A default that cannot be evaluated here fails in the task that uses it.
                continue
        return values

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=dict(
            argument_spec=dict(type='str'),
            inputs=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                value=dict(type='raw'),
                form=dict(type='str', required=True, choices=FORMS),
                optional=dict(type='bool', default=False),
                secret=dict(type='bool', default=False),
                opt_in=dict(type='str', default=''),
            )),
        ))[1]
        problems = []
        checked = 0
        if args['argument_spec']:
            options = self._spec_options(args['argument_spec'])
            values = self._values(options, task_vars or {})
            problems.extend(_inputs.type_problems(options, values))
            checked += len(values)
        for item in args['inputs']:
            problem = _inputs.form_problem(item['form'], item['name'], plain(item['value']),
                                           optional=item['optional'], secret=item['secret'],
                                           opt_in=item['opt_in'])
            checked += 1
            if problem:
                problems.append(problem)
        result['changed'] = False
        result['checked'] = checked
        if problems:
            result['failed'] = True
            result['problems'] = problems
            result['msg'] = 'invalid input: %s. Nothing was changed.' % '; '.join(problems)
        else:
            result['msg'] = '%d inputs checked' % checked
        return result
