# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the CDI spec of the host's NVIDIA GPUs for the running driver, and the refresh command.

Shared by the ``cdi_spec`` module and by ``k3s-gpu-cdi-refresh``, the command the
``nvidia_container_toolkit`` role installs on GPU nodes (run by ``k3s-gpu-cdi-refresh.service``
at boot and when the driver changes). Both make the spec the same way: the running driver and
its GPUs from one run of nvidia-smi (``host_facts``), then ``nvidia-ctk cdi generate`` or the
native discovery of ``_cdi`` (``make_spec``). Nothing here needs Ansible: the module passes its
own ``get_bin_path`` and ``run_command``, the command plain-Python ones (``plain_host``).

``main`` is the command: it reads the options the role rendered (JSON, the ``cdi_spec`` option
names), writes the spec when it differs from what the running driver needs (atomically, keeping
the file's owner and mode) and says why in one line. A driver that is being changed (library
mismatch until the reboot, module not loaded) leaves the spec as it is, exit code 0: the next
boot or module load regenerates it. Any other failure exits 1 and writes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import sys
import tempfile

from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _cdi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _files
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _nvidia_smi
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _proc
from ansible_collections.k3s_gpu.cluster.plugins.module_utils import _yaml

CTK_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/local/nvidia/toolkit']
HEADER = 'CDI spec written by k3s_gpu.cluster.cdi_spec; changes are overwritten.'
# nvidia-smi states in which the driver is being changed: the spec waits for the new module.
DRIVER_CHANGING = ('driver_library_mismatch', 'driver_not_loaded')
DEFAULTS = {
    'path': '/etc/cdi/nvidia.yaml',
    'backend': 'auto',
    'driver_root': '/',
    'dev_root': '/',
    'library_dirs': [],
    'device_name_strategy': ['index', 'uuid'],
    'vendor': 'nvidia.com',
    'class': 'gpu',
    'caps': ['mig-access'],
    'format': 'yaml',
    'nvidia_smi_path': None,
    'nvidia_ctk_path': None,
    'timeout': 60,
}


class CdiError(Exception):
    """A spec cannot be made; ``msg`` says why and what to do, ``details`` go into the result."""

    def __init__(self, msg, **details):
        super(CdiError, self).__init__(msg)
        self.msg = msg
        self.details = details


def read_spec(path, module=None):
    """(text, spec, problem): the existing spec parsed, or why it could not be read.

    A directory or special file at ``path``, or a file that is not UTF-8 text, is refused
    (``fail_json`` with ``module``, else ``_files.FileProblem``), never read as empty.
    """
    text = _files.read_text(path, module)
    if text is None:
        return None, None, None
    try:
        return text, _yaml.loads(text), None
    except ValueError as exc:
        return text, None, 'cannot read %s as YAML or JSON: %s' % (path, exc)


def render(spec, fmt):
    if fmt == 'json':
        return json.dumps(spec, indent=2) + '\n'
    return _yaml.dump(spec, header=HEADER)


def ld_cache_dirs(get_bin_path, run_command, driver_root):
    """Folders of NVIDIA/CUDA libraries in the host's ld cache (only when driver_root is /)."""
    if driver_root not in ('/', ''):
        return []
    ldconfig = get_bin_path('ldconfig', opt_dirs=['/sbin', '/usr/sbin'])
    if not ldconfig:
        return []
    rc, out, _err = run_command([ldconfig, '-p'])
    dirs = []
    for line in out.splitlines() if rc == 0 else []:
        if '=>' in line and ('nvidia' in line or 'libcuda' in line):
            folder = os.path.dirname(line.split('=>', 1)[1].strip())
            if folder not in dirs:
                dirs.append(folder)
    return dirs


def host_facts(get_bin_path, nvidia_smi_path=None, timeout=60):
    """(driver_version, gpus, facts) from one nvidia-smi run; (None, None, facts) when nvidia-smi is
    not installed and was not asked for. Raises CdiError when nvidia-smi runs but fails."""
    facts = _nvidia_smi.gather(get_bin_path, nvidia_smi_path, timeout)
    if facts['status'] == 'ok':
        return facts['driver_version'], facts['gpus'], facts
    if facts['status'] == 'not_installed' and not nvidia_smi_path:
        return None, None, facts
    raise CdiError('cannot make a CDI spec: %s' % facts['message'], nvidia=facts)


def find_ctk(get_bin_path, params):
    """The nvidia-ctk to use for ``params['backend']`` (auto, nvidia-ctk), or None for native."""
    if params['backend'] not in ('auto', 'nvidia-ctk'):
        return None
    ctk = params.get('nvidia_ctk_path') or get_bin_path('nvidia-ctk', opt_dirs=CTK_DIRS)
    if ctk and not (os.path.isfile(ctk) and os.access(ctk, os.X_OK)):
        ctk = None
    if params['backend'] == 'nvidia-ctk' and not ctk:
        raise CdiError('backend=nvidia-ctk but nvidia-ctk was not found: install nvidia-container-toolkit-base, '
                       'set nvidia_ctk_path, or use backend=native')
    return ctk


