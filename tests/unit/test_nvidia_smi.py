# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

import os
import stat

import pytest

from conftest import fixture_path, read_fixture
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _nvidia_smi as smi
from ansible_collections.k3s_gpu.cluster.plugins.modules import nvidia_smi_facts


def test_h100_capture_parses():
    facts = smi.facts_from_output(0, read_fixture('h100-ubuntu2404', 'nvidia-smi-q.xml'), '')
    assert facts['status'] == 'ok'
    assert facts['driver_version'] == '580.159.04'
    assert facts['driver_branch'] == '580'
    assert facts['cuda_version'] == '13.0'
    assert facts['gpu_count'] == 1
    gpu = facts['gpus'][0]
    assert gpu == {
        'index': 0,
        'uuid': 'GPU-89fcfae2-3b36-7d29-858e-7396743c537e',
        'name': 'NVIDIA H100 80GB HBM3',
        'architecture': 'Hopper',
        'pci_bus_id': '00000000:00:06.0',
        'minor_number': 0,
        'memory_total_mib': 81559,
        'persistence_mode': True,
        'mig_mode': {'current': False, 'pending': False},
        'mig_devices': [],
        'compute_capability': '9.0',
    }
    # Matches the human-readable capture of the same host.
    text = read_fixture('h100-ubuntu2404', 'nvidia-smi-q.txt')
    assert '81559 MiB' in text and gpu['uuid'] in text


def test_eight_gpus_keep_order_and_minor_numbers():
    facts = smi.facts_from_output(0, read_fixture('nvidia-smi-q-8gpu.xml'), '')
    assert facts['status'] == 'ok'
    assert facts['gpu_count'] == 8
    assert [g['index'] for g in facts['gpus']] == list(range(8))
    assert [g['minor_number'] for g in facts['gpus']] == list(range(8))
    assert len(set(g['uuid'] for g in facts['gpus'])) == 8
    assert facts['gpus'][7]['pci_bus_id'] == '00000000:DB:00.0'


def test_mig_enabled_lists_mig_devices():
    gpu = smi.facts_from_output(0, read_fixture('nvidia-smi-q-mig.xml'), '')['gpus'][0]
    assert gpu['mig_mode'] == {'current': True, 'pending': True}
    assert [m['gpu_instance_id'] for m in gpu['mig_devices']] == [1, 2]
    assert gpu['mig_devices'][0]['memory_total_mib'] == 40192
    assert gpu['mig_devices'][0]['multiprocessor_count'] == 60
    assert gpu['mig_devices'][0]['uuid'] is None


def test_na_becomes_null_and_pending_mig():
    facts = smi.facts_from_output(0, read_fixture('nvidia-smi-q-mig-pending-na.xml'), '')
    gpu = facts['gpus'][0]
    assert gpu['memory_total_mib'] is None
    assert gpu['persistence_mode'] is False
    assert gpu['mig_mode'] == {'current': False, 'pending': True}
    # Ampere has several compute capabilities: unknown, not guessed.
    assert gpu['compute_capability'] is None

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            assert value != 'N/A'
    walk(facts)


def test_zero_gpu_log_is_no_devices():
    facts = smi.facts_from_output(0, read_fixture('nvidia-smi-q-0gpu.xml'), '')
    assert facts['status'] == 'no_devices'
    assert facts['driver_version'] == '580.159.04'
    assert 'lspci' in facts['message']


@pytest.mark.parametrize('name,rc,status,words', [
    ('nvidia-smi-driver-not-loaded.txt', 9, 'driver_not_loaded', 'modprobe nvidia'),
    ('nvidia-smi-mismatch.txt', 18, 'driver_library_mismatch', 'Reboot'),
    ('nvidia-smi-no-devices.txt', 6, 'no_devices', 'lspci'),
    ('nvidia-smi-garbage.txt', 139, 'error', 'exit code 139'),
])
def test_known_failures(name, rc, status, words):
    facts = smi.facts_from_output(rc, read_fixture(name), '')
    assert facts['status'] == status
    assert words in facts['message']
    assert facts['gpus'] == [] and facts['gpu_count'] == 0


def test_failure_message_on_stderr_is_recognised():
    facts = smi.facts_from_output(18, '', read_fixture('nvidia-smi-mismatch.txt'))
    assert facts['status'] == 'driver_library_mismatch'


@pytest.mark.parametrize('text', [
    read_fixture('nvidia-smi-q-truncated.xml'),
    '<nvidia_smi_log><gpu><minor_number>x</minor_number>',
    '<nvidia_smi_log>\x00\x01',
])
def test_odd_output_never_raises(text):
    facts = smi.facts_from_output(0, text, '')
    assert facts['status'] == 'error'
    assert 'not valid XML' in facts['message']


def test_wrong_root_element():
    facts = smi.parse_xml('<other><nvidia_smi_log/></other>')
    assert facts['status'] == 'error'
    assert '<other>' in facts['message']


