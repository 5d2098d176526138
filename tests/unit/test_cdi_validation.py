# -*- coding: utf-8 -*-
"""_cdi.check_spec word for word: where each problem is, every bad entry of a list (not only
the first), the version rules, and the driver versions a spec names.

The verdicts (valid or not) are in tests/unit/cdi_cases.py, which the reference library also
judges (test_cdi_peer.py); this file holds what the library does not say: our messages, which
name the place and the value so that a user can find them, and the helpers around them.
Written for what `make mutation` showed no test reached (docs/development.md).
"""

from __future__ import absolute_import, division, print_function

import copy

import pytest

import cdi_cases
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi

GOOD = cdi_cases.GOOD
HOOKS = 'prestart, createRuntime, createContainer, startContainer, poststart, poststop'


def spec_with(version='0.3.0', devices=None, **top):
    spec = copy.deepcopy(GOOD)
    spec['cdiVersion'] = version
    if devices is not None:
        spec['devices'] = devices
    spec.update(top)
    return spec


def device(name='gpu0', **edits):
    return {'name': name, 'containerEdits': edits or {'deviceNodes': [{'path': '/dev/null'}]}}


# ---- the decoder: field paths, types, ranges -----------------------------------------------------

def test_decoder_problems_name_the_field_path():
    spec = spec_with(devices=[device(), {'name': ['x'], 'containerEdits': {
        'deviceNodes': [{'path': '/dev/null', 'major': 'x'}], 'env': 'A=1'}}])
    assert _cdi.check_spec(spec) == ([
        'the spec.devices[1].name must be a string',
        'the spec.devices[1].containerEdits.env must be a list',
        'the spec.devices[1].containerEdits.deviceNodes[0].major must be a whole number',
    ], [])
    assert _cdi.check_spec(spec_with(kind={'vendor': 'nvidia.com'})) == (['the spec.kind must be a string'], [])


def test_unknown_fields_of_any_key_type_are_listed_in_order():
    spec = spec_with()
    spec.update({'zz': 1, 1: 'one', 'aa': 2})  # YAML keys need not be strings
    assert _cdi.check_spec(spec)[0] == ["the spec: unknown field 1", "the spec: unknown field 'aa'",
                                        "the spec: unknown field 'zz'"]


@pytest.mark.parametrize('value,problem', [
    (0, None), (4294967295, None),
    # a fraction is truncated toward zero first, as the library's decoder does
    (1.5, None), (-0.5, None), (4294967295.5, None),
    (4294967296, 'must be a whole number from 0 to 4294967295'),
    (4294967296.0, 'must be a whole number from 0 to 4294967295'),
    (-1, 'must be a whole number from 0 to 4294967295'),
    (-1.5, 'must be a whole number from 0 to 4294967295'),
    (float('nan'), 'must be a whole number'), (float('inf'), 'must be a whole number'),
    (True, 'must be a whole number'), ('7', 'must be a whole number'),
])
def test_uint32_range(value, problem):
    spec = spec_with(devices=[device(deviceNodes=[{'path': '/dev/null', 'fileMode': value}])])
    expected = ['the spec.devices[0].containerEdits.deviceNodes[0].fileMode %s' % problem] if problem else []
    assert _cdi.check_spec(spec)[0] == expected


@pytest.mark.parametrize('value,problem', [
    (True, None), (False, None), ('yes', None), ('Off', None), ('N', None),
    ('true', 'must be true or false'), ('enabled', 'must be true or false'), (1, 'must be true or false'),
    (['yes'], 'must be true or false'),
])
def test_bool_fields(value, problem):
    spec = spec_with('1.1.0', devices=[device(intelRdt={'closID': 'gpu', 'enableMonitoring': value})])
    expected = ['the spec.devices[0].containerEdits.intelRdt.enableMonitoring %s' % problem] if problem else []
    problems, _advice = _cdi.check_spec(spec)
    assert problems == expected


def test_annotations_must_be_strings_and_scalars_count():
    spec = spec_with('0.6.0', annotations={'a': {'b': 'c'}, 'n': 1, 'x': None})
    assert _cdi.check_spec(spec)[0] == ['the spec.annotations: annotation a must be a string']


# ---- the library's rules: every bad entry of each list ---------------------------------------------

