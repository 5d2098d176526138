# -*- coding: utf-8 -*-
"""Stand-in for K3s's rendering of a containerd template, for the tests.

``k3s_base`` returns the base config fixture with the runtime tables K3s adds for
runtimes it detected itself (in the shape of K3s's ExtraRuntimes loop); ``render``
substitutes it for the base include and evaluates the module's runtime guards
(``_containerd.render_like_k3s``). This is not K3s: it proves only the parts named.
"""

from __future__ import absolute_import, division, print_function

import atexit
import json
import os
import shutil
import subprocess
import tempfile

from conftest import read_fixture
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _containerd as ctd


def k3s_base(version, detected=None, root='/var/lib/rancher/k3s/agent/containerd', state='/run/k3s/containerd'):
    text = read_fixture('k3s', 'base-v%d.toml' % version).replace('@ROOT@', root).replace('@STATE@', state)
    for name, binary in sorted((detected or {}).items()):
        if version == 2:
            text += ('\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."%s"]\n'
                     '  runtime_type = "io.containerd.runc.v2"\n'
                     '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."%s".options]\n'
                     '  BinaryName = "%s"\n' % (name, name, binary))
        else:
            text += ("\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s']\n"
                     '  runtime_type = "io.containerd.runc.v2"\n'
                     "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s'.options]\n"
                     '  BinaryName = "%s"\n  SystemdCgroup = true\n' % (name, name, binary))
    return text


# K3s's loop over the runtimes it detected, in the form of its version 2 and 3 base templates.
EXTRA_RUNTIMES_LOOP = {
    2: """
{{range $k, $v := .ExtraRuntimes}}
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."{{$k}}"]
  runtime_type = "{{$v.RuntimeType}}"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."{{$k}}".options]
  BinaryName = "{{$v.BinaryName}}"
{{end}}
""",
    3: """
{{range $k, $v := .ExtraRuntimes}}
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'{{ $k }}']
  runtime_type = "{{$v.RuntimeType}}"
{{ with $v.BinaryName}}
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'{{ $k }}'.options]
  BinaryName = {{ printf "%q" . }}
  SystemdCgroup = {{ $.SystemdCgroup }}
{{ end }}
{{end}}
""",
}
RENDER_GO = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'k3s', 'render.go')


_BUILT = {}


def _go_renderer():
    """Build render.go once per test session (go build), return the binary."""
    if 'bin' not in _BUILT:
        work = tempfile.mkdtemp(prefix='k3s_gpu-render-')
        atexit.register(shutil.rmtree, work, True)
        env = dict(os.environ, GOCACHE=os.path.join(work, 'gocache'), GO111MODULE='off')
        binary = os.path.join(work, 'k3s-render')
        proc = subprocess.run(['go', 'build', '-o', binary, RENDER_GO], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError('go build %s failed: %s' % (RENDER_GO, proc.stdout))
        _BUILT['bin'] = binary
    return _BUILT['bin']


def render_go(template, version, detected, workdir, root='/var/lib/rancher/k3s/agent/containerd',
              state='/run/k3s/containerd'):
    """Render with Go's text/template (fixtures/k3s/render.go); needs ``go`` on PATH."""
    files = {}
    base = k3s_base(version, None, root=root, state=state) + EXTRA_RUNTIMES_LOOP[version]
    context = {'SystemdCgroup': True, 'ExtraRuntimes': {
        name: {'RuntimeType': 'io.containerd.runc.v2', 'BinaryName': binary}
        for name, binary in (detected or {}).items()}}
    for name, text in (('user.tmpl', template), ('base.tmpl', base), ('ctx.json', json.dumps(context))):
        files[name] = os.path.join(workdir, name)
        with open(files[name], 'w') as handle:
            handle.write(text)
    proc = subprocess.run([_go_renderer(), files['user.tmpl'], files['base.tmpl'], files['ctx.json']],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError('go text/template failed: %s' % proc.stderr)
    return proc.stdout


def render(template, version, detected=None, **kwargs):
    return ctd.render_like_k3s(template, k3s_base(version, detected, **kwargs), detected=set(detected or {}))
