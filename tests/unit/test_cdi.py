# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

import json
import os

import pytest

import cdi_cases
import fake_driver
from conftest import fixture_path, script
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_spec
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml
from ansible_collections.k3s_gpu.cluster.plugins.modules import cdi_spec as mod

UUID = 'GPU-89fcfae2-3b36-7d29-858e-7396743c537e'


@pytest.fixture
def host(tmp_path):
    """A stand-in driver tree (fake_driver) plus a stand-in nvidia-smi printing the H100 capture."""
    root = str(tmp_path / 'root')
    fake_driver.build(root)
    calls = tmp_path / 'smi-calls'
    smi = script(tmp_path / 'nvidia-smi', 'echo "$@" >> %s\ncat %s' % (
        calls, fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml')))

    class Host(object):
        spec_path = tmp_path / 'cdi' / 'nvidia.yaml'

        @staticmethod
        def args(**extra):
            args = dict(path=str(Host.spec_path), backend='native', driver_root=root, dev_root=root,
                        nvidia_smi_path=smi)
            args.update(extra)
            return args
    Host.root = root
    Host.smi = smi
    Host.calls = calls
    Host.tmp = tmp_path
    return Host


def test_native_spec_for_the_h100_layout(host, run_module):
    result, failed = run_module(mod, host.args(), diff=True)
    assert not failed, result
    assert result['changed'] and result['backend'] == 'native' and result['problems'] == []
    assert result['driver_version'] == '580.159.04'
    assert result['devices'] == ['nvidia.com/gpu=0', 'nvidia.com/gpu=%s' % UUID, 'nvidia.com/gpu=all']
    assert host.calls.read_text().splitlines() == ['-q -x']  # nvidia-smi ran once
    spec = _yaml.loads(host.spec_path.read_text())
    assert spec == result['spec']
    # The lowest version for its fields: names starting with a digit and deviceNode hostPath (0.5.0).
    assert spec['cdiVersion'] == '0.5.0' and spec['kind'] == 'nvidia.com/gpu'
    assert 'annotations' not in spec
    assert _cdi.spec_driver_version(spec) == '580.159.04'  # read back from the library names
    assert spec['devices'][0]['containerEdits']['deviceNodes'] == [
        {'path': '/dev/nvidia0', 'hostPath': os.path.join(host.root, 'dev/nvidia0')}]
    edits = spec['containerEdits']
    # MIG mode is off: none of /dev/nvidia-caps (config nvidia-cap1, monitor nvidia-cap2 exist).
    assert [n['path'] for n in edits['deviceNodes']] == ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']
    assert os.path.exists(os.path.join(host.root, 'dev/nvidia-caps/nvidia-cap1'))
    assert not any('nvidia-caps' in n['path'] for d in spec['devices'] for n in d['containerEdits']['deviceNodes'])
    mounts = {m['containerPath']: m for m in edits['mounts']}
    lib64 = os.path.join(host.root, 'usr/local/nvidia/lib64')
    assert mounts['/usr/local/nvidia/lib64/libcuda.so.1']['hostPath'] == os.path.join(lib64, 'libcuda.so.580.159.04')
    assert mounts['/usr/local/nvidia/lib64/libnvidia-ml.so.1']['options'] == ['ro', 'nosuid', 'nodev', 'bind']
    # A library whose SONAME carries the full version is mounted under that name.
    assert '/usr/local/nvidia/lib64/libnvidia-tls.so.580.159.04' in mounts
    assert len([m for m in mounts if m.startswith('/usr/local/nvidia/lib64/')]) == 26
    assert mounts['/usr/local/nvidia/bin/nvidia-smi']['hostPath'] == os.path.join(host.root,
                                                                                  'usr/local/nvidia/bin/nvidia-smi')
    assert len([m for m in mounts if m.startswith('/usr/local/nvidia/bin/')]) == 5
    assert '/lib/firmware/nvidia/580.159.04/gsp_ga10x.bin' in mounts
    assert edits['env'] == ['NVIDIA_VISIBLE_DEVICES=void']
    assert 'hooks' not in edits
    assert _cdi.validate_spec(spec, check_paths=True) == []
    assert result['diff']['before'] == '' and 'libcuda.so.1' in result['diff']['after']


def test_second_run_changes_nothing(host, run_module):
    run_module(mod, host.args())
    first = host.spec_path.read_text()
    result, failed = run_module(mod, host.args())
    assert not failed and not result['changed'] and result['reason'] == 'the spec is up to date'
    assert host.spec_path.read_text() == first


def test_semantic_comparison_ignores_format_and_order(host, run_module):
    result, _failed = run_module(mod, host.args())
    reordered = dict(reversed(list(result['spec'].items())))
    host.spec_path.write_text(json.dumps(reordered))
    again, failed = run_module(mod, host.args())
    assert not failed and not again['changed']
    assert host.spec_path.read_text() == json.dumps(reordered)


def test_check_mode_writes_nothing(host, run_module):
    result, failed = run_module(mod, host.args(), check_mode=True)
    assert not failed and result['changed'] and not host.spec_path.exists()


def test_stale_spec_after_driver_upgrade_is_regenerated(host, run_module):
    run_module(mod, host.args())
    old = host.spec_path.read_text().replace('580.159.04', '570.86.15')
    assert 'annotations' not in old  # the driver is told by the file names alone
    host.spec_path.write_text(old)
    check, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and not check['changed']
    assert any('made for driver 570.86.15' in p for p in check['problems'])
    assert any('does not exist' in p for p in check['problems'])  # libs *.so.570.86.15 are gone
    assert host.spec_path.read_text() == old
    result, failed = run_module(mod, host.args(backup=True))
    assert not failed and result['changed']
    assert result['reason'] == 'the spec was made for driver 570.86.15, the running driver is 580.159.04'
    assert '570.86.15' in open(result['backup_file']).read()
    assert '570.86.15' not in host.spec_path.read_text()


def test_validate_only_foreign_spec_lists_problems(host, run_module):
    host.spec_path.parent.mkdir(parents=True)
    host.spec_path.write_text('cdiVersion: 0.3.0\nkind: nvidia.com\ndevices:\n- name: "0"\n  containerEdits:\n'
                              '    mounts:\n    - hostPath: /nonexistent/libcuda.so.1\n      containerPath: lib\n')
    result, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and not result['changed']
    problems = ' | '.join(result['problems'])
    assert 'vendor/class' in problems
    assert "starts with a digit" in problems
    assert '/nonexistent/libcuda.so.1 does not exist' in problems
    # Valid for the CDI library, stricter for the project: advice (and a warning), not a problem.
    assert 'not absolute' not in problems
    assert result['advice'] == ['device 0: mount containerPath lib is not an absolute path']


def test_validate_only_without_spec_or_unreadable(host, run_module):
    result, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and result['problems'] == ['there is no spec at %s' % host.spec_path]
    host.spec_path.parent.mkdir(parents=True)
    host.spec_path.write_text('a: [unclosed\n')
    result, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and 'cannot read' in result['problems'][0]
    result, failed = run_module(mod, host.args())
    assert not failed and result['changed'] and result['reason'].startswith('cannot read')


def test_json_format_and_mode(host, run_module):
    result, failed = run_module(mod, host.args(format='json', mode='0600'))
    assert not failed
    assert json.loads(host.spec_path.read_text()) == result['spec']
    assert oct(os.stat(str(host.spec_path)).st_mode & 0o777) == '0o600'


def test_name_strategy_and_kind(host, run_module):
    result, failed = run_module(mod, host.args(device_name_strategy=['uuid'], vendor='example.com', **{'class': 'gpu-x'}))
    assert not failed
    assert result['devices'] == ['example.com/gpu-x=%s' % UUID, 'example.com/gpu-x=all']


def test_state_absent(host, run_module):
    run_module(mod, host.args())
    result, failed = run_module(mod, host.args(state='absent'))
    assert not failed and result['changed'] and not host.spec_path.exists()
    result, failed = run_module(mod, host.args(state='absent'))
    assert not failed and not result['changed']


def test_without_nvidia_smi_uses_dev_and_library_names(host, run_module, monkeypatch):
    monkeypatch.setenv('PATH', str(host.tmp / 'empty'))
    monkeypatch.setattr('ansible_collections.k3s_gpu.cluster.plugins.module_utils._nvidia_smi.SEARCH_DIRS', [])
    fake_driver_dev = os.path.join(host.root, 'dev')
    open(os.path.join(fake_driver_dev, 'nvidia1'), 'w').close()
    args = host.args()
    del args['nvidia_smi_path']
    result, failed = run_module(mod, args)
    assert not failed, result
    assert result['driver_version'] == '580.159.04'
    assert result['devices'] == ['nvidia.com/gpu=0', 'nvidia.com/gpu=1', 'nvidia.com/gpu=all']


def test_nvidia_smi_failure_stops_before_writing(host, run_module):
    smi = script(host.tmp / 'smi-bad', 'echo "Failed to initialize NVML: Driver/library version mismatch"; exit 18')
    result, failed = run_module(mod, host.args(nvidia_smi_path=smi))
    assert failed and 'Reboot' in result['msg'] and not host.spec_path.exists()


def test_no_gpu_nodes_fails(host, run_module):
    os.unlink(os.path.join(host.root, 'dev/nvidia0'))
    result, failed = run_module(mod, host.args())
    assert failed and 'no NVIDIA GPU device node' in result['msg'] and not host.spec_path.exists()


def test_no_libraries_fails_naming_dirs(host, run_module, tmp_path):
    xml = fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml')
    smi = script(tmp_path / 'smi-other', 'sed s/580.159.04/999.1.2/ %s' % xml)
    result, failed = run_module(mod, host.args(nvidia_smi_path=smi))
    assert failed and 'lib*.so.999.1.2' in result['msg'] and 'library_dirs' in result['msg']


def test_library_dirs_extra_folder(host, run_module, tmp_path):
    extra = os.path.join(host.root, 'opt/drv')
    os.makedirs(extra)
    open(os.path.join(extra, 'libnvidia-extra.so.580.159.04'), 'w').close()
    result, failed = run_module(mod, host.args(library_dirs=['/opt/drv']))
    assert not failed
    assert any(m['containerPath'] == '/usr/local/nvidia/lib64/libnvidia-extra.so.580.159.04'
               for m in result['spec']['containerEdits']['mounts'])


# ---- nvidia-ctk backend -----------------------------------------------------------------------

def fake_ctk(host, spec_text, rc=0):
    """Stand-in nvidia-ctk (not NVIDIA's): records its arguments, writes spec_text to --output."""
    (host.tmp / 'ctk-spec.yaml').write_text(spec_text)
    return script(host.tmp / 'nvidia-ctk', '''echo "$@" > %s/ctk-args
for a in "$@"; do case "$a" in --output=*) cp %s/ctk-spec.yaml "${a#--output=}";; esac; done
exit %d''' % (host.tmp, host.tmp, rc))


CTK_SPEC = '''---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: %(root)s/dev/nvidia0
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  hooks:
  - hookName: createContainer
    path: %(ctk)s
    args:
    - nvidia-ctk
    - hook
    - update-ldcache
  mounts:
  - hostPath: %(root)s/usr/local/nvidia/lib64/libcuda.so.580.159.04
    containerPath: /usr/local/nvidia/lib64/libcuda.so.580.159.04
    options:
    - ro
    - nosuid
    - nodev
    - bind
'''


def test_ctk_backend_declares_lowest_version_and_is_idempotent(host, run_module):
    ctk_path = str(host.tmp / 'nvidia-ctk')
    ctk = fake_ctk(host, CTK_SPEC % {'root': host.root, 'ctk': ctk_path})
    result, failed = run_module(mod, host.args(backend='auto', nvidia_ctk_path=ctk))
    assert not failed, result
    assert result['backend'] == 'nvidia-ctk' and result['changed']
    args = (host.tmp / 'ctk-args').read_text().split()
    assert args[:2] == ['cdi', 'generate']
    assert '--driver-root=%s' % host.root in args and '--device-name-strategy=uuid' in args
    spec = _yaml.loads(host.spec_path.read_text())
    assert spec == _yaml.loads(CTK_SPEC % {'root': host.root, 'ctk': ctk_path})  # written as nvidia-ctk made it
    assert spec['cdiVersion'] == '0.5.0' and 'annotations' not in spec
    assert spec['containerEdits']['hooks'][0]['hookName'] == 'createContainer'
    again, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=ctk))
    assert not failed and not again['changed']