def test_every_bad_entry_of_every_list_is_reported():
    edits = {
        'env': [True, False, 'A=1', '=x=y'],
        'deviceNodes': [None, {'path': ''}, {'path': '/dev/x', 'type': 'z', 'major': -1, 'permissions': 'rwx'},
                        {'path': 'dev/rel', 'minor': -2}],
        'mounts': [None, {'hostPath': '/a'}, {'hostPath': '/b', 'containerPath': 'rel'}],
        'hooks': [None, {'hookName': 'later'}, {'hookName': 'prestart'},
                  {'hookName': 'poststop', 'path': '/h', 'env': ['NOEQ', '1A=x']}],
        'netDevices': [None, {'hostInterfaceName': 'eth0'}, {'hostInterfaceName': 'eth1', 'name': 'n1'},
                       {'hostInterfaceName': 'eth2', 'name': 'n1'}, {'hostInterfaceName': 'eth1', 'name': 'n4'},
                       {'hostInterfaceName': 'eth5', 'name': 'n5'}],
    }
    spec = spec_with('1.1.0', devices=[{'name': 'gpu0', 'containerEdits': edits}])
    problems, advice = _cdi.check_spec(spec, check_paths=True, exists=lambda path: False)
    where = 'device gpu0'
    assert sorted(problems) == sorted([
        "%s: env entry 'true' is not NAME=value" % where,
        "%s: env entry 'false' is not NAME=value" % where,
        "%s: env entry '=x=y' is not NAME=value" % where,
        '%s: a deviceNode is empty (null)' % where,
        '%s: a deviceNode has no path' % where,
        "%s: deviceNode /dev/x has type 'z' (b, c, u or p)" % where,
        '%s: deviceNode /dev/x has a negative major' % where,
        '%s: deviceNode /dev/x permissions \'rwx\' (letters r, w, m, or "none")' % where,
        '%s: device node /dev/x does not exist on the host' % where,
        '%s: deviceNode dev/rel has a negative minor' % where,
        '%s: a mount is empty (null)' % where,
        '%s: a mount needs hostPath and containerPath' % where,
        '%s: mount source /b does not exist on the host' % where,
        '%s: a hook is empty (null)' % where,
        "%s: hook name 'later' is not one of %s" % (where, HOOKS),
        '%s: hook prestart has no path' % where,
        "%s: hook poststop: env entry 'NOEQ' is not NAME=value" % where,
        '%s: hook program /h does not exist on the host' % where,
        '%s: a netDevice is empty (null)' % where,
        '%s: a netDevice needs hostInterfaceName and name' % where,
        '%s: netDevice n1 (eth2) repeats a hostInterfaceName or name' % where,
        '%s: netDevice n4 (eth1) repeats a hostInterfaceName or name' % where,
    ])
    assert sorted(advice) == sorted([
        '%s: deviceNode path dev/rel is not an absolute path in the container' % where,
        '%s: device node dev/rel is not an absolute path (it cannot be checked on the host)' % where,
        '%s: mount containerPath rel is not an absolute path' % where,
        '%s: hook poststop: env entry \'1A=x\' does not start with a name a shell can use (letters, digits, "_")'
        % where,
    ])


def test_relative_host_paths_are_advice_without_checking():
    spec = spec_with(containerEdits={'mounts': [{'hostPath': 'relative', 'containerPath': '/z'}]})
    assert _cdi.check_spec(spec) == ([], ['containerEdits: mount source relative is not an absolute path'])
    assert _cdi.validate_spec(spec, True, lambda path: False) == ['device gpu0: device node /dev/null does not exist '
                                                                  'on the host']
    assert _cdi.validate_spec(spec, True, lambda path: True) == []


def test_kind_length_advice_words():
    vendor = '.'.join(['a' * 63] * 3 + ['b' * 61])  # 253 characters, labels of at most 63
    assert len(vendor) == 253
    assert _cdi.check_spec(spec_with(kind=vendor + '/gpu')) == ([], [])
    assert _cdi.check_spec(spec_with(kind=vendor + 'c/gpu'))[1] == [
        'vendor %r is not a DNS subdomain of at most 253 characters (lower case letters, digits, "-" and "."): the CDI '
        'spec asks for a domain the vendor controls, e.g. example.com' % (vendor + 'c')]
    assert _cdi.check_spec(spec_with(kind='nvidia.com/' + 'g' * 63)) == ([], [])
    assert _cdi.check_spec(spec_with(kind='nvidia.com/' + 'g' * 64))[1] == ["class '%s' is longer than 63 characters"
                                                                            % ('g' * 64)]
    assert _cdi.check_spec(spec_with(kind='-x/gpu'))[0] == [
        "vendor '-x' must start with a letter, end with a letter or digit and use only letters, digits, \"_\", \"-\" "
        "and \".\" in between"]
    assert _cdi.check_spec(spec_with(devices=[device(name='a-')]))[0] == [
        "device name 'a-' must be letters, digits, \"_\", \"-\", \".\" or \":\" with a letter or digit at both ends"]


# ---- versions --------------------------------------------------------------------------------------

def test_too_old_names_what_needs_more():
    spec = spec_with('0.5.0', annotations={'a': 'b'},
                     devices=[device(name='0', deviceNodes=[{'path': '/dev/null'}], intelRdt={'closID': 'x'})])
    assert _cdi.check_spec(spec)[0] == [
        'cdiVersion 0.5.0 is too old: at least 0.7.0 is needed (for annotations; device 0: intelRdt)']
    assert _cdi.version_needs(spec) == [('0.6.0', 'annotations'), ('0.5.0', "device name '0', which starts with a digit"),
                                        ('0.7.0', 'device 0: intelRdt')]


