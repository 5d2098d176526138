# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""K3s containerd runtime wiring: version detection, the template block, the drop-in file,
verification.

K3s renders ``<data-dir>/agent/etc/containerd/config.toml`` at every start from
``config-v3.toml.tmpl`` (containerd config version 3) or ``config.toml.tmpl`` (version 2)
when one exists. A template that starts with ``{{ template "base" . }}`` extends K3s's own
config. K3s's base already defines the CRI plugin table (and, in version 2, its
``containerd`` sub-table), and TOML refuses a table defined twice, so the block written
here only adds runtime tables; each one is guarded so that a runtime K3s detected itself
(and renders in the base) is not defined a second time.

Newer K3s releases make the generated config import a drop-in folder
(``imports = ["<dir>/config-v3.toml.d/*.toml"]``, ``config.toml.d`` for version 2).
containerd 2.x merges an imported file table by table (later files win), so a plain TOML
drop-in there needs no template and can redefine a runtime K3s detected. containerd 1.x
replaces a plugin's whole table with the imported one (K3s's CNI folders, sandbox image
and runc would be lost), so a drop-in is used only with containerd 2.x. Which K3s imports
the folder is read from the generated config, not from the K3s version.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import re

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _toml

CRI_PLUGIN = {2: 'io.containerd.grpc.v1.cri', 3: 'io.containerd.cri.v1.runtime'}
TEMPLATE_NAME = {2: 'config.toml.tmpl', 3: 'config-v3.toml.tmpl'}
BASE_INCLUDE = '{{ template "base" . }}'
BEGIN = '# BEGIN k3s_gpu.cluster.k3s_containerd_runtime (managed by Ansible; edit outside this block)'
END = '# END k3s_gpu.cluster.k3s_containerd_runtime'
DEFAULT_RUNTIME_TYPE = 'io.containerd.runc.v2'
# The drop-in folder K3s's generated config imports, per config version, and the module's file in it.
DROP_IN_DIR = {2: 'config.toml.d', 3: 'config-v3.toml.d'}
DROP_IN_NAME = '50-k3s-gpu-cluster.toml'
DROP_IN_HEADER = ('# Managed by Ansible: k3s_gpu.cluster.k3s_containerd_runtime writes this whole file '
                  '(K3s\'s containerd reads it through the imports of its generated config.toml).')
METHODS = ('template', 'drop_in')
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
_BASE = re.compile(r'\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}')
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


class DamagedFile(ValueError):
    """A file the module would change that it cannot read safely; the message names it."""


def split_template(text, path='the template'):
    """(before, block, after) of a template; block is None when the managed block is absent.
    A damaged block (BEGIN without END, END without BEGIN, two of either, END first) raises
    DamagedFile: the module never guesses where the user's text starts again."""
    if not text:
        return text or '', None, ''
    begins, ends = text.count(BEGIN), text.count(END)
    if begins == 0 and ends == 0:
        return text, None, ''
    start = text.find(BEGIN)
    end = text.find(END)
    if begins != 1 or ends != 1 or end < start:
        raise DamagedFile('%s: the block of k3s_gpu.cluster.k3s_containerd_runtime is damaged (%d BEGIN and %d END '
                          'line(s)%s): nothing was changed. Repair the file by hand (one "%s" line, then one "%s" '
                          'line; the text between them is the module\'s) or move it away, then run again'
                          % (path, begins, ends, ', END before BEGIN' if begins == 1 and ends == 1 else '',
                             BEGIN, END))
    end += len(END)
    if text[end:end + 1] == '\n':
        end += 1
    return text[:start], text[start:end], text[end:]