def test_ctk_backend_output_lowered_to_the_version_it_needs(host, run_module):
    ctk_path = str(host.tmp / 'nvidia-ctk')
    ctk = fake_ctk(host, CTK_SPEC.replace('cdiVersion: 0.5.0', 'cdiVersion: 0.8.0') % {'root': host.root, 'ctk': ctk_path})
    result, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=ctk))
    assert not failed, result
    assert _yaml.loads(host.spec_path.read_text())['cdiVersion'] == '0.5.0'


def test_ctk_backend_output_for_another_driver_is_refused(host, run_module):
    ctk = fake_ctk(host, CTK_SPEC.replace('580.159.04', '570.86.15') % {'root': host.root, 'ctk': '/bin/true'})
    result, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=ctk))
    assert failed and 'made for driver 570.86.15' in result['msg'] and not host.spec_path.exists()


def test_ctk_backend_failure_and_invalid_output(host, run_module):
    ctk = fake_ctk(host, 'x', rc=1)
    result, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=ctk))
    assert failed and 'nvidia-ctk cdi generate failed' in result['msg']
    ctk = fake_ctk(host, CTK_SPEC.replace('/dev/nvidia0\n', '/dev/nvidia7\n') % {'root': host.root, 'ctk': '/bin/true'})
    result, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=ctk))
    assert failed and 'nvidia7 does not exist' in result['msg'] and not host.spec_path.exists()


