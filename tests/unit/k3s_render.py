# -*- coding: utf-8 -*-
"""Stand-in for K3s's rendering of a containerd template, for the tests.

K3s is not served by the Go module proxy (github.com/k3s-io/k3s: "403 Forbidden, This module
version is not available"; docs/development.md, "Upstream peers"), so its own template
package cannot render here. This renders with Go's text/template (fixtures/k3s/render.go, a
program of ours) or with the module's Python evaluation of its guards
(``_containerd.render_like_k3s``), over a base config whose structure comes from the facts in
../shared/REFERENCE.md ("K3s and its embedded containerd"), not from K3s's templates:

- the plugin tables of config version 2 (``io.containerd.grpc.v1.cri``) and 3
  (``io.containerd.cri.v1.runtime`` / ``io.containerd.cri.v1.images``), K3s's ``runc``
  runtime with ``SystemdCgroup = true`` (fixtures/k3s/base-v*.toml, the values of a default
  agent);
- each runtime K3s detected itself (``ExtraRuntimes``): ``runtime_type`` and an ``options``
  table with ``BinaryName`` and ``SystemdCgroup``;
- ``--default-runtime``: ``default_runtime_name`` on the CRI plugin's ``containerd`` table;
- newer K3s: ``imports`` of the drop-in folder ``config.toml.d`` (v2) or
  ``config-v3.toml.d`` (v3) next to the generated config.

This is not K3s: it proves only the parts named.
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

DROPIN_DIR = {2: 'config.toml.d', 3: 'config-v3.toml.d'}
_CONTAINERD_TABLE = {2: '[plugins."io.containerd.grpc.v1.cri".containerd]',
                     3: "[plugins.'io.containerd.cri.v1.runtime'.containerd]"}


def _runtime_tables(version, name, binary):
    if version == 2:
        return ('\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."%s"]\n'
                '  runtime_type = "io.containerd.runc.v2"\n'
                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."%s".options]\n'
                '  BinaryName = "%s"\n  SystemdCgroup = true\n' % (name, name, binary))
    return ("\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s']\n"
            '  runtime_type = "io.containerd.runc.v2"\n'
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'%s'.options]\n"
            '  BinaryName = "%s"\n  SystemdCgroup = true\n' % (name, name, binary))


def _base_text(version, root, state, default_runtime=None, dropin_dir=None):
    text = read_fixture('k3s', 'base-v%d.toml' % version).replace('@ROOT@', root).replace('@STATE@', state)
    if dropin_dir:
        # A top-level key: after the version/root/state lines, before the first table.
        text = text.replace('state = "%s"\n' % state,
                            'state = "%s"\nimports = ["%s/*.toml"]\n' % (state, dropin_dir), 1)
    if default_runtime:
        table = _CONTAINERD_TABLE[version]
        line = '  default_runtime_name = "%s"\n' % default_runtime
        if table in text:
            text = text.replace(table + '\n', table + '\n' + line, 1)
        else:
            text += '\n%s\n%s' % (table, line)
    return text


def k3s_base(version, detected=None, root='/var/lib/rancher/k3s/agent/containerd', state='/run/k3s/containerd',
             default_runtime=None, dropin_dir=None):
    """The config K3s generates (stand-in, see above) for runtimes it ``detected`` ({name: binary}),
    with ``default_runtime`` (K3s's --default-runtime) and, when ``dropin_dir`` is given, an
    ``imports`` line for that drop-in folder (newer K3s)."""
    text = _base_text(version, root, state, default_runtime, dropin_dir)
    for name, binary in sorted((detected or {}).items()):
        text += _runtime_tables(version, name, binary)
    return text


# The loop over the runtimes K3s detected, as Go template text of ours producing the tables above.
EXTRA_RUNTIMES_LOOP = {
    2: """
{{range $k, $v := .ExtraRuntimes}}
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."{{$k}}"]
  runtime_type = "{{$v.RuntimeType}}"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."{{$k}}".options]
  BinaryName = "{{$v.BinaryName}}"
  SystemdCgroup = {{ $.SystemdCgroup }}
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
              state='/run/k3s/containerd', default_runtime=None, dropin_dir=None):
    """Render with Go's text/template (fixtures/k3s/render.go); needs ``go`` on PATH."""
    files = {}
    base = _base_text(version, root, state, default_runtime, dropin_dir) + EXTRA_RUNTIMES_LOOP[version]
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
