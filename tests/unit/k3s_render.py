# -*- coding: utf-8 -*-
"""Stand-in for K3s's rendering of a containerd template, for the tests.

``k3s_base`` returns the base config fixture with the runtime tables K3s adds for
runtimes it detected itself (in the shape of K3s's ExtraRuntimes loop); ``render``
substitutes it for the base include and evaluates the module's runtime guards
(``_containerd.render_like_k3s``). This is not K3s: it proves only the parts named.
"""

from __future__ import absolute_import, division, print_function

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


def render(template, version, detected=None, **kwargs):
    return ctd.render_like_k3s(template, k3s_base(version, detected, **kwargs), detected=set(detected or {}))