def test_ctk_backend_missing(host, run_module):
    result, failed = run_module(mod, host.args(backend='nvidia-ctk', nvidia_ctk_path=str(host.tmp / 'none')))
    assert failed and 'backend=native' in result['msg']


# ---- validator ----------------------------------------------------------------------------------
# The crafted specs and the CDI library's verdicts: tests/unit/cdi_cases.py. The library itself
# judges the same table in test_cdi_peer.py.

GOOD = cdi_cases.GOOD


@pytest.mark.parametrize('case_id,spec,verdict,words', cdi_cases.CASES, ids=[c[0] for c in cdi_cases.CASES])
def test_validator_gives_the_library_verdict(case_id, spec, verdict, words):
    problems, advice = _cdi.check_spec(spec)
    assert ('invalid' if problems else 'valid') == verdict, (problems, advice)
    assert _cdi.validate_spec(spec) == problems
    if words:
        assert any(words in p for p in (problems if verdict == 'invalid' else advice)), (problems, advice)
    if verdict == 'valid' and not words:
        assert advice == []


def test_validator_checks_host_paths():
    assert _cdi.validate_spec('x') == ['the spec is not a mapping (YAML or JSON object)']
    spec = dict(GOOD, containerEdits={'hooks': [{'hookName': 'prestart', 'path': '/nope'}],
                                      'mounts': [{'hostPath': '/nope2', 'containerPath': '/y'},
                                                 {'hostPath': 'relative', 'containerPath': '/z'}]})
    problems, advice = _cdi.check_spec(spec, check_paths=True, exists=lambda p: False)
    assert len(problems) == 3  # /dev/null, /nope2 and /nope; relative paths are not checked
    assert advice == ['containerEdits: mount source relative is not an absolute path (it cannot be checked on the host)']


