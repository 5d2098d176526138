# -*- coding: utf-8 -*-
"""Benchmark of the modules' own overhead (prints the figures; exit 1 over budget).

- nvidia_smi_facts: parse + facts for an 8-GPU ``nvidia-smi -q -x`` (budget 50 ms);
  nvidia-smi's own run time is not counted (it is called once).
- cdi_spec native generation (discover + build + validate with host paths) on a stand-in
  tree laid out like the H100 host (tests/unit/fake_driver.py), budget 1 s.
- With --host: the same generation against this machine's real driver (driver_root /),
  after one real ``nvidia-smi -q -x``; --out DIR writes the spec there as JSON.

Usage: python3 tests/perf/bench_modules.py [--host] [--out DIR]
"""

from __future__ import absolute_import, division, print_function

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))


def _link_collection():
    """Make ansible_collections.k3s_gpu.cluster importable from this checkout (no pytest needed)."""
    root = tempfile.mkdtemp(prefix='k3s_gpu-bench-link-')
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, 'ansible_collections', 'k3s_gpu'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'k3s_gpu', 'cluster'))
    sys.path.insert(0, root)


_link_collection()
import fake_driver  # noqa: E402
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi, _nvidia_smi  # noqa: E402

SMI_BUDGET_MS = 50.0
CDI_BUDGET_MS = 1000.0


def best_ms(func, runs):
    best = None
    for _i in range(runs):
        start = time.perf_counter()
        func()
        elapsed = (time.perf_counter() - start) * 1000.0
        best = elapsed if best is None or elapsed < best else best
    return best


def ld_cache_dirs():
    try:
        out = subprocess.run(['ldconfig', '-p'], stdout=subprocess.PIPE, universal_newlines=True,
                             check=False).stdout
    except OSError:
        return []
    dirs = []
    for line in out.splitlines():
        if '=>' in line and ('nvidia' in line or 'libcuda' in line):
            folder = os.path.dirname(line.split('=>', 1)[1].strip())
            if folder not in dirs:
                dirs.append(folder)
    return dirs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', action='store_true', help='also generate for this machine\'s real driver')
    parser.add_argument('--out', help='write the host spec (JSON) into this folder')
    args = parser.parse_args()
    ok = True

    xml = fake_driver.read_fixture('nvidia-smi-q-8gpu.xml')
    facts = _nvidia_smi.facts_from_output(0, xml, '')
    assert facts['gpu_count'] == 8
    smi_ms = best_ms(lambda: _nvidia_smi.facts_from_output(0, xml, ''), 20)
    ok &= smi_ms < SMI_BUDGET_MS
    print('nvidia_smi_facts parse+facts, 8 GPUs: %.1f ms (budget %.0f ms) %s'
          % (smi_ms, SMI_BUDGET_MS, 'OK' if smi_ms < SMI_BUDGET_MS else 'OVER'))

    with tempfile.TemporaryDirectory(prefix='k3s_gpu-bench-') as tmp:
        root = fake_driver.build(os.path.join(tmp, 'root'), gpus=8)
        gpus = [dict(g, minor_number=i) for i, g in enumerate(facts['gpus'])]

        def native():
            found = _cdi.discover(root, root, [], fake_driver.VERSION, gpus)
            spec = _cdi.build_spec(found, dev_root=root)
            assert _cdi.validate_spec(spec, check_paths=True) == []
            return spec
        cdi_ms = best_ms(native, 5)
        spec = native()
        ok &= cdi_ms < CDI_BUDGET_MS
        print('cdi_spec native generation, H100 layout stand-in, 8 GPUs, %d mounts: %.1f ms (budget %.0f ms) %s'
              % (len(spec['containerEdits']['mounts']), cdi_ms, CDI_BUDGET_MS, 'OK' if cdi_ms < CDI_BUDGET_MS else 'OVER'))

    if args.host:
        start = time.perf_counter()
        host = _nvidia_smi.gather(lambda name, required=False, opt_dirs=None: _which(name, opt_dirs), None, 60)
        smi_run_ms = (time.perf_counter() - start) * 1000.0
        print('host nvidia-smi -q -x (one run, not the module\'s overhead): %.0f ms, status %s, driver %s, %d GPU(s)'
              % (smi_run_ms, host['status'], host['driver_version'], host['gpu_count']))
        if host['status'] != 'ok':
            print('host: %s' % host['message'])
            return 1
        start = time.perf_counter()
        found = _cdi.discover('/', '/', [], host['driver_version'], host['gpus'], ld_cache_dirs())
        spec = _cdi.build_spec(found)
        problems = _cdi.validate_spec(spec, check_paths=True)
        host_ms = (time.perf_counter() - start) * 1000.0
        ok &= host_ms < CDI_BUDGET_MS and not problems
        print('host cdi_spec native generation (incl. ldconfig -p): %.1f ms (budget %.0f ms), %d devices, %d device '
              'nodes, %d libraries, %d binaries, %d firmware files, problems: %s'
              % (host_ms, CDI_BUDGET_MS, len(spec['devices']), len(spec['containerEdits']['deviceNodes']),
                 len(found['libraries']), len(found['binaries']), len(found['firmware']), problems or 'none'))
        for lib in found['libraries']:
            print('  %s -> %s/%s' % (lib['host_path'], _cdi.CONTAINER_LIB_DIR, lib['soname']))
        if args.out:
            with open(os.path.join(args.out, 'host-cdi-spec.json'), 'w') as handle:
                json.dump(spec, handle, indent=2)
    return 0 if ok else 1


def _which(name, opt_dirs):
    for folder in os.environ.get('PATH', '').split(os.pathsep) + list(opt_dirs or []):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


if __name__ == '__main__':
    sys.exit(main())