def check_template(text, path):
    """Raise DamagedFile when a template the module would change cannot be read safely:
    a damaged block, unbalanced template actions, or (when nothing but the base include and
    the module's guards are in it) user text that is not TOML."""
    if text is None:
        return
    before, _block, after = split_template(text, path)
    outside = before + after
    if outside.count('{{') != outside.count('}}'):
        raise DamagedFile('%s cannot be parsed: its "{{" and "}}" do not pair up (%d and %d), so K3s could not '
                          'render it either; nothing was changed. Repair or move the file, then run again'
                          % (path, outside.count('{{'), outside.count('}}')))
    plain = _BASE.sub('', outside)
    if '{{' in plain:
        return  # other template actions: only K3s can render them
    try:
        _toml.loads(plain)
    except _toml.TomlError as exc:
        raise DamagedFile('%s cannot be parsed: the text outside the module\'s block is not TOML (%s); nothing '
                          'was changed. Repair or move the file, then run again' % (path, exc))


def has_base_include(text):
    return bool(_BASE.search(text or ''))


def apply_block(existing, version, runtimes, path='the template'):
    """New template text with the block in place (user content outside it is kept)."""
    if existing is None or not existing.strip():
        return '%s\n\n%s' % (BASE_INCLUDE, render_block(version, runtimes, guarded=True))
    before, _block, after = split_template(existing, path)
    block = render_block(version, runtimes, guarded=has_base_include(before + after))
    if not before.endswith('\n'):
        before += '\n'
    if not before.endswith('\n\n'):
        before += '\n'
    return before + block + after


def remove_block(existing, path='the template'):
    """Template text without the block; None when nothing but the base include is left."""
    if existing is None:
        return None
    before, block, after = split_template(existing, path)
    if block is None:
        return existing
    rest = (before.rstrip('\n') + '\n' + after.lstrip('\n')) if after.strip() else before.rstrip('\n') + '\n'
    leftover = _BASE.sub('', rest).strip()
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
    text = _BASE.sub(lambda _m: base, template)
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


def effective_problems(config, version, runtimes, enable_cdi=False, cdi_spec_dirs=None):
    """What the generated config.toml (merged with the drop-ins containerd loaded) lacks compared
    with what was asked (empty: effective)."""
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
    plugin = (config.get('plugins') or {}).get(CRI_PLUGIN[version]) or {}
    if enable_cdi:
        # containerd 2.x turns CDI on unless the config says otherwise.
        if plugin.get('enable_cdi', version >= 3) is not True:
            problems.append('CDI is not enabled in the generated config.toml')
    if cdi_spec_dirs is not None:
        current = plugin.get('cdi_spec_dirs', CONTAINERD2_CDI_SPEC_DIRS if version >= 3 else None)
        if current != list(cdi_spec_dirs):
            problems.append('CDI reads %s, not %s' % (current, list(cdi_spec_dirs)))
    return problems


def leftover_problems(config, version, names):
    """For state=absent: runtimes of these names that still run a binary K3s would not have
    configured itself (a K3s-detected runtime of the same name is K3s's, not the module's)."""
    problems = []
    for name in names:
        table = runtime_table(config, version, name)
        if table is None:
            continue
        binary = (table.get('options') or {}).get('BinaryName') or ''
        if not k3s_detects(dict(name=name, binary=binary, runtime_type=table.get('runtime_type', DEFAULT_RUNTIME_TYPE))):
            problems.append('runtime %s (%s) is still in the generated config.toml' % (name, binary))
    return problems


# ---- drop-in files ---------------------------------------------------------------------

def drop_in_import(config):
    """(version, folder) of the K3s drop-in folder a generated config imports, else None.
    K3s writes ``imports = ["<data-dir>/agent/etc/containerd/config-v3.toml.d/*.toml"]``
    (``config.toml.d`` for version 2)."""
    imports = config.get('imports') if isinstance(config, dict) else None
    if isinstance(imports, str):
        imports = [imports]
    for pattern in imports if isinstance(imports, list) else []:
        if not isinstance(pattern, str):
            continue
        folder, name = os.path.split(pattern)
        if name != '*.toml' or not os.path.dirname(folder).rstrip('/').endswith('agent/etc/containerd'):
            continue
        for version, dirname in DROP_IN_DIR.items():
            if os.path.basename(folder) == dirname:
                return version, folder
    return None