def test_spec_driver_version_from_library_names():
    spec = {'containerEdits': {'mounts': [{'hostPath': '/usr/lib/libcuda.so.570.86.15', 'containerPath': '/x'}]}}
    assert _cdi.spec_driver_version(spec) == '570.86.15'
    assert _cdi.spec_driver_version(None) is None
    assert _cdi.stale_reason(spec, '570.86.15') is None
    assert _cdi.stale_reason(spec, None) is None
    assert _cdi.stale_reason(spec, '580.159.04') == 'the spec was made for driver 570.86.15, the running driver is 580.159.04'


@pytest.mark.parametrize('path,version', [
    ('/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04', '580.159.04'),
    ('/usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04', '580.159.04'),
    ('/usr/lib64/libGLX_nvidia.so.390.157', '390.157'),
    ('/nix/store/abc-nvidia-x11-570.86.15/lib/libnvcuvid.so.570.86.15', '570.86.15'),
    ('/lib/firmware/nvidia/535.104.05/gsp_ga10x.bin', '535.104.05'),
    ('/usr/local/nvidia/firmware/nvidia/580.159.04/gsp_tu10x.bin', '580.159.04'),
    # Not the driver's version: libraries versioned on their own, SONAMEs, other files.
    ('/usr/lib/x86_64-linux-gnu/libnvidia-egl-wayland.so.1.1.13', None),
    ('/usr/lib/x86_64-linux-gnu/libnvidia-egl-gbm.so.1.1.2', None),
    ('/usr/lib/x86_64-linux-gnu/libcuda.so.1', None),
    ('/usr/local/cuda/lib64/libcublas.so.12.8.4.1', None),
    ('/usr/share/nvidia/nvoptix.bin', None),
    ('/run/nvidia-persistenced/socket', None),
    (None, None),
])
def test_driver_version_of_path(path, version):
    assert _cdi.driver_version_of_path(path) == version


