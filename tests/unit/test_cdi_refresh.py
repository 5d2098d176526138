# -*- coding: utf-8 -*-
"""k3s-gpu-cdi-refresh (plugins/module_utils/_cdi_generate.py main), the command the CDI
self-heal units run, on the stand-in driver tree of fake_driver."""
from __future__ import absolute_import, division, print_function

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

import fake_driver
from conftest import REPO_ROOT, ansible_playbook, fixture_path, script
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_generate
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml

ROLE = os.path.join(REPO_ROOT, 'roles', 'nvidia_container_toolkit')


@pytest.fixture
def node(tmp_path):
    """A driver tree, a stand-in nvidia-smi printing the H100 capture, and the options file."""
    root = str(tmp_path / 'root')
    fake_driver.build(root)
    smi = script(tmp_path / 'nvidia-smi', 'cat %s' % fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml'))
    spec_path = tmp_path / 'cdi' / 'nvidia.yaml'
    options = tmp_path / 'cdi-refresh.json'
    options.write_text(json.dumps({'path': str(spec_path), 'backend': 'native', 'driver_root': root,
                                   'dev_root': root, 'nvidia_smi_path': smi}))

    class Node(object):
        pass
    Node.root, Node.smi, Node.spec, Node.options, Node.tmp = root, smi, spec_path, str(options), tmp_path
    return Node


def run(argv, capsys):
    rc = _cdi_generate.main(argv)
    out, err = capsys.readouterr()
    return rc, out + err


def test_writes_the_spec_then_leaves_it_alone(node, capsys):
    rc, out = run(['--config', node.options], capsys)
    assert rc == 0 and 'regenerated for driver 580.159.04 (native backend): there was no spec' in out
    spec = _yaml.loads(node.spec.read_text())
    assert _cdi.spec_driver_version(spec) == '580.159.04'
    assert _cdi.validate_spec(spec, check_paths=True) == []
    assert oct(stat.S_IMODE(os.stat(str(node.spec)).st_mode)) == '0o644'
    before = os.stat(str(node.spec))
    rc, out = run(['--config', node.options], capsys)
    assert rc == 0 and 'is up to date for driver 580.159.04' in out
    after = os.stat(str(node.spec))
    assert (after.st_ino, after.st_mtime) == (before.st_ino, before.st_mtime)


def test_same_spec_as_the_cdi_spec_module(node, capsys, run_module):
    """The command and the module make the same spec: one generator, two callers."""
    from ansible_collections.k3s_gpu.cluster.plugins.modules import cdi_spec
    module_path = node.tmp / 'module' / 'nvidia.yaml'
    result, failed = run_module(cdi_spec, dict(path=str(module_path), backend='native', driver_root=node.root,
                                               dev_root=node.root, nvidia_smi_path=node.smi))
    assert not failed, result
    assert run(['--config', node.options], capsys)[0] == 0
    assert node.spec.read_text() == module_path.read_text()
    # And the module finds the command's spec up to date (no rewrite after a self-heal).
    result, failed = run_module(cdi_spec, dict(path=str(node.spec), backend='native', driver_root=node.root,
                                               dev_root=node.root, nvidia_smi_path=node.smi))
    assert not failed and not result['changed']


def test_stale_spec_is_regenerated_keeping_its_mode(node, capsys):
    run(['--config', node.options], capsys)
    node.spec.write_text(node.spec.read_text().replace('580.159.04', '570.86.15'))
    os.chmod(str(node.spec), 0o600)
    rc, out = run(['--config', node.options], capsys)
    assert rc == 0
    assert 'the spec was made for driver 570.86.15, the running driver is 580.159.04' in out
    assert '570.86.15' not in node.spec.read_text()
    assert oct(stat.S_IMODE(os.stat(str(node.spec)).st_mode)) == '0o600'
    assert os.listdir(str(node.spec.parent)) == ['nvidia.yaml']  # no temporary file left behind


@pytest.mark.parametrize('message', ['Failed to initialize NVML: Driver/library version mismatch',
                                     "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"])
def test_driver_being_changed_leaves_the_spec(node, capsys, message):
    run(['--config', node.options], capsys)
    old = node.spec.read_text()
    bad = script(node.tmp / 'smi-changing', 'echo "%s"; exit 9' % message)
    options = json.loads(open(node.options).read())
    options['nvidia_smi_path'] = bad
    with open(node.options, 'w') as handle:
        json.dump(options, handle)
    rc, out = run(['--config', node.options], capsys)
    assert rc == 0 and 'left as it is: the driver is being changed' in out
    assert node.spec.read_text() == old


def test_failure_exits_1_and_writes_nothing(node, capsys):
    os.unlink(os.path.join(node.root, 'dev/nvidia0'))
    rc, out = run(['--config', node.options], capsys)
    assert rc == 1 and 'not refreshed' in out and 'no NVIDIA GPU device node' in out
    assert not node.spec.exists()


@pytest.mark.parametrize('content, needle', [
    ('{"path": "/tmp/x", "colour": "blue"}', 'unknown options colour'),
    ('[1, 2]', 'JSON object'),
    ('{"backend": "magic"}', 'backend must be'),
    ('not json', 'cannot use'),
])
def test_bad_options_file(node, capsys, content, needle):
    with open(node.options, 'w') as handle:
        handle.write(content)
    rc, out = run(['--config', node.options], capsys)
    assert rc == 2 and needle in out and 'rerun the nvidia_container_toolkit role' in out


def test_usage(capsys):
    rc, out = run([], capsys)
    assert rc == 2 and 'usage: k3s-gpu-cdi-refresh --config' in out


def _render_command(tmp_path, modules, dest):
    """Render templates/k3s-gpu-cdi-refresh.j2 as the role's template task does."""
    playbook = tmp_path / 'render.yml'
    playbook.write_text(json.dumps([{
        'hosts': 'localhost', 'gather_facts': False,
        'vars': {'role_path': ROLE, '__nvidia_container_toolkit_cdi_refresh_modules': modules},
        'tasks': [{'name': 'Render the refresh command', 'ansible.builtin.template': {
            'src': os.path.join(ROLE, 'templates', 'k3s-gpu-cdi-refresh.j2'), 'dest': str(dest), 'mode': '0644'}}]}]))
    proc = ansible_playbook('-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable,
                            str(playbook), timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_installed_layout_runs_without_ansible(node, tmp_path):
    """The one file the role renders onto the node (the command with the collection's
    module_utils it needs embedded) is all the command needs: run it with an interpreter that
    cannot import Ansible (-I, and no site-packages)."""
    with open(os.path.join(ROLE, 'vars', 'main.yml')) as handle:
        role_vars = yaml.safe_load(handle)
    modules = role_vars['__nvidia_container_toolkit_cdi_refresh_modules']
    install = tmp_path / 'install'
    install.mkdir()
    _render_command(tmp_path, modules, install / 'k3s-gpu-cdi-refresh')
    assert sorted(os.listdir(str(install))) == ['k3s-gpu-cdi-refresh']
    proc = subprocess.run([sys.executable, '-I', '-S', str(install / 'k3s-gpu-cdi-refresh'), '--config', node.options],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    assert 'regenerated for driver 580.159.04' in proc.stdout
    assert _cdi.spec_driver_version(_yaml.loads(node.spec.read_text())) == '580.159.04'
