# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action behind k3s_gpu.cluster.managed_file (documented in plugins/modules/managed_file.py).

One file or folder, declared once: compared on the controller with the role's read-only report
of the host (the host_state module's ``files``, or k3s_common's probe of the same shape) and,
only when it differs or is unknown, handed to ansible.builtin.template, ansible.builtin.copy or
ansible.builtin.file, which then write it as they always do (check mode, --diff, backup,
validate). The comparison rule is plugins/module_utils/_host_state.py's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import lookup_loader
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _host_state
from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain

# What each kind hands over to, and the argument that names its source.
KINDS = {
    'template': 'ansible.builtin.template',
    'content': 'ansible.builtin.copy',
    'state': 'ansible.builtin.file',
}
PASSED = frozenset(('owner', 'group', 'mode', 'backup', 'validate'))


class ActionModule(ActionBase):
    # No remote temporary folder of its own (the base class would make one on every run, a call
    # to the host even when the file is already as wanted); the module it hands over to makes
    # and removes its own.
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('template', 'content', 'state', 'dest', 'found')) | PASSED

    def _kind(self, args):
        given = [name for name in KINDS if name in args]
        if len(given) != 1:
            raise AnsibleActionFail(
                'managed_file: give exactly one of template (a template of the role), content (the text '
                'of the file) or state: directory; got %s' % (', '.join(given) or 'none'))
        kind = given[0]
        if kind == 'state' and args['state'] != 'directory':
            raise AnsibleActionFail('managed_file: state can only be directory (got %r); use template or '
                                    'content for a file' % (args['state'],))
        if not args.get('dest'):
            raise AnsibleActionFail('managed_file: dest (the path of the file or folder) is required')
        return kind

    def _found(self, args):
        found = plain(args.get('found'))
        if found is None:
            return {}
        if not isinstance(found, dict):
            raise AnsibleActionFail('managed_file: found must be the files of a host_state report (a dict '
                                    'keyed by path), got %s' % type(found).__name__)
        return found

    def _rendered(self, source, task_vars):
        # The same rendering as lookup('ansible.builtin.template'): the bytes ansible.builtin.template
        # writes (tests/unit/test_host_state.py and tests/integration/targets/host_state check it).
        lookup = lookup_loader.get('ansible.builtin.template', loader=self._loader, templar=self._templar)
        return lookup.run([source], variables=task_vars)[0]

    def _as_wanted(self, kind, args, entry, task_vars):
        owner = dict((name, args.get(name)) for name in ('mode', 'owner', 'group'))
        if kind == 'state':
            return _host_state.directory_matches(entry, **owner)
        content = self._rendered(args['template'], task_vars) if kind == 'template' else args['content']
        return _host_state.file_matches(entry, '' if content is None else str(content), **owner)

    def _hand_over(self, kind, args, task_vars):
        new_args = dict((name, value) for name, value in args.items() if name in PASSED and value is not None)
        if kind == 'state':
            # ansible.builtin.file has no action of its own: the module runs as any module does.
            new_args.update(path=args['dest'], state='directory')
            return self._execute_module(module_name=KINDS[kind], module_args=new_args, task_vars=task_vars)
        if kind == 'template':
            new_args.update(src=args['template'], dest=args['dest'])
        else:
            new_args.update(content=args['content'], dest=args['dest'])
        task = self._task.copy()
        task.args = new_args
        handler = self._shared_loader_obj.action_loader.get(
            KINDS[kind], task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return handler.run(task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = dict(self._task.args)
        kind = self._kind(args)
        entry = self._found(args).get(args['dest'])
        if self._as_wanted(kind, args, entry, task_vars):
            result.update(changed=False, dest=args['dest'], handed_over=False,
                          msg='already as wanted on the host (by the report given as found); nothing sent')
            return result
        result = self._hand_over(kind, args, task_vars)
        result['handed_over'] = True
        return result