NVIDIA_CTK_570 = '''---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
- name: all
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  deviceNodes:
  - path: /dev/nvidiactl
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
    args:
    - nvidia-ctk
    - hook
    - create-symlinks
    - --link
    - libcuda.so.570.86.15::/usr/lib/x86_64-linux-gnu/libcuda.so
  mounts:
  - hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.570.86.15
    containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.570.86.15
    options: [ro, nosuid, nodev, bind]
  - hostPath: /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.86.15
    containerPath: /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.86.15
    options: [ro, nosuid, nodev, bind]
  - hostPath: /usr/lib/x86_64-linux-gnu/libnvidia-egl-wayland.so.1.1.13
    containerPath: /usr/lib/x86_64-linux-gnu/libnvidia-egl-wayland.so.1.1.13
    options: [ro, nosuid, nodev, bind]
  - hostPath: /lib/firmware/nvidia/570.86.15/gsp_ga10x.bin
    containerPath: /lib/firmware/nvidia/570.86.15/gsp_ga10x.bin
    options: [ro, nosuid, nodev, bind]
'''


def test_nvidia_ctk_spec_without_annotations_is_detected_stale(host, run_module):
    # A spec shaped like `nvidia-ctk cdi generate` output (written for this test, not captured),
    # made before a driver upgrade: no annotation, only the file names tell the driver.
    spec = _yaml.loads(NVIDIA_CTK_570)
    assert _cdi.spec_driver_versions(spec) == ['570.86.15']  # egl-wayland's 1.1.13 is not a driver
    assert _cdi.validate_spec(spec) == []
    host.spec_path.parent.mkdir(parents=True)
    host.spec_path.write_text(NVIDIA_CTK_570)
    check, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and not check['changed']
    assert 'the spec was made for driver 570.86.15, the running driver is 580.159.04: regenerate it' in check['problems']
    assert host.spec_path.read_text() == NVIDIA_CTK_570
    result, failed = run_module(mod, host.args())
    assert not failed and result['changed']
    assert result['reason'] == 'the spec was made for driver 570.86.15, the running driver is 580.159.04'
    assert _cdi.spec_driver_versions(_yaml.loads(host.spec_path.read_text())) == ['580.159.04']