def generate_ctk(params, ctk, driver_version):
    """The spec ``nvidia-ctk cdi generate`` makes, declaring the lowest cdiVersion its fields need."""
    work = tempfile.mkdtemp(prefix='cdi_spec.')
    try:
        out_file = os.path.join(work, 'nvidia.yaml')
        cmd = [ctk, 'cdi', 'generate', '--output=%s' % out_file, '--format=yaml', '--vendor=%s' % params['vendor'],
               '--class=%s' % params['class'], '--driver-root=%s' % params['driver_root'],
               '--dev-root=%s' % params['dev_root']]
        for strategy in params['device_name_strategy']:
            cmd.append('--device-name-strategy=%s' % strategy)
        for folder in params['library_dirs']:
            cmd.append('--library-search-path=%s' % folder)
        rc, out, err = _proc.run(cmd, params['timeout'])
        if rc is None:
            raise CdiError('nvidia-ctk cdi generate did not finish in %d s: raise timeout or use backend=native'
                           % params['timeout'])
        if rc != 0 or not os.path.exists(out_file):
            detail = ' '.join((err or out).split())[-600:]
            raise CdiError('nvidia-ctk cdi generate failed (exit code %s): %s. Run "%s" by hand, or use '
                           'backend=native' % (rc, detail, ' '.join(cmd)))
        with open(out_file) as handle:
            spec = _yaml.loads(handle.read())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not isinstance(spec, dict):
        raise CdiError('nvidia-ctk cdi generate wrote something that is not a CDI spec')
    spec['cdiVersion'] = _cdi.minimum_version(spec)
    stale = _cdi.stale_reason(spec, driver_version)
    if stale:
        raise CdiError('nvidia-ctk cdi generate made a spec for another driver (%s): nvidia-ctk found the '
                       'libraries of an old driver; remove them or set library_dirs and driver_root' % stale,
                       spec=spec)
    return spec


def make_spec(params, driver_version, gpus, cache_dirs, ctk, warn):
    """(spec, backend, advice): the spec for the running driver, validated (the reference CDI
    library's rules; the project's stricter advice goes to ``warn`` too). ``ctk`` from find_ctk (None:
    native). Raises CdiError, before anything is written, when it cannot be made or is invalid."""
    if ctk:
        backend = 'nvidia-ctk'
        if sorted(params['caps']) != ['mig-access']:
            warn('caps applies to the native backend only; nvidia-ctk decides the capabilities itself')
        spec = generate_ctk(params, ctk, driver_version)
    else:
        backend = 'native'
        if not driver_version:
            raise CdiError('cannot tell the driver version: nvidia-smi is not installed, /proc/driver/nvidia/version '
                           'is missing and no libcuda.so.<version> is under %s in %s; install the driver or add '
                           'library_dirs' % (params['driver_root'], ', '.join(_cdi.LIB_DIRS)))
        found = _cdi.discover(params['driver_root'], params['dev_root'], params['library_dirs'], driver_version,
                              gpus, cache_dirs, caps=params['caps'])
        if found['cap_problems']:
            raise CdiError('%s; nothing was written' % '; '.join(found['cap_problems']))
        for warning in found['warnings']:
            warn(warning)
        if not found['gpus']:
            raise CdiError('no NVIDIA GPU device node (/dev/nvidiaN) found under %s: load the driver (modprobe '
                           'nvidia; nvidia-smi creates the nodes) or fix dev_root. %s'
                           % (params['dev_root'], '; '.join(found['problems'])))
        if not found['libraries']:
            raise CdiError('no driver library named lib*.so.%s under %s in %s: add the folder that holds '
                           'libcuda.so.%s to library_dirs'
                           % (driver_version, params['driver_root'], ', '.join(found['lib_dirs']), driver_version))
        spec = _cdi.build_spec(found, params['vendor'], params['class'], params['device_name_strategy'],
                               params['dev_root'])
    problems, advice = _cdi.check_spec(spec, check_paths=True)
    if problems:
        raise CdiError('the generated CDI spec is not valid, nothing was written: %s' % '; '.join(problems),
                       problems=problems, spec=spec, backend=backend)
    for item in advice:
        warn(item)
    return spec, backend, advice


