# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""K3s containerd template handling: version detection, the managed block, verification.

K3s renders ``<data-dir>/agent/etc/containerd/config.toml`` at every start from
``config-v3.toml.tmpl`` (containerd config version 3) or ``config.toml.tmpl`` (version 2)
when one exists. A template that starts with ``{{ template "base" . }}`` extends K3s's own
config. K3s's base already defines the CRI plugin table (and, in version 2, its
``containerd`` sub-table), and TOML refuses a table defined twice, so the block written
here only adds runtime tables; each one is guarded so that a runtime K3s detected itself
(and renders in the base) is not defined a second time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml

CRI_PLUGIN = {2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.runtime'}
TEMPLATE_NAME = {2: 'config.toml.tmpl', 3: 'config-v3.toml.tmpl'}
BASE_INCLUDE = '{{ template "base" . }}'
BEGIN = '# BEGIN k3s_gpu.cluster.k3s_containerd_runtime (managed by Ansible; edit outside this block)'
END = '# END k3s_gpu.cluster.k3s_containerd_runtime'
DEFAULT_RUNTIME_TYPE = 'io.containerd.runc.v2'
# containerd 2.x defaults (config version 3): CDI on, these spec folders.
CONTAINERD2_CDI_SPEC_DIRS = ['/etc/cdi', '/var/run/cdi']

# Runtimes K3s finds by itself, by binary name, on PATH and in /usr/local/nvidia/toolkit.
K3S_DETECTED = {
    'nvidia': 'nvidia-container-runtime',
    'nvidia-experimental': 'nvidia-container-runtime-experimental',
    'nvidia-cdi': 'nvidia-container-runtime.cdi',
}
# Folders K3s searches (the PATH of its systemd unit plus its extra runtime folder).
K3S_RUNTIME_DIRS = ['/usr/local/nvidia/toolkit', '/usr/local/sbin', '/usr/local/bin',
                    '/usr/sbin', '/usr/bin', '/sbin', '/bin']

_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
_K3S_VERSION = re.compile(r'v(\d+)\.(\d+)\.(\d+)\+k3s\d+')
_GUARD = re.compile(r'\{\{ if not \(index \.ExtraRuntimes "([^"]+)"\)\.BinaryName \}\}\n(.*?)\{\{ end \}\}\n',
                    re.S)


def containerd_dir(data_dir):
    return os.path.join(data_dir, 'agent', 'etc', 'containerd')


def version_from_config(text):
    """containerd config version from a generated config.toml: 2, 3 (for 3 and above) or None."""
    match = re.search(r'^\s*version\s*=\s*(\d+)\s*(#.*)?$', text or '', re.M)
    if not match:
        return None
    number = int(match.group(1))
    if number >= 3:
        return 3
    return 2 if number == 2 else None


def version_from_k3s(output):
    """Config version for a ``k3s --version`` output: containerd 2 (version 3) from
    v1.31.6+k3s1 and v1.32.2+k3s1 on, containerd 1.7 (version 2) before. None if unknown."""
    match = _K3S_VERSION.search(output or '')
    if not match:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    if (major, minor) > (1, 32):
        return 3
    if (major, minor) == (1, 32):
        return 3 if patch >= 2 else 2
    if (major, minor) == (1, 31):
        return 3 if patch >= 6 else 2
    return 2


def validate_runtime(runtime):
    """Problems with one runtime entry (strings), before anything is written."""
    problems = []
    name = runtime.get('name') or ''
    if not _NAME.match(name):
        problems.append('runtime name %r must be letters, digits, "_", "." or "-", starting with a letter or digit'
                        % name)
    binary = runtime.get('binary') or ''
    if not os.path.isabs(binary):
        problems.append('runtime %s: binary %r must be an absolute path' % (name, binary))
    for bad in ('"', '\\', '\n', '{{', '}}'):
        if bad in binary or bad in (runtime.get('runtime_type') or ''):
            problems.append('runtime %s: binary and runtime_type must not contain %r' % (name, bad))
    if not re.match(r'^[A-Za-z0-9_.-]+$', runtime.get('runtime_type') or ''):
        problems.append('runtime %s: runtime_type %r is not a containerd shim name such as %s'
                        % (name, runtime.get('runtime_type'), DEFAULT_RUNTIME_TYPE))
    return problems


def k3s_detects(runtime):
    """True when K3s would find and configure this runtime on its own."""
    expected = K3S_DETECTED.get(runtime['name'])
    binary = runtime['binary']
    return (expected is not None and os.path.basename(binary) == expected
            and os.path.dirname(binary) in K3S_RUNTIME_DIRS
            and runtime.get('runtime_type', DEFAULT_RUNTIME_TYPE) == DEFAULT_RUNTIME_TYPE)


def _toml_bool(value):
    return 'true' if value else 'false'


def render_block(version, runtimes, guarded=True):
    """The managed block: one runtime table (+ options) per runtime, each guarded."""
    plugin = CRI_PLUGIN[version]
    lines = [BEGIN]
    for runtime in runtimes:
        table = 'plugins."%s".containerd.runtimes."%s"' % (plugin, runtime['name'])
        body = [
            '[%s]' % table,
            '  runtime_type = "%s"' % runtime['runtime_type'],
            '[%s.options]' % table,
            '  BinaryName = "%s"' % runtime['binary'],
            '  SystemdCgroup = %s' % _toml_bool(runtime['systemd_cgroup']),
        ]
        if guarded:
            lines.append('{{ if not (index .ExtraRuntimes "%s").BinaryName }}' % runtime['name'])
            lines.extend(body)
            lines.append('{{ end }}')
        else:
            lines.extend(body)
    lines.append(END)
    return '\n'.join(lines) + '\n'


def split_template(text):
    """(before, block, after) of a template; block is None when the managed block is absent."""
    if not text:
        return text or '', None, ''
    start = text.find(BEGIN)
    if start < 0:
        return text, None, ''
    end = text.find(END, start)
    if end < 0:
        # A BEGIN without END: treat the rest as the block so that it is replaced whole.
        return text[:start], text[start:], ''
    end += len(END)
    if text[end:end + 1] == '\n':
        end += 1
    return text[:start], text[start:end], text[end:]


def has_base_include(text):
    return bool(re.search(r'\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}', text or ''))


def apply_block(existing, version, runtimes):
    """New template text with the block in place (user content outside it is kept)."""
    if existing is None or not existing.strip():
        return '%s\n\n%s' % (BASE_INCLUDE, render_block(version, runtimes, guarded=True))
    before, _block, after = split_template(existing)
    block = render_block(version, runtimes, guarded=has_base_include(before + after))
    if not before.endswith('\n'):
        before += '\n'
    if not before.endswith('\n\n'):
        before += '\n'
    return before + block + after


def remove_block(existing):
    """Template text without the block; None when nothing but the base include is left."""
    if existing is None:
        return None
    before, block, after = split_template(existing)
    if block is None:
        return existing
    rest = (before.rstrip('\n') + '\n' + after.lstrip('\n')) if after.strip() else before.rstrip('\n') + '\n'
    leftover = re.sub(r'\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}', '', rest).strip()
    if not leftover:
        return None
    return rest


def defines_runtime(text, version, name):
    """True when ``text`` has its own table for runtime ``name`` (outside our block)."""
    plugin = re.escape(CRI_PLUGIN[version])
    pattern = (r'^\s*\[\s*plugins\.["\']%s["\']\.containerd\.runtimes\.(?:"%s"|\'%s\'|%s)\s*\]'
               % (plugin, re.escape(name), re.escape(name), re.escape(name)))
    return bool(re.search(pattern, text or '', re.M))


def render_like_k3s(template, base, detected=()):
    """Render a template as K3s does for the parts this module writes: the base include
    becomes ``base`` (K3s's rendered base config) and each runtime guard is kept unless the
    runtime is in ``detected``. Any other template action is refused (ValueError)."""
    text = re.sub(r'\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}', lambda _m: base, template)
    text = _GUARD.sub(lambda m: '' if m.group(1) in detected else m.group(2), text)
    if '{{' in text:
        raise ValueError('template actions other than the base include and runtime guards are not rendered here')
    return text


def check_block_parses(version, runtimes):
    """Parse our own block as TOML on its own; returns a problem string or None."""
    try:
        _toml.loads(render_block(version, runtimes, guarded=False))
    except _toml.TomlError as exc:
        return 'the generated block is not valid TOML: %s' % exc
    return None


def runtime_table(config, version, name):
    try:
        return config['plugins'][CRI_PLUGIN[version]]['containerd']['runtimes'][name]
    except (KeyError, TypeError):
        return None


def runc_systemd_cgroup(config, version):
    table = runtime_table(config, version, 'runc') or {}
    value = (table.get('options') or {}).get('SystemdCgroup')
    return value if isinstance(value, bool) else None


def effective_problems(config, version, runtimes, enable_cdi=False):
    """What the generated config.toml lacks compared with what was asked (empty: effective)."""
    problems = []
    for runtime in runtimes:
        table = runtime_table(config, version, runtime['name'])
        if table is None:
            problems.append('runtime %s is not in the generated config.toml' % runtime['name'])
            continue
        options = table.get('options') or {}
        if options.get('BinaryName') != runtime['binary']:
            problems.append('runtime %s runs %r, not %s'
                            % (runtime['name'], options.get('BinaryName'), runtime['binary']))
        if 'SystemdCgroup' in options and options['SystemdCgroup'] != runtime['systemd_cgroup']:
            problems.append('runtime %s has SystemdCgroup = %s, not %s' % (
                runtime['name'], _toml_bool(options['SystemdCgroup']), _toml_bool(runtime['systemd_cgroup'])))
    if enable_cdi:
        plugin = (config.get('plugins') or {}).get(CRI_PLUGIN[version]) or {}
        # containerd 2.x turns CDI on unless the config says otherwise.
        if plugin.get('enable_cdi', version >= 3) is not True:
            problems.append('CDI is not enabled in the generated config.toml')
    return problems