def test_spec_with_files_of_two_drivers_is_stale():
    spec = _yaml.loads(NVIDIA_CTK_570)
    spec['containerEdits']['mounts'].append({'hostPath': '/usr/lib/libcuda.so.580.159.04', 'containerPath': '/x'})
    assert _cdi.spec_driver_version(spec) is None
    assert _cdi.stale_reason(spec, '580.159.04') == ('the spec mounts files of drivers 570.86.15, 580.159.04, the '
                                                     'running driver is 580.159.04')


def legacy(spec, driver='580.159.04'):
    """What cdi_spec wrote before this version: cdiVersion 0.6.0 and its annotations."""
    old = dict(spec, cdiVersion='0.6.0')
    old['annotations'] = {_cdi.LEGACY_ANNOTATION_DRIVER: driver,
                          'cdi.k3s-gpu.io/generator': 'k3s_gpu.cluster.cdi_spec native'}
    return old


def test_spec_of_the_earlier_module_version_is_rewritten_as_0_5_0(host, run_module):
    first, _failed = run_module(mod, host.args())
    host.spec_path.write_text(_yaml.dump(legacy(first['spec'])))
    check, failed = run_module(mod, host.args(validate_only=True))
    assert not failed and check['problems'] == []  # a valid spec, for the running driver
    result, failed = run_module(mod, host.args(backup=True))
    assert not failed and result['changed']
    assert result['reason'] == ('the spec was written by an earlier cdi_spec (cdiVersion 0.6.0 with annotations); it is '
                                'rewritten with cdiVersion 0.5.0, which consumers with an older CDI library read')
    spec = _yaml.loads(host.spec_path.read_text())
    assert spec == first['spec'] and spec['cdiVersion'] == '0.5.0' and 'annotations' not in spec
    assert _cdi.LEGACY_ANNOTATION_DRIVER in open(result['backup_file']).read()
    again, failed = run_module(mod, host.args())
    assert not failed and not again['changed']


def test_legacy_spec_for_an_older_driver_is_reported_stale(host, run_module):
    first, _failed = run_module(mod, host.args())
    old = _yaml.loads(_yaml.dump(legacy(first['spec'], '570.86.15')).replace('580.159.04', '570.86.15'))
    host.spec_path.write_text(_yaml.dump(old))
    result, failed = run_module(mod, host.args())
    assert not failed and result['changed']
    assert result['reason'] == 'the spec was made for driver 570.86.15, the running driver is 580.159.04'
    # Without any driver file, the annotation an earlier cdi_spec wrote still tells the driver.
    bare = {'cdiVersion': '0.6.0', 'kind': 'nvidia.com/gpu', 'annotations': {_cdi.LEGACY_ANNOTATION_DRIVER: '570.86.15'},
            'devices': [{'name': 'all', 'containerEdits': {'deviceNodes': [{'path': '/dev/nvidia0'}]}}]}
    assert _cdi.spec_driver_version(bare) == '570.86.15'


def test_minimum_version_follows_the_fields_used(tmp_path):
    assert _cdi.minimum_version(GOOD) == '0.3.0'
    assert _cdi.minimum_version(dict(GOOD, devices=[{'name': '0', 'containerEdits': {}}])) == '0.5.0'
    assert _cdi.minimum_version(dict(GOOD, annotations={'a': 'b'})) == '0.6.0'
    assert _cdi.minimum_version(dict(GOOD, containerEdits={'additionalGids': [44]})) == '0.7.0'
    assert _cdi.minimum_version(dict(GOOD, containerEdits={'netDevices': [{'name': 'x'}]})) == '1.1.0'
    assert _cdi.minimum_version(dict(GOOD, annotations={})) == '0.3.0'  # empty, as the CDI library counts
    root = fake_driver.build(str(tmp_path / 'r'))
    found = _cdi.discover(root, root, [], fake_driver.VERSION, None)
    # Devices named by UUID only, nodes at their own paths: nothing beyond 0.3.0.
    uuid_only = _cdi.build_spec(dict(found, gpus=[dict(g, uuid=UUID) for g in found['gpus']]), strategies=('uuid',))
    assert uuid_only['cdiVersion'] == '0.3.0' and _cdi.validate_spec(uuid_only) == []
    assert _cdi.build_spec(found, strategies=('index',))['cdiVersion'] == '0.5.0'
    assert _cdi.build_spec(dict(found, gpus=[dict(g, uuid=UUID) for g in found['gpus']]), strategies=('uuid',),
                           dev_root=root)['cdiVersion'] == '0.5.0'  # deviceNode hostPath


