# -*- coding: utf-8 -*-
"""The writer modules on files they must not replace (docs/safety.md): a directory where a
file is expected, a Go template or CDI spec that is not text, and a generated config.toml
that is not TOML. Each is refused, or reported, with the path, and nothing is written."""

from __future__ import absolute_import, division, print_function

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _files
from ansible_collections.k3s_gpu.cluster.plugins.modules import cdi_spec
from ansible_collections.k3s_gpu.cluster.plugins.modules import k3s_containerd_runtime
from test_cdi import host  # noqa: F401  pylint: disable=unused-import
from test_containerd import k3s  # noqa: F401  pylint: disable=unused-import


def refusal(run):
    """The message of a refusal: fail_json's, or the FileProblem a module lets through
    (Ansible shows its message as the task's error)."""
    try:
        result, failed = run()
    except _files.FileProblem as exc:
        return str(exc)
    assert failed, result
    return result['msg']


def test_containerd_template_that_is_a_directory(k3s, run_module):  # noqa: F811
    k3s.v3.mkdir()
    (k3s.v3 / 'keep').write_text('{{ template "base" . }}\n')
    msg = refusal(lambda: run_module(k3s_containerd_runtime, k3s.args()))
    assert '%s is a directory where a file is expected' % k3s.v3 in msg
    assert (k3s.v3 / 'keep').read_text() == '{{ template "base" . }}\n'


def test_containerd_template_that_is_not_text(k3s, run_module):  # noqa: F811
    damaged = b'{{ template "base" . }}\n\xff\xfe\x00 half-written\n'
    k3s.v3.write_bytes(damaged)
    msg = refusal(lambda: run_module(k3s_containerd_runtime, k3s.args()))
    assert '%s is not UTF-8 text' % k3s.v3 in msg
    assert k3s.v3.read_bytes() == damaged


def test_generated_config_toml_that_is_not_toml_is_reported_never_trusted(k3s, run_module):  # noqa: F811
    broken = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia\n'
    k3s.config.write_text(broken)
    result, failed = run_module(k3s_containerd_runtime, k3s.args())
    assert not failed, result
    assert result['effective'] is False and result['effective_problems'] and result['restart_required']
    assert k3s.config.read_text() == broken


def test_cdi_spec_path_that_is_a_directory(host, run_module):  # noqa: F811
    host.spec_path.mkdir(parents=True)
    for state in ('present', 'absent'):
        msg = refusal(lambda: run_module(cdi_spec, host.args(state=state)))
        assert '%s is a directory where a file is expected' % host.spec_path in msg
    assert host.spec_path.is_dir()


def test_cdi_spec_that_is_not_text(host, run_module):  # noqa: F811
    host.spec_path.parent.mkdir(parents=True)
    host.spec_path.write_bytes(b'cdiVersion: 0.6.0\n\xff\xfe\n')
    msg = refusal(lambda: run_module(cdi_spec, host.args()))
    assert '%s is not UTF-8 text' % host.spec_path in msg
    assert host.spec_path.read_bytes() == b'cdiVersion: 0.6.0\n\xff\xfe\n'
