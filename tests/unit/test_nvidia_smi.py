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


# ---- fields and edges the captures above do not exercise (found by `make mutation`) -------------

def smi_log(gpu_body, head='<driver_version>580.159.04</driver_version><cuda_version>13.0</cuda_version>',
            gpu_id='00000000:00:06.0'):
    """A minimal ``nvidia-smi -q -x`` document (hand-written, not a capture) with one GPU."""
    return ('<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n'
            '<nvidia_smi_log>%s<gpu id="%s">%s</gpu></nvidia_smi_log>' % (head, gpu_id, gpu_body))


@pytest.mark.parametrize('body,expected', [
    # nvidia-smi builds that print the compute capability: taken as printed, before any guess.
    ('<product_architecture>Ampere</product_architecture><compute_cap>8.6</compute_cap>', '8.6'),
    ('<product_architecture>Hopper</product_architecture><compute_cap>9.0</compute_cap>', '9.0'),
    ('<product_architecture>Ampere</product_architecture>'
     '<cuda_compute_capability>8.0</cuda_compute_capability>', '8.0'),
    # both printed: compute_cap wins
    ('<compute_cap>8.9</compute_cap><cuda_compute_capability>7.5</cuda_compute_capability>', '8.9'),
    # N/A falls through to the other element, then to the architecture
    ('<compute_cap>N/A</compute_cap><cuda_compute_capability>8.0</cuda_compute_capability>', '8.0'),
    ('<product_architecture>Turing</product_architecture><compute_cap>N/A</compute_cap>', '7.5'),
    ('<product_architecture>Ada Lovelace</product_architecture>', '8.9'),
    ('<product_architecture>Blackwell</product_architecture>', None),
    ('', None),
])
def test_compute_capability_from_the_output_then_the_architecture(body, expected):
    facts = smi.facts_from_output(0, smi_log(body), '')
    assert facts['status'] == 'ok'
    assert facts['gpus'][0]['compute_capability'] == expected


def test_pci_bus_id_element_wins_over_the_gpu_id_attribute():
    body = '<pci><pci_bus_id>00000000:3B:00.0</pci_bus_id></pci>'
    assert smi.facts_from_output(0, smi_log(body, gpu_id='x'), '')['gpus'][0]['pci_bus_id'] == '00000000:3B:00.0'
    assert smi.facts_from_output(0, smi_log('', gpu_id='00000000:3B:00.0'), '')['gpus'][0]['pci_bus_id'] == \
        '00000000:3B:00.0'


def test_mig_devices_every_field():
    gpu = smi.facts_from_output(0, read_fixture('nvidia-smi-q-mig.xml'), '')['gpus'][0]
    assert gpu['mig_devices'] == [
        {'index': 0, 'uuid': None, 'gpu_instance_id': 1, 'compute_instance_id': 0, 'memory_total_mib': 40192,
         'multiprocessor_count': 60},
        {'index': 1, 'uuid': None, 'gpu_instance_id': 2, 'compute_instance_id': 0, 'memory_total_mib': 40192,
         'multiprocessor_count': 60},
    ]
    # Builds that print the MIG device's UUID (and a non-zero compute instance).
    body = ('<mig_mode><current_mig>Enabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>'
            '<mig_devices><mig_device><index>3</index><uuid>MIG-0a1b2c3d-0000-5000-8000-000000000001</uuid>'
            '<gpu_instance_id>9</gpu_instance_id><compute_instance_id>2</compute_instance_id>'
            '<device_attributes><shared><multiprocessor_count>16</multiprocessor_count></shared>'
            '</device_attributes><fb_memory_usage><total>9984 MiB</total></fb_memory_usage>'
            '</mig_device></mig_devices>')
    gpu = smi.facts_from_output(0, smi_log(body), '')['gpus'][0]
    assert gpu['mig_devices'] == [
        {'index': 3, 'uuid': 'MIG-0a1b2c3d-0000-5000-8000-000000000001', 'gpu_instance_id': 9,
         'compute_instance_id': 2, 'memory_total_mib': 9984, 'multiprocessor_count': 16}]


@pytest.mark.parametrize('value,expected', [
    ('Enabled', True), ('enabled', True), ('Yes', True), ('on', True), ('TRUE', True),
    ('Disabled', False), ('no', False), ('Off', False), ('false', False),
    ('Weird', None), ('N/A', None), ('[Not Supported]', None),
])
def test_persistence_and_mig_mode_words(value, expected):
    body = ('<persistence_mode>%s</persistence_mode><mig_mode><current_mig>%s</current_mig>'
            '<pending_mig>%s</pending_mig></mig_mode>' % (value, value, value))
    gpu = smi.facts_from_output(0, smi_log(body), '')['gpus'][0]
    assert gpu['persistence_mode'] is expected
    assert gpu['mig_mode'] == {'current': expected, 'pending': expected}


