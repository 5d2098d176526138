# -*- coding: utf-8 -*-
"""Crafted CDI specs, one rule each, with the verdict of the reference CDI library
(tags.cncf.io/container-device-interface): ``valid`` or ``invalid``.

tests/unit/test_cdi.py checks cdi_spec's validator (``_cdi.check_spec``) against the verdicts
here; tests/unit/test_cdi_peer.py runs every case through the library itself (cdi-verdict,
built by scripts/upstream.sh) and through ``cdi_spec validate_only``, so that a drift on
either side fails. ``words`` must appear in the problems (invalid) or in the advice (valid:
the project's stricter checks, which never make a spec invalid).

Paths on the host that must exist for ``validate_only`` are /dev/null and /bin/sh.
"""

from __future__ import absolute_import, division, print_function

import copy

_DROP = object()

GOOD = {'cdiVersion': '0.3.0', 'kind': 'nvidia.com/gpu',
        'devices': [{'name': 'gpu0', 'containerEdits': {'deviceNodes': [{'path': '/dev/null'}]}}]}


def _device(edits=None, name='gpu0', **extra):
    device = {'name': name, 'containerEdits': {'deviceNodes': [{'path': '/dev/null'}]} if edits is None else edits}
    device.update(extra)
    return device


def _spec(version=None, **top):
    """GOOD with cdiVersion ``version`` and the top-level fields given (_DROP removes one)."""
    spec = copy.deepcopy(GOOD)
    if version is not None:
        spec['cdiVersion'] = version
    for key, value in top.items():
        if value is _DROP:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def _node(**fields):
    node = {'path': '/dev/null'}
    node.update(fields)
    return _spec(devices=[_device({'deviceNodes': [node]})])


def _mount(version='0.3.0', **fields):
    return _spec(version, devices=[_device({'mounts': [fields]})])


def _hook(**fields):
    return _spec(devices=[_device({'hooks': [fields]})])


def _env(*entries):
    return _spec(devices=[_device({'env': list(entries)})])


_SH = '/bin/sh'

