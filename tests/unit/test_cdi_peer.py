# -*- coding: utf-8 -*-
"""Upstream peer: the reference CDI library judges what cdi_spec writes and validates.

``cdi-verdict`` (tests/upstream/peers/cmd/cdi-verdict, ours) reads spec files with the
library's own ``cdi.ReadSpec`` (tags.cncf.io/container-device-interface, version pinned in
tests/upstream/peers/go.mod) and prints its verdict and the lowest version the spec's fields
need. scripts/upstream.sh builds it into .cache/upstream/bin (UPSTREAM_BIN).

1. Every spec cdi_spec writes for the unit and integration fixtures (YAML and JSON; 1, 2 and 8
   GPUs; MIG on and off; devices by index and UUID; the nvidia-ctk backend's output) is valid
   for the library and declares exactly the version its fields need.
2. Every crafted spec of tests/unit/cdi_cases.py gets the same verdict from the library, from
   ``_cdi.check_spec`` and from ``cdi_spec validate_only``, and the verdict the table records.

Without the binary the tests are skipped, unless K3S_GPU_UPSTREAM_PEER=1 (scripts/peers.sh),
where a missing binary fails.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess

import pytest

import cdi_cases
import fake_driver
from conftest import REPO_ROOT, fixture_path, script
from test_cdi import CTK_SPEC, UUID, fake_ctk
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_generate
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi_spec
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml
from ansible_collections.k3s_gpu.cluster.plugins.modules import cdi_spec as mod


def upstream_binary(name):
    """Path of a program scripts/upstream.sh built; skips (or fails under scripts/peers.sh) without it."""
    folder = os.environ.get('UPSTREAM_BIN') or os.path.join(REPO_ROOT, '.cache', 'upstream', 'bin')
    path = os.path.join(folder, name)
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    message = '%s is not built: run scripts/upstream.sh (or scripts/peers.sh)' % path
    if os.environ.get('K3S_GPU_UPSTREAM_PEER') == '1':
        pytest.fail(message)
    pytest.skip(message)


def library_verdicts(paths):
    """({'library': ..., 'version': ...}, {path: verdict}) from one cdi-verdict run."""
    binary = upstream_binary('cdi-verdict')
    proc = subprocess.run([binary] + list(paths), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, check=False)
    assert proc.returncode == 0, 'cdi-verdict failed (exit %s): %s' % (proc.returncode, proc.stderr)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    header, verdicts = lines[0], dict((v['path'], v) for v in lines[1:])
    assert sorted(verdicts) == sorted(paths)
    return header, verdicts


def peer_name(header):
    return '%s@%s (pkg/cdi ReadSpec; specs-go %s)' % (header['library'], header['version'], header['specs_go'])


# ---- 1. what cdi_spec writes --------------------------------------------------------------------

def _written_specs(tmp_path, run_module, monkeypatch):
    """{label: path} of the specs cdi_spec writes for the fixture hosts."""
    written = {}
    smi_1gpu = script(tmp_path / 'smi-1', 'cat %s' % fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml'))
    smi_8gpu = script(tmp_path / 'smi-8', 'cat %s' % fixture_path('nvidia-smi-q-8gpu.xml'))

    def write(label, root, smi, fmt, **extra):
        path = tmp_path / 'out' / ('%s.%s' % (label, fmt))
        args = dict(path=str(path), backend='native', driver_root=root, dev_root=root, nvidia_smi_path=smi,
                    format=fmt)
        args.update(extra)
        result, failed = run_module(mod, args)
        assert not failed, (label, result)
        written['%s.%s' % (label, fmt)] = str(path)

    for gpus, smi in ((1, smi_1gpu), (8, smi_8gpu)):
        root = fake_driver.build(str(tmp_path / ('r%d' % gpus)), gpus=gpus)
        for fmt in ('yaml', 'json'):
            write('gpus%d' % gpus, root, smi, fmt)
            write('gpus%d-uuid' % gpus, root, smi, fmt, device_name_strategy=['uuid'])
            write('gpus%d-monitor-config' % gpus, root, smi, fmt, caps=['mig-access', 'mig-monitor', 'mig-config'])
    # Two GPUs, the first in MIG mode with two GPU instances (one with a compute instance).
    root = fake_driver.build(str(tmp_path / 'r2'), gpus=2)
    proc = str(tmp_path / 'proc2')
    fake_driver.build_mig_proc(proc, root, 0, {1: {'minor': 12, 'cis': {0: 13}}, 2: {'minor': 21}})
    gpus = [{'index': 0, 'uuid': UUID, 'minor_number': 0}, {'index': 1, 'uuid': 'GPU-1', 'minor_number': 1}]
    with monkeypatch.context() as patch:
        patch.setattr(_cdi, 'PROC_ROOT', proc)
        patch.setattr(_cdi_spec, 'host_facts', lambda module: (fake_driver.VERSION, gpus))
        for fmt in ('yaml', 'json'):
            write('gpus2-mig', root, None, fmt)
            write('gpus2-mig-no-caps', root, None, fmt, caps=[])
    # The integration target's tree (tests/integration/targets/cdi_spec): two libraries, nvidia-smi, one GPU.
    root = str(tmp_path / 'integration')
    for rel in ('usr/local/nvidia/lib64/libcuda.so.580.159.04', 'usr/local/nvidia/lib64/libnvidia-ml.so.580.159.04',
                'usr/local/nvidia/bin/nvidia-smi', 'dev/nvidia0', 'dev/nvidiactl', 'dev/nvidia-uvm'):
        full = os.path.join(root, rel)
        if not os.path.isdir(os.path.dirname(full)):
            os.makedirs(os.path.dirname(full))
        open(full, 'w').close()
        os.chmod(full, 0o755)
    for fmt in ('yaml', 'json'):
        write('integration', root, smi_1gpu, fmt)
    # The nvidia-ctk backend (a stand-in nvidia-ctk that prints a spec of nvidia-ctk's shape).

    class Host(object):
        tmp = tmp_path
    root = fake_driver.build(str(tmp_path / 'rctk'))
    ctk = fake_ctk(Host, CTK_SPEC % {'root': root, 'ctk': '/bin/sh'})
    write('nvidia-ctk-backend', root, smi_1gpu, 'yaml', backend='nvidia-ctk', nvidia_ctk_path=ctk)
    # Without hostPath and index names (dev_root /): what the native builder gives at 0.3.0.
    found = _cdi.discover(str(tmp_path / 'r1'), str(tmp_path / 'r1'), [], fake_driver.VERSION, None)
    plain = _cdi.build_spec(dict(found, gpus=[dict(g, uuid=UUID) for g in found['gpus']]), strategies=('uuid',))
    for fmt in ('yaml', 'json'):
        path = tmp_path / 'out' / ('uuid-no-hostpath.%s' % fmt)
        path.write_text(_cdi_generate.render(plain, fmt))
        written['uuid-no-hostpath.%s' % fmt] = str(path)
    return written


def test_library_accepts_every_spec_cdi_spec_writes(tmp_path, run_module, monkeypatch):
    upstream_binary('cdi-verdict')
    written = _written_specs(tmp_path, run_module, monkeypatch)
    header, verdicts = library_verdicts(written.values())
    declared = set()
    failures = []
    for label, path in sorted(written.items()):
        got = verdicts[path]
        spec = _yaml.loads(open(path).read())
        declared.add(spec['cdiVersion'])
        if not got['valid']:
            failures.append('%s: refused: %s' % (label, got['error']))
        elif got['declared'] != got['minimum']:
            failures.append('%s: declares cdiVersion %s, the library says its fields need %s'
                            % (label, got['declared'], got['minimum']))
        elif got['minimum'] != _cdi.minimum_version(spec):
            failures.append('%s: cdi_spec computes minimum version %s, the library %s'
                            % (label, _cdi.minimum_version(spec), got['minimum']))
        elif got['devices'] != sorted(_cdi.device_names(spec)):
            failures.append('%s: devices %s, the library sees %s' % (label, _cdi.device_names(spec), got['devices']))
    assert not failures, '%s disagrees with cdi_spec:\n%s' % (peer_name(header), '\n'.join(failures))
    assert declared == {'0.3.0', '0.5.0'}
    assert len(written) == 21


# ---- 2. the crafted table -------------------------------------------------------------------------

@pytest.fixture(scope='module')
def crafted(tmp_path_factory):
    """{case id: (path, library verdict)} for every case of cdi_cases, and the library's name."""
    upstream_binary('cdi-verdict')
    folder = tmp_path_factory.mktemp('cdi-cases')
    paths = {}
    for case_id, spec, _verdict, _words in cdi_cases.CASES:
        fmt = cdi_cases.fmt(case_id)
        path = folder / ('%s.%s' % (case_id, fmt))
        text = json.dumps(spec, indent=2) if fmt == 'json' else _yaml.dump(spec)
        assert _yaml.loads(text) == spec, case_id  # what both sides read is the case as written
        path.write_text(text)
        paths[case_id] = str(path)
    header, verdicts = library_verdicts(paths.values())
    return peer_name(header), dict((case_id, (path, verdicts[path])) for case_id, path in paths.items())