def test_odd_values_inside_valid_xml():
    xml = ('<nvidia_smi_log><driver_version>N/A</driver_version><gpu id="x">'
           '<minor_number>abc</minor_number><fb_memory_usage><total>[N/A]</total></fb_memory_usage>'
           '<persistence_mode>Weird</persistence_mode></gpu></nvidia_smi_log>')
    facts = smi.facts_from_output(0, xml, '')
    assert facts['status'] == 'ok'
    assert facts['driver_version'] is None and facts['driver_branch'] is None
    gpu = facts['gpus'][0]
    assert gpu['minor_number'] is None and gpu['memory_total_mib'] is None
    assert gpu['persistence_mode'] is None and gpu['pci_bus_id'] == 'x'


def test_timeout():
    facts = smi.facts_from_output(None, '', '')
    assert facts['status'] == 'error' and 'timed out' in facts['message']


# ---- running a fake nvidia-smi ---------------------------------------------------------

def fake_smi(tmp_path, body, name='nvidia-smi'):
    """A stand-in nvidia-smi script (not NVIDIA's): records its calls, prints a fixture."""
    path = tmp_path / name
    calls = tmp_path / 'calls'
    path.write_text('#!/bin/sh\necho "$@" >> %s\n%s\n' % (calls, body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path), calls


def test_module_runs_nvidia_smi_exactly_once(tmp_path, run_module):
    path, calls = fake_smi(tmp_path, 'cat %s' % fixture_path('nvidia-smi-q-8gpu.xml'))
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': path})
    assert not failed and result['changed'] is False
    assert result['ansible_facts']['nvidia']['gpu_count'] == 8
    assert result['ansible_facts']['nvidia']['nvidia_smi_path'] == path
    assert calls.read_text().splitlines() == ['-q -x']


def test_module_finds_nvidia_smi_on_path(tmp_path, run_module, monkeypatch):
    fake_smi(tmp_path, 'cat %s' % fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml'))
    monkeypatch.setenv('PATH', '%s:%s' % (tmp_path, os.environ['PATH']))
    result, failed = run_module(nvidia_smi_facts, {})
    assert not failed
    assert result['ansible_facts']['nvidia']['nvidia_smi_path'] == str(tmp_path / 'nvidia-smi')
    assert result['ansible_facts']['nvidia']['status'] == 'ok'


def test_search_dirs_are_used_when_not_on_path():
    seen = {}

    def get_bin_path(name, required=False, opt_dirs=None):
        seen['opt_dirs'] = opt_dirs
        return '/usr/local/nvidia/bin/nvidia-smi'
    assert smi.find_nvidia_smi(get_bin_path) == '/usr/local/nvidia/bin/nvidia-smi'
    assert seen['opt_dirs'] == ['/usr/bin', '/usr/local/nvidia/bin', '/run/current-system/sw/bin', '/opt/nvidia/bin']


def test_module_not_installed(tmp_path, run_module):
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': str(tmp_path / 'missing')})
    assert not failed
    assert result['ansible_facts']['nvidia']['status'] == 'not_installed'
    assert 'missing' in result['ansible_facts']['nvidia']['message']


def test_module_not_installed_anywhere(run_module, monkeypatch):
    monkeypatch.setattr(smi, 'SEARCH_DIRS', [])
    monkeypatch.setenv('PATH', '/nonexistent')
    from ansible.module_utils import basic
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, *a, **k: None)
    result, failed = run_module(nvidia_smi_facts, {})
    assert not failed
    assert result['ansible_facts']['nvidia']['status'] == 'not_installed'
    assert 'nvidia_smi_path' in result['ansible_facts']['nvidia']['message']


def test_module_required_fails_with_message(tmp_path, run_module):
    path, _calls = fake_smi(tmp_path, 'cat %s; exit 18' % fixture_path('nvidia-smi-mismatch.txt'))
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': path})
    assert not failed and result['ansible_facts']['nvidia']['status'] == 'driver_library_mismatch'
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': path, 'required': True})
    assert failed
    assert 'Reboot' in result['msg']


def test_module_timeout(tmp_path, run_module):
    path, _calls = fake_smi(tmp_path, 'exec sleep 5')
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': path, 'timeout': 1})
    assert not failed
    assert result['ansible_facts']['nvidia']['status'] == 'error'
    assert 'timed out' in result['ansible_facts']['nvidia']['message']


def test_module_rejects_zero_timeout(run_module):
    result, failed = run_module(nvidia_smi_facts, {'timeout': 0})
    assert failed and 'timeout' in result['msg']


def test_module_check_mode_same_result(tmp_path, run_module):
    path, _calls = fake_smi(tmp_path, 'cat %s' % fixture_path('nvidia-smi-q-mig.xml'))
    result, failed = run_module(nvidia_smi_facts, {'nvidia_smi_path': path}, check_mode=True)
    assert not failed and result['ansible_facts']['nvidia']['gpus'][0]['mig_mode']['current'] is True


def test_unexecutable_binary_is_an_error(tmp_path):
    rc, out, err = smi.run_nvidia_smi(str(tmp_path), 5)
    assert rc == 127