def test_elf_soname_of_a_real_library():
    import ctypes.util
    candidates = ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/libc.so.6']
    path = next((c for c in candidates if os.path.exists(c)), None)
    if path is None:
        pytest.skip('no libc.so.6 at a known path (%s)' % ctypes.util.find_library('c'))
    assert _cdi.elf_soname(path) == 'libc.so.6'
    assert _cdi.elf_soname(fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml')) is None


def test_native_generation_for_eight_gpus(tmp_path):
    # How long this takes is measured by tests/perf/bench_modules.py (budget 1 s), not here.
    root = fake_driver.build(str(tmp_path / 'r'), gpus=8)
    found = _cdi.discover(root, root, [], fake_driver.VERSION, None)
    spec = _cdi.build_spec(found, dev_root=root)
    assert [d['name'] for d in spec['devices']] == [str(i) for i in range(8)] + ['all']
    assert [n['path'] for n in spec['devices'][-1]['containerEdits']['deviceNodes']] == \
        ['/dev/nvidia%d' % i for i in range(8)]


# ---- YAML without PyYAML --------------------------------------------------------------------------

def test_yaml_subset_reads_pyyaml_and_own_output(host, run_module):
    yaml = pytest.importorskip('yaml')
    result, _failed = run_module(mod, host.args())
    text = host.spec_path.read_text()
    assert _yaml.loads(text, force_subset=True) == result['spec'] == yaml.safe_load(text)
    go_style = yaml.safe_dump(result['spec'], default_flow_style=False)
    assert _yaml.loads(go_style, force_subset=True) == result['spec']
    ctk = CTK_SPEC % {'root': '/r', 'ctk': '/usr/bin/nvidia-ctk'}
    assert _yaml.loads(ctk, force_subset=True) == yaml.safe_load(ctk)


@pytest.mark.parametrize('text', ['a: [1, 2]\n', 'a: 1\na: 2\n', 'a:\n    b: 1\n  c: 2\n', 'a b\n', '- a\n  - b\n',
                                  "a: 'x\n", 'a: "x\n', '\ta: 1\n'])
def test_yaml_subset_rejects(text):
    with pytest.raises(_yaml.YamlError):
        _yaml.loads(text, force_subset=True)


def test_yaml_scalars_round_trip():
    value = {'s': ['yes', 'no', '1.0', '', 'a: b', '#x', 'null', 'x y', "it's"], 'n': [1, 1.5, None, True], 'e': {}}
    text = _yaml.dump(value)
    assert _yaml.loads(text, force_subset=True) == value


# ---- /dev/nvidia-caps ---------------------------------------------------------------------------

def cap_nodes(edits):
    return [n['path'] for n in edits['deviceNodes'] if 'nvidia-caps' in n['path']]


@pytest.fixture
def proc(tmp_path, monkeypatch):
    """A stand-in /proc/driver/nvidia/capabilities (fake_driver.build_mig_proc) for the module."""
    root = str(tmp_path / 'proc-root')
    monkeypatch.setattr(_cdi, 'PROC_ROOT', root)
    return root


def test_caps_monitor_and_config_only_when_asked(host, run_module, proc):
    fake_driver.build_mig_proc(proc, host.root)
    result, failed = run_module(mod, host.args(caps=['mig-monitor']))
    assert not failed, result
    assert cap_nodes(result['spec']['containerEdits']) == ['/dev/nvidia-caps/nvidia-cap2']
    result, failed = run_module(mod, host.args(caps=['mig-config', 'mig-monitor']))
    assert not failed and result['changed']
    assert cap_nodes(result['spec']['containerEdits']) == ['/dev/nvidia-caps/nvidia-cap2', '/dev/nvidia-caps/nvidia-cap1']
    result, failed = run_module(mod, host.args(caps=[]))
    assert not failed and result['changed'] and cap_nodes(result['spec']['containerEdits']) == []


def test_caps_minor_read_from_proc(host, tmp_path):
    proc = str(tmp_path / 'p')
    fake_driver.build_mig_proc(proc, host.root)
    with open(os.path.join(proc, 'proc/driver/nvidia/capabilities/mig/monitor'), 'w') as handle:
        handle.write('DeviceFileMinor: 7\nDeviceFileMode: 292\n')
    open(os.path.join(host.root, 'dev/nvidia-caps/nvidia-cap7'), 'w').close()
    found = _cdi.discover(host.root, host.root, [], fake_driver.VERSION, None, caps=['mig-monitor'], proc_root=proc)
    assert found['caps'] == ['/dev/nvidia-caps/nvidia-cap7']
    with pytest.raises(ValueError):
        _cdi.discover(host.root, host.root, [], fake_driver.VERSION, None, caps=['everything'])


def test_caps_missing_node_fails_before_writing(host, run_module, proc):
    fake_driver.build_mig_proc(proc, host.root)
    os.unlink(os.path.join(host.root, 'dev/nvidia-caps/nvidia-cap1'))
    result, failed = run_module(mod, host.args(caps=['mig-access', 'mig-config']))
    assert failed and not host.spec_path.exists()
    assert 'mig-config is in caps but its device node /dev/nvidia-caps/nvidia-cap1 does not exist' in result['msg']
    assert 'nvidia-modprobe -f /proc/driver/nvidia/capabilities/mig/config' in result['msg']


def test_mig_access_caps_go_to_their_gpu_only(host, run_module, proc, monkeypatch):
    # GPU 0 in MIG mode with two GPU instances (one with a compute instance); GPU 1 (minor 1) not.
    open(os.path.join(host.root, 'dev/nvidia1'), 'w').close()
    gpus = [{'index': 0, 'uuid': UUID, 'minor_number': 0}, {'index': 1, 'uuid': 'GPU-1', 'minor_number': 1}]
    monkeypatch.setattr(_cdi_spec, 'host_facts', lambda module: ('580.159.04', gpus))
    fake_driver.build_mig_proc(proc, host.root, 0, {1: {'minor': 12, 'cis': {0: 13}}, 2: {'minor': 21}})
    result, failed = run_module(mod, host.args())
    assert not failed, result
    devices = {d['name']: d['containerEdits'] for d in result['spec']['devices']}
    want = ['/dev/nvidia-caps/nvidia-cap12', '/dev/nvidia-caps/nvidia-cap13', '/dev/nvidia-caps/nvidia-cap21']
    assert cap_nodes(devices['0']) == cap_nodes(devices[UUID]) == want
    assert cap_nodes(devices['1']) == cap_nodes(devices['GPU-1']) == []
    assert [n['path'] for n in devices['all']['deviceNodes']] == ['/dev/nvidia0'] + want + ['/dev/nvidia1']
    assert cap_nodes(result['spec']['containerEdits']) == []  # neither config nor monitor
    assert _cdi.validate_spec(result['spec'], check_paths=True) == []
    # Without mig-access, a GPU in MIG mode gets none.
    result, failed = run_module(mod, host.args(caps=[]))
    assert not failed and all(cap_nodes(d['containerEdits']) == [] for d in result['spec']['devices'])


def test_mig_access_node_missing_is_a_warning(host, proc):
    fake_driver.build_mig_proc(proc, host.root, 0, {1: {'minor': 12}}, nodes=False)
    found = _cdi.discover(host.root, host.root, [], fake_driver.VERSION, None, proc_root=proc)
    assert found['gpus'][0]['caps'] == [] and found['cap_problems'] == []
    assert found['warnings'] == ['MIG capability gpu0/mig/gi1/access of GPU 0 has no device node '
                                 '/dev/nvidia-caps/nvidia-cap12: create it with "nvidia-modprobe -f '
                                 '/proc/driver/nvidia/capabilities/gpu0/mig/gi1/access" and run again']