# (id, spec, verdict, words); spec is what gets written (YAML unless the id ends in -json).
CASES = [
    # -- cdiVersion: known versions from 0.3.0 on, a leading v is ignored
    ('version-0.3.0', _spec(), 'valid', None),
    ('version-0.1.0', _spec('0.1.0'), 'invalid', 'too old'),
    ('version-0.2.0', _spec('0.2.0'), 'invalid', 'too old'),
    ('version-v0.3.0', _spec('v0.3.0'), 'valid', None),
    ('version-0.9.0', _spec('0.9.0'), 'invalid', 'not one of'),
    ('version-2.0.0', _spec('2.0.0'), 'invalid', 'not one of'),
    ('version-missing', _spec(cdiVersion=_DROP), 'invalid', 'not one of'),
    ('version-1.1.0-higher-than-needed', _spec('1.1.0'), 'valid', 'higher than'),
    ('version-0.3.0-json', _spec(), 'valid', None),
    # -- versions per field: each newer field below and at the version it needs
    ('digit-name-0.4.0', _spec('0.4.0', devices=[_device(name='0')]), 'invalid', 'starts with a digit'),
    ('digit-name-0.5.0', _spec('0.5.0', devices=[_device(name='0')]), 'valid', None),
    ('digit-name-unquoted-0.5.0', _spec('0.5.0', devices=[_device(name=0)]), 'valid', None),
    ('node-hostPath-0.4.0', _spec('0.4.0', devices=[_device({'deviceNodes': [
        {'path': '/dev/nvidia0', 'hostPath': '/dev/null'}]})]), 'invalid', 'deviceNode hostPath'),
    ('node-hostPath-0.5.0', _spec('0.5.0', devices=[_device({'deviceNodes': [
        {'path': '/dev/nvidia0', 'hostPath': '/dev/null'}]})]), 'valid', None),
    ('mount-type-0.3.0', _mount('0.3.0', hostPath=_SH, containerPath='/x', type='bind'), 'invalid', 'mount type'),
    ('mount-type-0.4.0', _mount('0.4.0', hostPath=_SH, containerPath='/x', type='bind'), 'valid', None),
    ('annotations-0.5.0', _spec('0.5.0', annotations={'a': 'b'}), 'invalid', 'annotations'),
    ('annotations-0.6.0', _spec('0.6.0', annotations={'a': 'b'}), 'valid', None),
    ('annotations-empty-0.3.0', _spec(annotations={}), 'valid', None),
    ('device-annotations-0.5.0', _spec('0.5.0', devices=[_device(annotations={'x': 'y'})]), 'invalid', 'annotations'),
    ('device-annotations-0.6.0', _spec('0.6.0', devices=[_device(annotations={'x': 'y'})]), 'valid', None),
    ('class-dot-0.5.0', _spec('0.5.0', kind='nvidia.com/gpu.x'), 'invalid', 'in the class'),
    ('class-dot-0.6.0', _spec('0.6.0', kind='nvidia.com/gpu.x'), 'valid', None),
    ('intelRdt-0.6.0', _spec('0.6.0', devices=[_device({'intelRdt': {'closID': 'gpu'}})]), 'invalid', 'intelRdt'),
    ('intelRdt-0.7.0', _spec('0.7.0', devices=[_device({'intelRdt': {'closID': 'gpu'}})]), 'valid', None),
    ('additionalGids-0.6.0', _spec('0.6.0', devices=[_device({'additionalGids': [44]})]), 'invalid', 'additionalGids'),
    ('additionalGids-0.7.0', _spec('0.7.0', devices=[_device({'additionalGids': [44]})]), 'valid', None),
    ('intelRdt-schemata-1.0.0', _spec('1.0.0', devices=[_device({'intelRdt': {'schemata': ['L3:0=f']}})]),
     'invalid', 'schemata'),
    ('intelRdt-schemata-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {'schemata': ['L3:0=f']}})]),
     'valid', None),
    ('intelRdt-enableMonitoring-1.0.0', _spec('1.0.0', devices=[_device({'intelRdt': {'enableMonitoring': True}})]),
     'invalid', 'enableMonitoring'),
    ('intelRdt-enableMonitoring-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {'enableMonitoring': True}})]),
     'valid', None),
    ('intelRdt-enableMonitoring-false-0.7.0', _spec('0.7.0', devices=[_device({'intelRdt': {
        'closID': 'gpu', 'enableMonitoring': False}})]), 'valid', None),
    ('intelRdt-schemata-empty-1.0.0', _spec('1.0.0', devices=[_device({'intelRdt': {'schemata': []}})]),
     'invalid', 'schemata'),
    ('intelRdt-empty-0.6.0', _spec('0.6.0', devices=[_device({'intelRdt': {}})]), 'invalid', 'intelRdt'),
    ('intelRdt-empty-only-edit-0.7.0', _spec('0.7.0', devices=[_device({'intelRdt': {}})]), 'valid', None),
    ('intelRdt-null-0.3.0', _spec(devices=[_device({'deviceNodes': [{'path': '/dev/null'}], 'intelRdt': None})]),
     'valid', None),
    ('intelRdt-spec-level-0.6.0', _spec('0.6.0', containerEdits={'intelRdt': {'closID': 'gpu'}}), 'invalid',
     'intelRdt'),
    # The library's YAML decoder reads these words into a bool field, quoted or not (YAML 1.1
    # compatibility), and the version follows the value read; other strings and numbers it refuses.
    ('intelRdt-enableMonitoring-yes-string-1.0.0', _spec('1.0.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 'yes'}})]), 'invalid', 'enableMonitoring'),
    ('intelRdt-enableMonitoring-yes-string-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 'yes'}})]), 'valid', None),
    ('intelRdt-enableMonitoring-Y-string-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 'Y'}})]), 'valid', None),
    ('intelRdt-enableMonitoring-off-string-0.7.0', _spec('0.7.0', devices=[_device({'intelRdt': {
        'closID': 'gpu', 'enableMonitoring': 'off'}})]), 'valid', None),
    ('intelRdt-enableMonitoring-true-string-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 'true'}})]), 'invalid', 'true or false'),
    ('intelRdt-enableMonitoring-number-1.1.0', _spec('1.1.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 1}})]), 'invalid', 'true or false'),
    ('intelRdt-enableMonitoring-on-string-1.1.0-json', _spec('1.1.0', devices=[_device({'intelRdt': {
        'enableMonitoring': 'on'}})]), 'valid', None),
    ('netDevices-1.0.0', _spec('1.0.0', devices=[_device({'netDevices': [{'hostInterfaceName': 'eth1',
                                                                          'name': 'net1'}]})]),
     'invalid', 'netDevices'),
    ('netDevices-1.1.0', _spec('1.1.0', devices=[_device({'netDevices': [{'hostInterfaceName': 'eth1',
                                                                          'name': 'net1'}]})]),
     'valid', None),
    # -- kind: vendor/class
    ('kind-no-slash', _spec(kind='nvidia.com'), 'invalid', 'vendor/class'),
    ('kind-empty-vendor', _spec(kind='/gpu'), 'invalid', 'vendor/class'),
    ('kind-empty-class', _spec(kind='nvidia.com/'), 'invalid', 'vendor/class'),
    ('kind-two-slashes', _spec(kind='nvidia.com/gpu/x'), 'invalid', "class 'gpu/x'"),
    ('kind-missing', _spec(kind=_DROP), 'invalid', 'vendor/class'),
    ('vendor-digit-first', _spec(kind='1nvidia.com/gpu'), 'invalid', "vendor '1nvidia.com'"),
    ('vendor-dash-last', _spec(kind='nvidia.com-/gpu'), 'invalid', "vendor 'nvidia.com-'"),
    ('vendor-space', _spec(kind='nvidia com/gpu'), 'invalid', "vendor 'nvidia com'"),
    ('vendor-one-letter', _spec(kind='a/gpu'), 'valid', None),
    ('vendor-underscore', _spec(kind='nvidia_corp.com/gpu'), 'valid', 'DNS subdomain'),
    ('vendor-upper-case', _spec(kind='NVIDIA.com/gpu'), 'valid', 'DNS subdomain'),
    ('vendor-double-dot', _spec(kind='nvidia..com/gpu'), 'valid', 'DNS subdomain'),
    ('vendor-254-chars', _spec(kind='a' * 254 + '/gpu'), 'valid', 'DNS subdomain'),
    ('vendor-253-chars', _spec(kind='.'.join(['a' * 63] * 3 + ['b' * 61]) + '/gpu'), 'valid', None),
    ('class-dash-first', _spec(kind='nvidia.com/-gpu'), 'invalid', "class '-gpu'"),
    ('class-dash-last', _spec(kind='nvidia.com/gpu-'), 'invalid', "class 'gpu-'"),
    ('class-digit-first', _spec(kind='nvidia.com/1gpu'), 'invalid', "class '1gpu'"),
    ('class-underscore', _spec(kind='nvidia.com/gpu_x'), 'valid', None),
    ('class-64-chars', _spec(kind='nvidia.com/' + 'g' * 64), 'valid', 'longer than 63'),
    ('class-63-chars', _spec(kind='nvidia.com/' + 'g' * 63), 'valid', None),
    # -- device names
    ('digit-letter-name-0.4.0', _spec('0.4.0', devices=[_device(name='9x')]), 'invalid', 'starts with a digit'),
    ('digit-letter-name-0.5.0', _spec('0.5.0', devices=[_device(name='9x')]), 'valid', None),
    ('name-dash-last', _spec(devices=[_device(name='a-')]), 'invalid', 'device name'),
    ('name-colon-first', _spec(devices=[_device(name=':a')]), 'invalid', 'device name'),
    ('name-colon-inside', _spec(devices=[_device(name='mig:1g.10gb')]), 'valid', None),
    ('name-dot-inside', _spec(devices=[_device(name='gpu.0')]), 'valid', None),
    ('name-space', _spec(devices=[_device(name='gpu 0')]), 'invalid', 'device name'),
    ('name-empty', _spec(devices=[_device(name='')]), 'invalid', 'device name'),
    ('name-null', _spec(devices=[_device(name=None)]), 'invalid', 'device name'),
    ('name-not-ascii', _spec(devices=[_device(name=u'gp\u00fc')]), 'invalid', 'device name'),
    ('name-twice', _spec(devices=[_device(), _device()]), 'invalid', 'defined twice'),
    ('name-twice-json', _spec(devices=[_device(), _device()]), 'invalid', 'defined twice'),
    # -- devices and empty edits
    ('devices-missing', _spec(devices=_DROP), 'invalid', 'no devices'),
    ('devices-empty', _spec(devices=[]), 'invalid', 'no devices'),
    ('devices-null', _spec(devices=None), 'invalid', 'no devices'),
    ('devices-mapping', _spec(devices={'name': 'gpu0'}), 'invalid', 'must be a list'),
    ('device-null', _spec(devices=[None]), 'invalid', 'device name'),
    ('device-without-edits', _spec(devices=[{'name': 'gpu0'}]), 'invalid', 'no containerEdits'),
    ('device-empty-edits', _spec(devices=[_device({})]), 'invalid', 'no containerEdits'),
    ('device-empty-edits-json', _spec(devices=[_device({})]), 'invalid', 'no containerEdits'),
    ('device-empty-lists', _spec(devices=[_device({'env': [], 'mounts': []})]), 'invalid', 'no containerEdits'),
    ('device-env-only', _spec(devices=[_device({'env': ['A=1']})]), 'valid', None),
    ('device-annotations-only-0.6.0', _spec('0.6.0', devices=[{'name': 'gpu0', 'annotations': {'a': 'b'}}]),
     'invalid', 'no containerEdits'),
    # -- device nodes
    ('node-no-path', _spec(devices=[_device({'deviceNodes': [{'type': 'c'}]})]), 'invalid', 'has no path'),
    ('node-empty-path', _node(path=''), 'invalid', 'has no path'),
    ('node-relative-path', _node(path='dev/null'), 'valid', 'not an absolute path'),
    ('node-type-c', _node(type='c', major=1, minor=3), 'valid', None),
    ('node-type-z', _node(type='z'), 'invalid', 'type'),
    ('node-type-cc', _node(type='cc'), 'invalid', 'type'),
    ('node-major-negative', _node(major=-1), 'invalid', 'negative major'),
    ('node-minor-negative', _node(minor=-3), 'invalid', 'negative minor'),
    ('node-major-string', _node(major='a'), 'invalid', 'whole number'),
    ('node-major-bool', _node(major=True), 'invalid', 'whole number'),
    ('node-permissions-rw', _node(permissions='rw'), 'valid', None),
    ('node-permissions-mrw', _node(permissions='mrw'), 'valid', None),
    ('node-permissions-none', _node(permissions='none'), 'valid', None),
    ('node-permissions-rwx', _node(permissions='rwx'), 'invalid', 'permissions'),
    ('node-fileMode-uid-gid', _node(fileMode=438, uid=0, gid=44), 'valid', None),
    ('node-fileMode-max', _node(fileMode=4294967295), 'valid', None),
    ('node-uid-too-big', _node(uid=4294967296), 'invalid', 'whole number from 0'),
    # Numbers with a fraction: the library's decoder truncates them toward zero, then checks the range.
    ('node-fileMode-fraction', _node(fileMode=1.5), 'valid', None),
    ('node-fileMode-negative-half', _node(fileMode=-0.5), 'valid', None),
    ('node-uid-negative-fraction', _node(uid=-1.5), 'invalid', 'whole number from 0'),
    ('node-fileMode-max-fraction', _node(fileMode=4294967295.5), 'valid', None),
    ('node-fileMode-too-big-float', _node(fileMode=4294967296.0), 'invalid', 'whole number from 0'),
    ('node-major-fraction', _node(major=1.5), 'valid', None),
    ('node-major-negative-half', _node(major=-0.5), 'valid', None),
    ('node-minor-negative-float', _node(minor=-1.0), 'invalid', 'negative minor'),
    ('node-major-fraction-json', _node(major=2.0), 'valid', None),
    ('node-gid-negative', _node(gid=-1), 'invalid', 'whole number from 0'),
    ('node-null', _spec(devices=[_device({'deviceNodes': [None]})]), 'invalid', 'empty (null)'),
    ('node-unknown-field', _node(hostpath='/dev/null'), 'invalid', "unknown field 'hostpath'"),
    ('node-missing-on-host', _node(path='/dev/k3s-gpu-no-such-node'), 'valid', None),
    # -- mounts
    ('mount-good', _mount(hostPath=_SH, containerPath='/usr/bin/x', options=['ro', 'bind']), 'valid', None),
    ('mount-no-hostPath', _mount(containerPath='/x'), 'invalid', 'hostPath and containerPath'),
    ('mount-no-containerPath', _mount(hostPath=_SH), 'invalid', 'hostPath and containerPath'),
    ('mount-relative-containerPath', _mount(hostPath=_SH, containerPath='lib'), 'valid', 'not an absolute path'),
    ('mount-relative-hostPath', _mount(hostPath='bin/sh', containerPath='/x'), 'valid', 'not an absolute path'),
    ('mount-options-string', _mount(hostPath=_SH, containerPath='/x', options='ro'), 'invalid', 'must be a list'),
    ('mount-unknown-field', _mount(hostPath=_SH, containerPath='/x', readOnly=True), 'invalid',
     "unknown field 'readOnly'"),
    ('mount-null', _spec(devices=[_device({'mounts': [None]})]), 'invalid', 'empty (null)'),
    # -- hooks
    ('hook-good', _hook(hookName='createContainer', path=_SH, args=['sh', '-c', 'true'], env=['A=1'], timeout=5),
     'valid', None),
    ('hook-unknown-name', _hook(hookName='later', path=_SH), 'invalid', 'hook name'),
    ('hook-no-name', _hook(path=_SH), 'invalid', 'hook name'),
    ('hook-no-path', _hook(hookName='prestart'), 'invalid', 'has no path'),
    ('hook-relative-path', _hook(hookName='prestart', path='sh'), 'valid', 'not an absolute path'),
    ('hook-bad-env', _hook(hookName='poststop', path=_SH, env=['NOEQUALS']), 'invalid', 'NAME=value'),
    ('hook-timeout-string', _hook(hookName='prestart', path=_SH, timeout='5s'), 'invalid', 'whole number'),
    ('hook-timeout-fraction', _hook(hookName='prestart', path=_SH, timeout=3.7), 'valid', None),
    ('hook-unknown-field', _hook(hookName='prestart', path=_SH, when='always'), 'invalid', "unknown field 'when'"),
    # -- env
    ('env-no-equals', _env('NOEQUALS'), 'invalid', 'NAME=value'),
    ('env-empty-name', _env('=value'), 'invalid', 'NAME=value'),
    ('env-empty-value', _env('A='), 'valid', None),
    ('env-digit-first-name', _env('1A=x'), 'valid', 'a shell can use'),
    ('env-space-in-name', _env('A B=x'), 'valid', 'a shell can use'),
    ('env-empty-name-equals-in-value', _env('=A=1'), 'invalid', 'NAME=value'),
    ('env-equals-in-value', _env('A=b=c'), 'valid', None),
    ('env-not-a-list', _spec(devices=[_device({'env': 'A=1'})]), 'invalid', 'must be a list'),
    ('env-at-spec-level', _spec(containerEdits={'env': ['NOEQUALS']}), 'invalid', 'NAME=value'),
    # -- spec-level containerEdits
    ('edits-empty', _spec(containerEdits={}), 'valid', None),
    ('edits-null', _spec(containerEdits=None), 'valid', None),
    ('edits-string', _spec(containerEdits='x'), 'invalid', 'must be a mapping'),
    ('edits-unknown-field', _spec(containerEdits={'bogus': []}), 'invalid', "unknown field 'bogus'"),
    ('edits-gid-negative-0.7.0', _spec('0.7.0', containerEdits={'additionalGids': [-1]}), 'invalid',
     'whole number from 0'),
    ('edits-gid-fraction-0.7.0', _spec('0.7.0', containerEdits={'additionalGids': [1.5, 2]}), 'valid', None),
    ('edits-intelRdt-closID-dotdot', _spec('0.7.0', containerEdits={'intelRdt': {'closID': '..'}}), 'invalid',
     'closID'),
    ('edits-intelRdt-closID-root', _spec('0.7.0', containerEdits={'intelRdt': {'closID': '/'}}), 'valid', None),
    ('edits-intelRdt-closID-empty', _spec('0.7.0', containerEdits={'intelRdt': {'closID': ''}}), 'valid', None),
    ('edits-intelRdt-closID-dot', _spec('0.7.0', containerEdits={'intelRdt': {'closID': '.'}}), 'invalid', 'closID'),
    ('edits-intelRdt-closID-slash', _spec('0.7.0', containerEdits={'intelRdt': {'closID': 'a/b'}}), 'invalid',
     'closID'),
    ('edits-intelRdt-closID-newline', _spec('0.7.0', containerEdits={'intelRdt': {'closID': 'a\nb'}}), 'invalid',
     'closID'),
    ('edits-intelRdt-closID-4095', _spec('0.7.0', containerEdits={'intelRdt': {'closID': 'c' * 4095}}), 'valid',
     None),
    ('edits-intelRdt-closID-4096', _spec('0.7.0', containerEdits={'intelRdt': {'closID': 'c' * 4096}}), 'invalid',
     'closID'),
    ('edits-netDevice-twice', _spec('1.1.0', containerEdits={'netDevices': [
        {'hostInterfaceName': 'eth1', 'name': 'net1'}, {'hostInterfaceName': 'eth1', 'name': 'net2'}]}),
     'invalid', 'repeats'),
    ('edits-netDevice-no-name', _spec('1.1.0', containerEdits={'netDevices': [{'hostInterfaceName': 'eth1'}]}),
     'invalid', 'needs hostInterfaceName and name'),
    # -- unknown fields and types elsewhere
    ('top-unknown-field', _spec(extra=1), 'invalid', "unknown field 'extra'"),
    ('device-unknown-field', _spec(devices=[_device(extra=1)]), 'invalid', "unknown field 'extra'"),
    ('device-edits-typo', _spec(devices=[{'name': 'gpu0', 'containerEdit': {'env': ['A=1']}}]), 'invalid',
     "unknown field 'containerEdit'"),
    ('annotations-list-0.6.0', _spec('0.6.0', annotations=['a']), 'invalid', 'must be a mapping'),
    ('annotations-nested-0.6.0', _spec('0.6.0', annotations={'a': {'b': 'c'}}), 'invalid', 'must be a string'),
    ('annotations-number-0.6.0', _spec('0.6.0', annotations={'a': 1}), 'valid', None),
]

# Specs the library does not refuse but panics on (specs-go MinimumRequiredVersion follows a null
# list item: a nil pointer dereference), seen with container-device-interface v1.1.2 and specs-go
# v1.1.1. A consumer reading such a file crashes; cdi_spec calls it invalid.
LIBRARY_PANICS = {'node-null', 'mount-null'}

# node-missing-on-host is valid for the library; validate_only also checks the host.
HOST_PROBLEMS = {'node-missing-on-host': 'does not exist on the host'}


def fmt(case_id):
    return 'json' if case_id.endswith('-json') else 'yaml'
