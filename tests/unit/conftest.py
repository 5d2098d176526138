# -*- coding: utf-8 -*-
"""Make ``ansible_collections.k3s_gpu.cluster`` importable in plain pytest.

The checkout is the collection; a throw-away ``ansible_collections/k3s_gpu/cluster``
symlink pointing at it is put on sys.path, so the tests import the code exactly as
Ansible does (no dependency on .collections/ having been bootstrapped).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def _link_collection():
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, 'ansible_collections', 'k3s_gpu', 'cluster', 'plugins')):
            return
    root = tempfile.mkdtemp(prefix='k3s_gpu-unit-')
    ns = os.path.join(root, 'ansible_collections', 'k3s_gpu')
    os.makedirs(ns)
    os.symlink(REPO_ROOT, os.path.join(ns, 'cluster'))
    sys.path.insert(0, root)


_link_collection()


def script(path, body):
    """Write an executable shell script (a stand-in program) at ``path``; returns its path."""
    path.write_text('#!/bin/sh\n' + body + '\n')
    path.chmod(0o755)
    return str(path)


def ansible_playbook(*args, **kwargs):
    """Run this virtualenv's ``ansible-playbook`` with ``args``; returns the CompletedProcess.

    The checkout is the collection k3s_gpu.cluster through a throw-away collection path
    (``ansible_collections/k3s_gpu/cluster`` linked to it, then .collections/ for the collections
    it depends on), with the project's ansible.cfg, a throw-away ANSIBLE_HOME and local temp and
    no colour; all of it is removed afterwards. ``env``: more environment variables. It runs in
    the checkout unless ``cwd`` is given; output is text, stderr merged into stdout unless
    ``stderr=subprocess.PIPE`` is given. Other keyword arguments go to subprocess.run (timeout:
    600 s).
    """
    tmp = tempfile.mkdtemp(prefix='k3s_gpu-playbook-')
    try:
        ns = os.path.join(tmp, 'coll', 'ansible_collections', 'k3s_gpu')
        os.makedirs(ns)
        os.symlink(REPO_ROOT, os.path.join(ns, 'cluster'))
        env = dict(os.environ)
        env.update({
            'ANSIBLE_CONFIG': os.path.join(REPO_ROOT, 'ansible.cfg'),
            'ANSIBLE_COLLECTIONS_PATH': os.pathsep.join([os.path.join(tmp, 'coll'),
                                                         os.path.join(REPO_ROOT, '.collections')]),
            'ANSIBLE_HOME': os.path.join(tmp, 'home'),
            'ANSIBLE_LOCAL_TEMP': os.path.join(tmp, 'tmp'),
            'ANSIBLE_NOCOLOR': '1',
        })
        env.update(kwargs.pop('env', {}))
        options = dict(cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=600)
        options.update(kwargs)
        check = options.pop('check', False)
        return subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')] + list(args),
                              check=check, **options)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fixture_path(*parts):
    return os.path.join(FIXTURES, *parts)


def read_fixture(*parts):
    with open(fixture_path(*parts)) as handle:
        return handle.read()


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result.get('msg', ''))
        self.result = result
        self.failed = failed


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's main() with args; return (result, failed)."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **kwargs):
        kwargs.setdefault('changed', False)
        raise ModuleExit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs['msg'] = msg
        raise ModuleExit(kwargs, True)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def _run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args):
            try:
                module.main()
            except ModuleExit as done:
                # Results must be JSON-serialisable, as Ansible sends them back.
                json.dumps(done.result)
                return done.result, done.failed
        raise AssertionError('the module returned without exit_json/fail_json')

    return _run


@pytest.fixture(scope='session')
def rendered():
    """Every manifest of plugins/addons_render/render.yml, rendered once per test session
    (shared by plugins/test_addons_manifests.py and plugins/test_device_plugin_peer.py)."""
    from test_addons_manifests import render_cases
    return render_cases()
