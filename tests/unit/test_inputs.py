# -*- coding: utf-8 -*-
"""plugins/module_utils/_inputs.py: the collection's input and safety rules (docs/safety.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _inputs

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


# ------------------------------------------------------------------ dangerous paths

@pytest.mark.parametrize('path, expected', [
    ('/', 'a system folder'),
    ('/var', 'a system folder'),
    ('/etc', 'a system folder'),
    ('/usr', 'a system folder'),
    ('/home', 'a system folder'),
    ('/root', 'a system folder'),
    ('/boot', 'a system folder'),
    ('/opt', 'a system folder'),
    ('/srv', 'a system folder'),
    ('/bin', 'a system folder'),
    ('/lib', 'a system folder'),
    ('/var/lib', 'a system folder'),
    ('/usr/local/bin', 'a system folder'),
    ('/etc/systemd/system', 'a system folder'),
    ('/var/lib/rancher', 'a system folder'),
    ('/data', 'directly under /'),
    ('/home/alice', 'a home folder'),
    ('/proc/1/root', 'kernel file system'),
    ('/sys/fs/k3s', 'kernel file system'),
    ('', 'is empty'),
    ('var/lib/rancher/k3s', 'not an absolute path'),
    ('/var/lib/../../', 'not normalised'),
    ('/var/lib/rancher/k3s/', 'not normalised'),
    ('//var/lib/rancher/k3s', 'not normalised'),
    ('/var/lib/rancher/./k3s', 'not normalised'),
    ('/var/lib/rancher/k3s/..', 'not normalised'),
    ('/var/lib/rancher k3s', 'holds a character outside'),
    ('/var/lib/rancher/k3s*', 'holds a character outside'),
    ('/var/lib/$(reboot)', 'holds a character outside'),
    ('/var/lib/rancher/k3s\n', 'holds a character outside'),
])
def test_removable_path_refuses_dangerous_paths(path, expected):
    problem = _inputs.path_problem('k3s_data_dir', path, removable=True)
    assert expected in problem
    assert problem.startswith('k3s_data_dir')


@pytest.mark.parametrize('value', [None, 5, ['/var/lib/rancher/k3s'], {'path': '/x/y'}])
def test_removable_path_refuses_wrong_types(value):
    assert 'give an absolute path' in _inputs.path_problem('k3s_data_dir', value, removable=True)


@pytest.mark.parametrize('path', [
    '/var/lib/rancher/k3s', '/data/k3s', '/srv/k3s/data', '/home/alice/k3s', '/etc/rancher/k3s',
    '/etc/systemd/system/k3s.service', '/usr/local/bin/k3s', '/mnt/nvme0/k3s',
])
def test_removable_path_accepts_folders_of_k3s(path):
    assert _inputs.path_problem('k3s_data_dir', path, removable=True) == ''


def test_plain_path_accepts_system_folders_but_not_relative_ones():
    assert _inputs.path_problem('k3s_gpu_runtime_binary', '/usr/bin') == ''
    assert 'not an absolute path' in _inputs.path_problem('k3s_gpu_runtime_binary', 'usr/bin/x')


# ------------------------------------------------------------------ mounts

MOUNTS = """\
overlay / overlay rw 0 0
tmpfs /run tmpfs rw 0 0
tmpfs /run/k3s tmpfs rw 0 0
shm /run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm tmpfs rw 0 0
overlay /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs overlay rw 0 0
/dev/sdb1 /var/lib/rancher/k3s ext4 rw 0 0
tmpfs /var/lib/rancher/k3s-backup tmpfs rw 0 0
tmpfs /var/lib/rancher/k3s/agent/pods/x/volumes/kubernetes.io~projected/kube-api-access tmpfs rw 0 0
tmpfs /var/lib/kubelet/pods/y/volumes/secret tmpfs rw 0 0
tmpfs /var/lib/kubelet tmpfs rw 0 0
tmpfs /var/lib/kubelet-other tmpfs rw 0 0
nsfs /run/netns/cni-1234-abcd nsfs rw 0 0
nsfs /run/netns/mine nsfs rw 0 0
nsfs /run/netns/cni-1/../../../home nsfs rw 0 0
tmpfs /var/lib/rancher/k3s/agent/with\\040blank tmpfs rw 0 0
"""


def test_k3s_mounts_are_strictly_below_the_k3s_folders_deepest_first():
    found = _inputs.k3s_mounts(MOUNTS, ['/run/k3s', '/var/lib/rancher/k3s', '/var/lib/kubelet'])
    assert found == [
        '/var/lib/rancher/k3s/agent/pods/x/volumes/kubernetes.io~projected/kube-api-access',
        '/run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm',
        '/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs',
        '/var/lib/kubelet/pods/y/volumes/secret',
        '/var/lib/rancher/k3s/agent/with blank',
        '/run/netns/cni-1234-abcd',
    ]
    # never the folders themselves, a sibling sharing the prefix, or a namespace not of CNI
    for kept in ('/run/k3s', '/var/lib/rancher/k3s', '/var/lib/kubelet', '/var/lib/rancher/k3s-backup',
                 '/var/lib/kubelet-other', '/run/netns/mine', '/'):
        assert kept not in found


# /proc/self/mountinfo: id parent major:minor root mount-point options [tags] - type source options
MOUNTINFO = """\
20 1 0:30 / / rw - overlay overlay rw
21 20 0:31 / /run rw - tmpfs tmpfs rw
22 21 0:32 / /run/k3s rw shared:5 - tmpfs tmpfs rw
23 20 0:30 /var/lib/kubelet /var/lib/kubelet rw shared:7 - overlay overlay rw
24 23 0:33 / /var/lib/kubelet/pods/y/volumes/secret rw - tmpfs tmpfs rw
25 20 8:17 / /var/lib/rancher/k3s rw - ext4 /dev/sdb1 rw
26 25 8:17 /agent/x /var/lib/rancher/k3s/agent/x rw - ext4 /dev/sdb1 rw
27 20 0:30 /srv/kubelet-data /var/lib/kubelet-bind rw - overlay overlay rw
28 21 0:4 net:[4026532] /run/netns/cni-1234-abcd rw - nsfs nsfs rw
"""


def test_k3s_mounts_takes_a_folder_bound_onto_itself_never_a_disk_mounted_there():
    found = _inputs.k3s_mounts(MOUNTINFO, ['/run/k3s', '/var/lib/rancher/k3s', '/var/lib/kubelet'])
    # the kubelet binds its root dir onto itself (to share its mounts): that one goes, after what is below it
    assert found == ['/var/lib/kubelet/pods/y/volumes/secret', '/var/lib/rancher/k3s/agent/x',
                     '/run/netns/cni-1234-abcd', '/var/lib/kubelet']
    # a disk mounted at the data dir stays mounted (its files are removed, the mount is the user's)
    assert '/var/lib/rancher/k3s' not in found and '/run/k3s' not in found


def test_k3s_mounts_keeps_a_folder_bound_from_elsewhere():
    text = MOUNTINFO.replace('0:30 /var/lib/kubelet /var/lib/kubelet', '0:30 /srv/kubelet /var/lib/kubelet')
    assert '/var/lib/kubelet' not in _inputs.k3s_mounts(text, ['/var/lib/kubelet'])
    text = MOUNTINFO.replace('23 20 0:30 /var/lib/kubelet', '23 20 8:2 /var/lib/kubelet')
    assert '/var/lib/kubelet' not in _inputs.k3s_mounts(text, ['/var/lib/kubelet'])


def test_k3s_mounts_ignores_a_dangerous_root():
    assert _inputs.k3s_mounts(MOUNTS, ['/', 'relative', '/run/k3s/']) == ['/run/netns/cni-1234-abcd']


# ------------------------------------------------------------------ tokens, endpoints, URLs

@pytest.mark.parametrize('token, expected', [
    ('K10abc::server:s3cret with blank', 'blank, newline or control'),
    ('s3cret\n', 'blank, newline or control'),
    ('\ts3cret', 'blank, newline or control'),
    (12345, 'write the token as a string'),
    (['s3cret'], 'write the token as a string'),
])
def test_token_is_one_word_and_never_quoted(token, expected):
    problem = _inputs.token_problem('k3s_token', token)
    assert expected in problem
    assert 's3cret' not in problem


def test_token_empty_is_unset_unless_required():
    assert _inputs.token_problem('k3s_token', '') == ''
    assert 'is empty' in _inputs.token_problem('k3s_token', '', optional=False)
    assert _inputs.token_problem('k3s_token', 'K10abc::server:s3cret') == ''


@pytest.mark.parametrize('value, expected', [
    ('https://k3s.example.com:6443', 'has a scheme'),
    ('k3s.example.com:port', 'is not a number'),
    ('k3s.example.com:70000', '1 to 65535'),
    ('k3s.example.com/api', 'no path'),
    ('bad_host!', 'not a host name'),
    ('[fd00::1', 'lacks its ]'),
    (6443, 'as a string'),
])
def test_endpoint_is_host_and_port_without_scheme(value, expected):
    assert expected in _inputs.endpoint_problem('k3s_api_endpoint', value)


@pytest.mark.parametrize('value, parts', [
    ('k3s.example.com', ('k3s.example.com', None)),
    ('10.0.0.10:6443', ('10.0.0.10', 6443)),
    ('[fd00::10]:7443', ('fd00::10', 7443)),
    ('fd00::10', ('fd00::10', None)),
])
def test_endpoint_accepts_names_and_addresses(value, parts):
    assert _inputs.endpoint_problem('k3s_api_endpoint', value) == ''
    assert _inputs.split_endpoint(value) == parts


@pytest.mark.parametrize('value, schemes, expected', [
    ('ftp://mirror/k3s', ('http', 'https'), 'uses ftp://'),
    ('file:///srv/k3s', ('https',), 'uses file://'),
    ('http://mirror.example.com/k3s', ('https',), 'only https:// is allowed'),
    ('https://user:pa55word@mirror.example.com/k3s', ('https',), 'user name or password'),
    ('mirror.example.com/k3s', ('https',), 'is not a URL'),
    ('https:///k3s', ('https',), 'no host'),
    ('https://mirror.example.com/k 3s', ('https',), 'holds a blank'),
])
def test_url_refuses_other_schemes_credentials_and_garbage(value, schemes, expected):
    problem = _inputs.url_problem('k3s_release_url', value, schemes=schemes)
    assert expected in problem
    assert 'pa55word' not in problem


def test_url_names_the_opt_in_for_plain_http():
    problem = _inputs.url_problem('k3s_release_url', 'http://m/k3s', schemes=('https',), opt_in='k3s_release_url_allow_http')
    assert 'k3s_release_url_allow_http: true' in problem
    assert _inputs.url_problem('k3s_release_url', 'https://github.com/k3s-io/k3s/releases/download', schemes=('https',)) == ''


# ------------------------------------------------------------------ fingerprints and checksums

PINNED = 'C95B321B61E88C1809C4F759DDCAE044F796ECB0'


@pytest.mark.parametrize('value', [
    'F796ECB0',                      # short key ID
    'DDCAE044F796ECB0',              # long key ID
    PINNED + '0',                    # 41 digits
    'C95B321B61E88C1809C4F759DDCAE044F796ECB.',  # regex syntax
    '.*',
    'G95B321B61E88C1809C4F759DDCAE044F796ECB0',  # not hex
])
def test_fingerprint_must_be_40_hex_digits(value):
    assert 'exactly 40 hex digits' in _inputs.fingerprint_problem('nvidia_container_toolkit_key_fingerprints', value)


def test_fingerprint_accepts_the_gpg_grouping_and_lower_case():
    assert _inputs.fingerprint_problem('f', 'c95b 321b 61e8 8c18 09c4  f759 ddca e044 f796 ecb0') == ''


def test_fingerprints_are_compared_as_exact_strings_never_as_patterns():
    other = '0000000000000000000000000000' + 'DDCAE044F796ECB0'[4:]
    assert _inputs.unpinned_fingerprints([PINNED], [PINNED.lower()]) == []
    # a key ID or a suffix used to match with the old regex search; no longer
    assert _inputs.unpinned_fingerprints([PINNED], ['F796ECB0']) == [PINNED]
    assert _inputs.unpinned_fingerprints([PINNED], ['.*']) == [PINNED]
    assert _inputs.unpinned_fingerprints([other, PINNED], [PINNED]) == [other]


@pytest.mark.parametrize('value', ['abc', 'g' * 64, 'a' * 63, 42])
def test_sha256_is_64_hex_digits(value):
    assert '64 hex digits' in _inputs.sha256_problem('k3s_binary_sha256', value)
    assert _inputs.sha256_problem('k3s_binary_sha256', 'A' * 64) == ''


# ------------------------------------------------------------------ numbers and booleans

@pytest.mark.parametrize('value, expected', [
    (0, 'must be 1 or more'), ('0', 'must be 1 or more'), (-5, 'must be 1 or more'),
    ('ten', 'give a whole number'), (True, 'give a whole number'), (2.5, 'give a whole number'),
])
def test_delays_and_retries_are_at_least_one(value, expected):
    assert expected in _inputs.positive_int_problem('gpu_operator_wait_delay', value)
    assert _inputs.positive_int_problem('gpu_operator_wait_delay', '15') == ''


@pytest.mark.parametrize('value', ['flase', 'enabled', 2, [], {'a': 1}, None, 'maybe'])
def test_booleans_refuse_what_is_not_one(value):
    assert 'not a boolean' in _inputs.bool_problem('k3s_reset_confirm', value)


@pytest.mark.parametrize('value', [True, False, 'true', 'False', 'yes', 'no', 'on', 'off', '1', '0', 1, 0])
def test_booleans_accept_what_ansible_reads_as_one(value):
    assert _inputs.bool_problem('k3s_reset_confirm', value) == ''


def test_form_dispatch_knows_every_documented_form_and_refuses_others():
    for form in ('path', 'removable_path', 'token', 'endpoint', 'url', 'https_url', 'fingerprints', 'sha256',
                 'positive_int', 'bool'):
        _inputs.form_problem(form, 'x', 'value')
    assert 'non-empty list' in _inputs.form_problem('fingerprints', 'f', [])
    assert _inputs.form_problem('endpoint', 'e', '', optional=True) == ''
    with pytest.raises(ValueError):
        _inputs.form_problem('email', 'x', 'value')


# ------------------------------------------------------------------ strict argument spec types

OPTIONS = {
    'k3s_server_disable': {'type': 'list', 'elements': 'str'},
    'k3s_server_config': {'type': 'dict'},
    'k3s_gpu_taint': {'type': 'bool'},
    'k3s_start_timeout': {'type': 'int'},
    'k3s_gpu_taint_value': {'type': 'str'},
    'k3s_data_dir': {'type': 'path'},
    'gpu_operator_driver_enabled': {'type': 'raw'},
    'k3s_token': {'type': 'str', 'no_log': True},
}


@pytest.mark.parametrize('name, value, expected', [
    ('k3s_server_disable', 'traefik,servicelb', 'is a string, not a list'),
    ('k3s_server_disable', {'traefik': True}, 'is a dict, not a list'),
    ('k3s_server_disable', ['traefik', ['servicelb']], 'item(s) #2 that are not str'),
    ('k3s_server_config', 'write-kubeconfig-mode=0644', 'is a string, not a dict'),
    ('k3s_server_config', ['a'], 'is a list, not a dict'),
    ('k3s_gpu_taint', 'flase', 'not a boolean'),
    ('k3s_start_timeout', '5m', 'not a whole number'),
    ('k3s_start_timeout', True, 'not a whole number'),
    ('k3s_gpu_taint_value', True, 'is a boolean, not a string'),
    ('k3s_data_dir', ['/var/lib/rancher/k3s'], 'is a list, not a string'),
    ('k3s_server_disable', None, 'is null'),
    ('k3s_token', {'value': 's3cret'}, 'is a dict, not a string'),
])
def test_type_problems_are_strict(name, value, expected):
    problems = _inputs.type_problems(OPTIONS, {name: value})
    assert len(problems) == 1 and problems[0].startswith(name) and expected in problems[0], problems
    assert 's3cret' not in problems[0]


def test_type_problems_accept_good_values_and_skip_unset_and_raw():
    values = {'k3s_server_disable': ['traefik'], 'k3s_server_config': {}, 'k3s_gpu_taint': 'yes',
              'k3s_start_timeout': '300', 'k3s_gpu_taint_value': 'true', 'k3s_data_dir': '/data/k3s',
              'gpu_operator_driver_enabled': 'auto'}
    assert _inputs.type_problems(OPTIONS, values) == []
    assert _inputs.type_problems(OPTIONS, {}) == []


def _argument_specs():
    for role in sorted(os.listdir(os.path.join(REPO_ROOT, 'roles'))):
        path = os.path.join(REPO_ROOT, 'roles', role, 'meta', 'argument_specs.yml')
        with open(path) as handle:
            specs = yaml.safe_load(handle)['argument_specs']
        for entry, spec in specs.items():
            for name, option in (spec.get('options') or {}).items():
                yield role, entry, name, option


def test_every_option_of_every_argument_spec_has_a_strict_type():
    missing = []
    for role, entry, name, option in _argument_specs():
        kind = option.get('type')
        if kind not in ('str', 'path', 'int', 'bool', 'list', 'dict', 'raw'):
            missing.append('%s %s %s: type %r' % (role, entry, name, kind))
        if kind == 'list' and option.get('elements') not in ('str', 'path', 'int', 'dict'):
            missing.append('%s %s %s: list without elements' % (role, entry, name))
    assert missing == []


def test_every_role_checks_its_main_entry_point_strictly():
    missing = []
    for role in sorted(os.listdir(os.path.join(REPO_ROOT, 'roles'))):
        tasks = os.path.join(REPO_ROOT, 'roles', role, 'tasks')
        text = ''.join(open(os.path.join(tasks, f)).read() for f in os.listdir(tasks))
        if 'k3s_gpu.cluster.validate_inputs:\n' not in text or 'argument_spec: main' not in text:
            missing.append(role)
    assert missing == []


# ------------------------------------------------------------------ existing files

@pytest.mark.parametrize('text, fmt, expected', [
    ('datastore-endpoint: postgres://k3s:pa55word@db\n  bad: [', 'yaml', 'is not valid YAML at line 2'),
    ('- a\n- b\n', 'yaml', 'not a mapping'),
    ('{"runtimes": {"x": "pa55word"', 'json', 'is not valid JSON at line 1'),
    ('["a"]', 'json', 'not an object'),
])
def test_parse_problem_names_the_place_never_the_content(text, fmt, expected):
    problem = _inputs.parse_problem(text, fmt)
    assert expected in problem
    assert 'pa55word' not in problem


def test_parse_problem_accepts_empty_yaml_and_mappings():
    assert _inputs.parse_problem('', 'yaml') == ''
    assert _inputs.parse_problem('# managed\n', 'yaml') == ''
    assert _inputs.parse_problem('a: 1\n', 'yaml') == ''
    assert _inputs.parse_problem('{}', 'json') == ''


@pytest.mark.parametrize('check', [
    lambda: _inputs.endpoint_problem('e', 'k3s.example.com\n'),
    lambda: _inputs.fingerprint_problem('f', PINNED + '\n'),
    lambda: _inputs.sha256_problem('s', 'a' * 64 + '\n'),
    lambda: _inputs.positive_int_problem('d', '5\n'),
])
def test_a_trailing_newline_is_never_accepted(check):
    assert check() != ''


def test_endpoint_parts_put_ipv6_in_brackets_for_urls():
    assert _inputs.endpoint_parts('[fd00::10]:7443') == {'host': 'fd00::10', 'port': 7443, 'url_host': '[fd00::10]'}
    assert _inputs.endpoint_parts('lb.example.com') == {'host': 'lb.example.com', 'port': None, 'url_host': 'lb.example.com'}