def test_summary_message_and_a_non_zero_exit_with_valid_xml():
    text = read_fixture('h100-ubuntu2404', 'nvidia-smi-q.xml')
    assert smi.facts_from_output(0, text, '')['message'] == '1 GPU(s), driver 580.159.04, CUDA 13.0'
    # nvidia-smi printed a complete log but exited non-zero (e.g. one field failed): the facts
    # stand, the message says so.
    facts = smi.facts_from_output(3, text, '')
    assert facts['status'] == 'ok' and facts['gpu_count'] == 1
    assert facts['message'] == '1 GPU(s), driver 580.159.04, CUDA 13.0 (nvidia-smi exited with code 3)'
    # A log without GPUs keeps its own message, whatever the exit code.
    facts = smi.facts_from_output(6, read_fixture('nvidia-smi-q-0gpu.xml'), '')
    assert facts['status'] == 'no_devices' and 'exited with code' not in facts['message']


def test_only_the_leading_doctype_is_dropped():
    # A value that merely looks like a DOCTYPE (in CDATA) is kept as printed.
    body = '<product_name><![CDATA[<!DOCTYPE x>]]></product_name>'
    assert smi.facts_from_output(0, smi_log(body), '')['gpus'][0]['name'] == '<!DOCTYPE x>'


@pytest.mark.parametrize('text,first', [
    ('', '(empty)'),
    ('  \n\n ', '(empty)'),
    ('\n  garbage line one\nline two', 'garbage line one'),
    ('<nvidia_smi_log ' + 'y' * 500, '<nvidia_smi_log ' + 'y' * 184),
])
def test_invalid_xml_message_quotes_the_first_line(text, first):
    facts = smi.parse_xml(text)
    assert facts['status'] == 'error'
    assert facts['message'].endswith('first line: %s. Run it by hand to see what is wrong' % first)


def test_failure_detail_is_whitespace_folded_and_cut_at_300_characters():
    facts = smi.classify_failure(1, '', '')
    assert facts['message'].startswith('nvidia-smi -q -x failed with exit code 1: (no output). ')
    facts = smi.classify_failure(2, 'Unknown\n\n   option', 'x' * 1000)
    assert facts['message'].startswith('nvidia-smi -q -x failed with exit code 2: Unknown option %s. Run it' %
                                       ('x' * (300 - len('Unknown option '))))


def test_failure_facts_have_every_key_and_nothing_else():
    expected_keys = {'status', 'message', 'nvidia_smi_path', 'driver_version', 'driver_branch', 'cuda_version',
                     'gpu_count', 'gpus'}
    for facts in (smi.facts_from_output(None, '', ''), smi.classify_failure(9, 'No devices were found', ''),
                  smi.parse_xml('<x/>'), smi.parse_xml('')):
        assert set(facts) == expected_keys
        assert all(facts[k] is None for k in ('nvidia_smi_path', 'driver_version', 'driver_branch', 'cuda_version'))
        assert facts['gpu_count'] == 0 and facts['gpus'] == []


def test_explicit_path_must_be_an_executable_file(tmp_path):
    def never(*_args, **_kwargs):
        pytest.fail('PATH is not searched when nvidia_smi_path is set')
    plain = tmp_path / 'plain'
    plain.write_text('#!/bin/sh\n')
    assert smi.find_nvidia_smi(never, str(plain)) is None          # a file, not executable
    assert smi.find_nvidia_smi(never, str(tmp_path)) is None       # executable, not a file
    plain.chmod(0o755)
    assert smi.find_nvidia_smi(never, str(plain)) == str(plain)


def test_error_on_stderr_with_a_non_zero_exit(tmp_path):
    path, _calls = fake_smi(tmp_path, 'cat %s >&2; exit 18' % fixture_path('nvidia-smi-mismatch.txt'))
    facts = smi.gather(None, path)
    assert facts['status'] == 'driver_library_mismatch' and facts['nvidia_smi_path'] == path


def test_gather_explicit_path_missing_names_it(tmp_path):
    facts = smi.gather(None, str(tmp_path / 'nope'))
    assert facts['status'] == 'not_installed'
    assert facts['message'].startswith('nvidia_smi_path %s does not exist or is not executable' % (tmp_path / 'nope'))
    assert '/usr/bin, /usr/local/nvidia/bin' in facts['message']


# The default table (plain nvidia-smi): the one parser the smoke test and diagnose use.
_TABLE = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: N/A      |
|-----------------------------------------+------------------------+----------------------+
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:1B:00.0 Off |                    0 |
|   1  NVIDIA H100 80GB HBM3          Off |   00000000:43:00.0 Off |                    0 |
"""


def test_table_header_rows_and_cuda_na():
    assert smi.parse_table(_TABLE) == {"driver_version": "580.159.04", "cuda_version": None,
                                       "gpus": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"]}


def test_table_driver_line_without_header():
    assert smi.parse_table("Driver Version: 550.54.15\n") == {
        "driver_version": "550.54.15", "cuda_version": None, "gpus": []}
    assert smi.parse_table(None) == {"driver_version": None, "cuda_version": None, "gpus": []}