def test_below_the_earliest_version_blames_no_field():
    # 0.1.0 and 0.2.0 are versions the library knows but no longer reads: no field needs more,
    # so the message names only the version (no empty "(for )").
    assert _cdi.check_spec(spec_with('0.2.0')) == (['cdiVersion 0.2.0 is too old: at least 0.3.0 is needed'], [])
    assert _cdi.check_spec(spec_with('v0.1.0'))[0] == ['cdiVersion v0.1.0 is too old: at least 0.3.0 is needed']


def test_higher_than_needed_is_advice_in_words():
    assert _cdi.check_spec(spec_with('v1.1.0')) == ([], [
        "cdiVersion v1.1.0 is higher than the spec's fields need (0.3.0): CDI consumers whose library does not know "
        "1.1.0 refuse it, 0.3.0 would let them read it"])


@pytest.mark.parametrize('spec,version', [
    (spec_with(kind='a/b.c/d'), '0.6.0'),     # the class is everything after the first "/"
    (spec_with(kind='a/b/c.d'), '0.6.0'),
    (spec_with(kind='a.b/c'), '0.3.0'),       # a dot in the vendor needs nothing
    (spec_with(devices=[device(name='9x')]), '0.5.0'),
    (spec_with(devices=[device(name='x9')]), '0.3.0'),
    (spec_with(devices=['junk', device(name='0')]), '0.5.0'),
    (spec_with(containerEdits={'intelRdt': {}}), '0.7.0'),
    (spec_with(containerEdits={'intelRdt': None}), '0.3.0'),
    (spec_with(containerEdits={'intelRdt': {'enableMonitoring': True}}), '1.1.0'),
    (spec_with(containerEdits={'intelRdt': {'enableMonitoring': False}}), '0.7.0'),
    (spec_with(containerEdits={'intelRdt': {'enableMonitoring': 'off'}}), '0.7.0'),   # the value read counts
    (spec_with(containerEdits={'intelRdt': {'enableMonitoring': 'On'}}), '1.1.0'),
    (spec_with(containerEdits={'intelRdt': {'schemata': []}}), '1.1.0'),
    (spec_with(devices=[device(intelRdt={'closID': 'a', 'schemata': ['L3:0=f']})]), '1.1.0'),
    (spec_with(containerEdits={'mounts': [{'hostPath': '/a', 'containerPath': '/a', 'type': 'bind'}]}), '0.4.0'),
    ('not a spec', '0.3.0'),
])
def test_minimum_version(spec, version):
    assert _cdi.minimum_version(spec) == version


def test_version_needs_name_where():
    spec = spec_with(containerEdits={'intelRdt': {'enableMonitoring': True}, 'additionalGids': [1]},
                     devices=[device(name='g', netDevices=[{'hostInterfaceName': 'a', 'name': 'b'}])])
    assert _cdi.version_needs(spec) == [('1.1.0', 'device g: netDevices'), ('0.7.0', 'containerEdits: intelRdt'),
                                        ('1.1.0', 'containerEdits: intelRdt schemata and enableMonitoring'),
                                        ('0.7.0', 'containerEdits: additionalGids')]
    assert _cdi.version_needs(None) == []


# ---- driver versions a spec names ----------------------------------------------------------------

def test_driver_versions_from_device_mounts_in_version_order():
    spec = {'containerEdits': None, 'devices': [
        'junk',
        {'name': 'a', 'containerEdits': {'mounts': [{'hostPath': '/usr/lib/libcuda.so.580.10.1', 'containerPath': '/x'},
                                                    None]}},
        {'name': 'b', 'containerEdits': {'mounts': [{'hostPath': '/usr/lib/libnvidia-ml.so.580.9.1',
                                                     'containerPath': '/y'}]}},
    ]}
    assert _cdi.spec_driver_versions(spec) == ['580.9.1', '580.10.1']
    assert _cdi.stale_reason(spec, '580.9.1') == ('the spec mounts files of drivers 580.9.1, 580.10.1, the running '
                                                  'driver is 580.9.1')
    assert _cdi.spec_driver_versions([]) == []


def test_negative_device_numbers_after_truncation():
    nodes = [{'path': '/dev/a', 'major': -0.5, 'minor': -1.0}, {'path': '/dev/b', 'major': -2, 'minor': 0.9}]
    spec = spec_with(devices=[device(deviceNodes=nodes)])
    assert _cdi.check_spec(spec)[0] == ['device gpu0: deviceNode /dev/a has a negative minor',
                                        'device gpu0: deviceNode /dev/b has a negative major']