def drop_in_import_from_text(text):
    """drop_in_import() for a config text or its ``imports = [...]`` line; None when unreadable."""
    try:
        return drop_in_import(_toml.loads(text or ''))
    except _toml.TomlError:
        return None


def render_drop_in(version, runtimes, enable_cdi=False, cdi_spec_dirs=None):
    """The module's drop-in: plain TOML that containerd 2.x merges over K3s's config."""
    plugin = CRI_PLUGIN[version]
    lines = [DROP_IN_HEADER, '# Changes are overwritten on the next run; earlier versions are kept as backups (~).',
             'version = %d' % version, '']
    if enable_cdi or cdi_spec_dirs is not None:
        lines.append('[plugins."%s"]' % plugin)
        if enable_cdi:
            lines.append('  enable_cdi = true')
        if cdi_spec_dirs is not None:
            lines.append('  cdi_spec_dirs = [%s]' % ', '.join(json.dumps(d) for d in cdi_spec_dirs))
        lines.append('')
    for runtime in runtimes:
        table = 'plugins."%s".containerd.runtimes."%s"' % (plugin, runtime['name'])
        lines.extend([
            '[%s]' % table,
            '  runtime_type = "%s"' % runtime['runtime_type'],
            '[%s.options]' % table,
            '  BinaryName = "%s"' % runtime['binary'],
            '  SystemdCgroup = %s' % _toml_bool(runtime['systemd_cgroup']),
            '',
        ])
    return '\n'.join(lines)


def check_drop_in(text, path):
    """Raise DamagedFile when the drop-in file at ``path`` is not the module's or is not TOML."""
    if text is None:
        return
    if not text.startswith(DROP_IN_HEADER):
        raise DamagedFile('%s exists but was not written by k3s_gpu.cluster.k3s_containerd_runtime (its first line '
                          'is not the module\'s header): nothing was changed. Move it away (the module owns this '
                          'file name), then run again' % path)
    try:
        _toml.loads(text)
    except _toml.TomlError as exc:
        raise DamagedFile('%s cannot be parsed as TOML (%s): nothing was changed; containerd would refuse it too. '
                          'Repair or remove the file, then run again' % (path, exc))


def imported_files(config, config_dir):
    """Paths of the files a config imports, in containerd's order (each pattern globbed and
    sorted, relative patterns from the config's folder)."""
    imports = config.get('imports') if isinstance(config, dict) else None
    if isinstance(imports, str):
        imports = [imports]
    paths = []
    for pattern in imports if isinstance(imports, list) else []:
        if not isinstance(pattern, str):
            continue
        if not os.path.isabs(pattern):
            pattern = os.path.join(config_dir, pattern)
        for path in sorted(glob.glob(pattern)):
            if path not in paths and os.path.isfile(path):
                paths.append(path)
    return paths


def merge_tables(base, extra):
    """containerd 2.x's merge of an imported file: tables key by key, values of the later file win."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def choose_method(requested, config_present, imported, containerd2, version):
    """('template' or 'drop_in', why) for method ``requested`` (auto, template, drop_in)."""
    if requested in METHODS:
        return requested, 'method=%s' % requested
    if imported:
        folder_version, folder = imported
        if folder_version == 3 or containerd2:
            return 'drop_in', 'the generated config.toml imports %s' % folder
        return 'template', ('the generated config.toml imports %s, but containerd 1.x replaces K3s\'s whole CRI '
                            'plugin table with a drop-in\'s, so the template is used' % folder)
    if config_present:
        return 'template', 'the generated config.toml imports no drop-in folder (an older K3s)'
    if version == 3:
        return 'drop_in', ('no config.toml yet (K3s has not started): a drop-in first; if the generated config shows '
                           'that this K3s does not import it, the next call writes the template instead')
    return 'template', 'no config.toml yet, and containerd 1.x (config version 2) takes no drop-in'