def why_rewrite(text, existing, read_problem, driver_version, spec):
    """Why an existing spec that differs from the wanted ``spec`` is rewritten."""
    if text is None:
        return 'there was no spec'
    if read_problem:
        return read_problem
    stale = _cdi.stale_reason(existing, driver_version)
    if stale:
        return stale
    annotations = existing.get('annotations') if isinstance(existing, dict) else None
    if isinstance(annotations, dict) and _cdi.LEGACY_ANNOTATION_DRIVER in annotations:
        return ('the spec was written by an earlier cdi_spec (cdiVersion %s with annotations); it is rewritten with '
                'cdiVersion %s, which consumers with an older CDI library read'
                % (existing.get('cdiVersion'), spec.get('cdiVersion')))
    return 'the spec differs from what the host needs'


# ---- the refresh command -------------------------------------------------------------------

def _which(name, required=False, opt_dirs=None):
    """AnsibleModule.get_bin_path's lookup, without Ansible: PATH, then ``opt_dirs``."""
    paths = os.environ.get('PATH', '').split(os.pathsep) + list(opt_dirs or [])
    for folder in paths:
        candidate = os.path.join(folder, name)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _run(argv):
    rc, out, err = _proc.run(argv, 60)
    return (1 if rc is None else rc), out, err


def write_atomic(path, text):
    """Replace ``path`` with ``text`` in one rename, keeping its mode and owner (0644 when new)."""
    folder = os.path.dirname(path) or '.'
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    try:
        old = os.stat(path)
    except OSError:
        old = None
    handle, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(text.encode('utf-8'))
        os.chmod(tmp, (old.st_mode & 0o7777) if old else 0o644)
        if old:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_options(path):
    """The options the role rendered, over DEFAULTS; ValueError names a bad file or option."""
    with open(path) as handle:
        given = json.load(handle)
    if not isinstance(given, dict):
        raise ValueError('%s must hold a JSON object of cdi_spec options' % path)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError('%s has unknown options %s (known: %s)' % (path, ', '.join(unknown), ', '.join(sorted(DEFAULTS))))
    options = dict(DEFAULTS)
    options.update(given)
    if options['backend'] not in ('auto', 'nvidia-ctk', 'native') or options['format'] not in ('yaml', 'json'):
        raise ValueError('%s: backend must be auto, nvidia-ctk or native and format yaml or json' % path)
    return options


def _say(line, stream=None):
    """One line of the command's output (the journal, under systemd)."""
    stream = stream or sys.stdout
    stream.write(line + '\n')
    stream.flush()


def refresh(options, get_bin_path=_which, run_command=_run, log=_say):
    """Make the spec for the running driver and write it when it differs. Returns the exit code."""
    try:
        driver_version, gpus, facts = host_facts(get_bin_path, options['nvidia_smi_path'], options['timeout'])
    except CdiError as exc:
        status = exc.details.get('nvidia', {}).get('status')
        if status in DRIVER_CHANGING:
            log('%s left as it is: the driver is being changed (%s). It is regenerated when the new kernel module '
                'is loaded (at boot). %s' % (options['path'], status, exc.details['nvidia'].get('message', '')))
            return 0
        log('%s not refreshed: %s' % (options['path'], exc.msg))
        return 1
    cache_dirs = ld_cache_dirs(get_bin_path, run_command, options['driver_root'])
    if driver_version is None:
        driver_version = _cdi.driver_version_from_host(options['driver_root'], list(options['library_dirs']) +
                                                       cache_dirs + _cdi.LIB_DIRS)
    warnings = []
    try:
        spec, backend, _advice = make_spec(options, driver_version, gpus, cache_dirs,
                                           find_ctk(get_bin_path, options), warnings.append)
    except CdiError as exc:
        log('%s not refreshed (nvidia-smi: %s): %s' % (options['path'], facts['status'], exc.msg))
        return 1
    for warning in warnings:
        log('warning: %s' % warning)
    try:
        text, existing, read_problem = read_spec(options['path'])
    except _files.FileProblem as exc:
        log('%s not refreshed: %s' % (options['path'], exc))
        return 1
    if existing == spec:
        log('%s is up to date for driver %s (%s backend)' % (options['path'], driver_version, backend))
        return 0
    reason = why_rewrite(text, existing, read_problem, driver_version, spec)
    write_atomic(options['path'], render(spec, options['format']))
    log('%s regenerated for driver %s (%s backend): %s' % (options['path'], driver_version, backend, reason))
    return 0


def main(argv=None):
    """k3s-gpu-cdi-refresh --config FILE: refresh the spec the options in FILE describe."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != '--config':
        _say('usage: k3s-gpu-cdi-refresh --config /etc/k3s-gpu/cdi-refresh.json', sys.stderr)
        return 2
    try:
        options = load_options(argv[1])
    except (IOError, OSError, ValueError) as exc:
        _say('k3s-gpu-cdi-refresh: cannot use %s: %s (rerun the nvidia_container_toolkit role to rewrite it)'
             % (argv[1], exc), sys.stderr)
        return 2
    return refresh(options)