@pytest.fixture
def validate_only(tmp_path, run_module):
    smi = script(tmp_path / 'nvidia-smi', 'cat %s' % fixture_path('h100-ubuntu2404', 'nvidia-smi-q.xml'))

    def run(path):
        result, failed = run_module(mod, dict(path=path, validate_only=True, nvidia_smi_path=smi))
        assert not failed and not result['changed'], result
        return result
    return run


@pytest.mark.parametrize('case_id,spec,verdict,words', cdi_cases.CASES, ids=[c[0] for c in cdi_cases.CASES])
def test_library_and_cdi_spec_agree(crafted, validate_only, case_id, spec, verdict, words):
    peer, cases = crafted
    path, library = cases[case_id]
    library_verdict = 'valid' if library['valid'] else 'invalid'
    assert bool(library.get('panic')) == (case_id in cdi_cases.LIBRARY_PANICS), (
        '%s: %s %s; cdi_cases.LIBRARY_PANICS says it %s' % (
            case_id, peer, 'panics: %s' % library['panic'] if library.get('panic') else 'does not panic',
            'does' if case_id in cdi_cases.LIBRARY_PANICS else 'does not'))
    problems, advice = _cdi.check_spec(spec)
    ours = 'invalid' if problems else 'valid'
    module = validate_only(path)
    host_problem = cdi_cases.HOST_PROBLEMS.get(case_id)
    module_problems = [p for p in module['problems'] if not (host_problem and host_problem in p)]
    module_verdict = 'invalid' if module_problems else 'valid'
    reason = '' if library['valid'] else ' (%s)' % (library.get('error') or 'panic: %s' % library['panic'])
    assert library_verdict == ours == module_verdict == verdict, (
        '%s: %s says %s%s; cdi_spec\'s validator says %s (%s); cdi_spec validate_only says %s (%s); the table says %s'
        % (case_id, peer, library_verdict, reason, ours, '; '.join(problems) or 'no problem', module_verdict,
           '; '.join(module['problems']) or 'no problem', verdict))
    assert module['advice'] == _cdi.check_spec(spec, check_paths=True)[1]
    if host_problem:
        assert any(host_problem in p for p in module['problems'])
