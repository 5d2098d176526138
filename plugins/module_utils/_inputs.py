# -*- coding: utf-8 -*-
# Copyright (c) k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The input rules of the collection, in one place: pure functions, no Ansible imports.

Each ``*_problem`` function returns '' when the value is fine, else one sentence that names
the variable, says what is wrong and how to fix it. A value marked secret is never quoted.
Used by the validate_inputs action (roles' validate tasks), the k3s_mounts and
parse_problem filters (reset, existing config files) and tests/unit/test_inputs.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath
import re

from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

# Folders whose removal would break or empty the system (and their contents' owners).
# A path that is one of these, or not deep enough to be a folder of its own, is refused.
SYSTEM_DIRS = frozenset([
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32',
    '/lost+found', '/media', '/mnt', '/nix', '/opt', '/proc', '/root', '/run', '/sbin', '/snap',
    '/srv', '/sys', '/tmp', '/usr', '/var',
    '/etc/default', '/etc/rancher', '/etc/systemd', '/etc/systemd/system', '/nix/store',
    '/run/lock', '/run/user', '/usr/bin', '/usr/include', '/usr/lib', '/usr/lib32', '/usr/lib64',
    '/usr/libexec', '/usr/local', '/usr/local/bin', '/usr/local/lib', '/usr/local/sbin',
    '/usr/local/share', '/usr/sbin', '/usr/share', '/usr/src', '/var/backups', '/var/cache',
    '/var/lib', '/var/lib/rancher', '/var/local', '/var/lock', '/var/log', '/var/mail', '/var/opt',
    '/var/run', '/var/spool', '/var/tmp',
])
# Kernel file systems: nothing below them is a folder K3s may own.
VIRTUAL_ROOTS = ('/proc', '/sys', '/dev')
# Folders of people: /home/<user> itself is refused, a folder below it is not.
HOME_ROOTS = ('/home',)
# Characters a managed path may hold: no blanks, quotes, globs or shell syntax, so that a
# path is safe in a regular expression (escaped), a shell word and a systemd unit.
_PATH_CHARS = re.compile(r'^[A-Za-z0-9._+@%:,=/-]+\Z')

# The words Ansible reads as booleans (convert_bool), lowercase.
ANSIBLE_BOOLEANS = frozenset(v for v in BOOLEANS_TRUE | BOOLEANS_FALSE if isinstance(v, str))

_DNS_LABEL = r'[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
_HOST_NAME = re.compile(r'^%s(\.%s)*\.?\Z' % (_DNS_LABEL, _DNS_LABEL))
_IPV4 = re.compile(r'^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}\Z')
_IPV6 = re.compile(r'^[0-9A-Fa-f:.]+\Z')
_HEX40 = re.compile(r'^[0-9A-F]{40}\Z')
_HEX64 = re.compile(r'^[0-9a-f]{64}\Z')
_INT = re.compile(r'^[+-]?[0-9]+\Z')


def _kind(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, dict):
        return 'a dict'
    if isinstance(value, (list, tuple)):
        return 'a list'
    return 'a %s' % type(value).__name__


def _shown(value, secret):
    return '(value hidden)' if secret else repr(value)


# ------------------------------------------------------------------ paths

def path_problem(name, path, removable=False):
    """An absolute, normalised path of safe characters. ``removable``: also one that the
    collection may delete recursively (reset): not a system folder, not a home, not directly
    under the root or inside a kernel file system."""
    if not isinstance(path, str) or not path:
        return '%s is %s: give an absolute path such as /var/lib/rancher/k3s' % (
            name, 'empty' if path == '' else _kind(path))
    if not path.startswith('/'):
        return '%s %r is not an absolute path: start it with /' % (name, path)
    if not _PATH_CHARS.match(path):
        return ('%s %r holds a character outside [A-Za-z0-9._+@%%:,=/-] (a blank, quote, glob or shell '
                'character): choose a plain path' % (name, path))
    if '//' in path or posixpath.normpath(path) != path:
        return ('%s %r is not normalised (no //, /./, /../ or trailing /): write it as %r'
                % (name, path, posixpath.normpath('/' + path.lstrip('/'))))
    if not removable:
        return ''
    if path in SYSTEM_DIRS:
        return ('%s is %s, a system folder: the collection removes this path on reset, so it must be a '
                'folder of K3s\'s own such as /var/lib/rancher/k3s' % (name, path))
    parts = path.strip('/').split('/')
    if len(parts) < 2:
        return ('%s %s is directly under /: the collection removes this path on reset, so give it a folder '
                'of its own at least two levels deep, such as /data/k3s' % (name, path))
    if any(path == root or path.startswith(root + '/') for root in VIRTUAL_ROOTS):
        return '%s %s is inside a kernel file system (%s): choose a folder on a disk' % (
            name, path, ', '.join(VIRTUAL_ROOTS))
    if any(len(parts) == 2 and path.startswith(root + '/') for root in HOME_ROOTS):
        return ('%s %s is a home folder: the collection removes this path on reset; use a folder below it, '
                'such as %s/k3s' % (name, path, path))
    return ''


def strictly_under(path, root):
    """True when ``path`` lies below ``root`` (never ``root`` itself); both normalised."""
    return path != root and path.startswith(root.rstrip('/') + '/')


def _unescape_mount(field):
    # /proc/self/mounts escapes blank, tab, newline and backslash as \040, \011, \012, \134.
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def _mount_entries(mounts_text):
    """[(mount point, self bind)] of /proc/self/mountinfo or /proc/self/mounts text.

    ``self bind`` is True only for a mountinfo entry that binds a folder onto itself (same
    device as its parent mount, and the folder it shows is the one it covers), which is what
    the kubelet makes of its root dir to share its mounts; a file system of its own (a disk
    mounted at the folder) or a bind of another folder is never one. /proc/self/mounts cannot
    tell, so there it is always False.
    """
    lines = [line.split() for line in (mounts_text or '').splitlines() if line.strip()]
    mountinfo = bool(lines) and all(len(f) >= 5 and re.match(r'^[0-9]+:[0-9]+\Z', f[2]) for f in lines)
    if not mountinfo:
        return [(_unescape_mount(f[1]), False) for f in lines if len(f) >= 2]
    by_id = dict((f[0], f) for f in lines)
    entries = []
    for f in lines:
        point, root = _unescape_mount(f[4]), _unescape_mount(f[3])
        parent = by_id.get(f[1])
        self_bind = False
        if parent is not None and parent[2] == f[2] and root != '/':
            parent_point, parent_root = _unescape_mount(parent[4]), _unescape_mount(parent[3])
            if parent_point == '/' or strictly_under(point, parent_point):
                shown = posixpath.normpath(posixpath.join(parent_root, posixpath.relpath(point, parent_point)))
                self_bind = shown == root
        entries.append((point, self_bind))
    return entries


def k3s_mounts(mounts_text, roots, netns_prefix='/run/netns/cni-'):
    """Mount points of /proc/self/mountinfo (or /proc/self/mounts) that lie strictly below one
    of ``roots`` (K3s's own folders), a root itself only when it is bound onto itself (the
    kubelet does that to its root dir; never a disk mounted there), plus the CNI network
    namespaces /run/netns/cni-<id>; deepest first. A root that is not a safe removable path
    is ignored (the caller has refused it before)."""
    safe_roots = [r for r in roots if isinstance(r, str) and path_problem('root', r, removable=True) == '']
    found = set()
    for point, self_bind in _mount_entries(mounts_text):
        if posixpath.normpath(point) != point or '//' in point:
            continue
        if any(strictly_under(point, root) or (self_bind and point == root) for root in safe_roots):
            found.add(point)
        elif (point.startswith(netns_prefix) and '/' not in point[len(netns_prefix):]
              and re.match(r'^[A-Za-z0-9-]+\Z', point[len(netns_prefix):])):
            found.add(point)
    return sorted(found, key=lambda p: (-p.count('/'), p))


# ------------------------------------------------------------------ scalars

def token_problem(name, value, optional=True):
    """A cluster token: a string without blanks or control characters; never quoted back."""
    if value is None or value == '':
        return '' if optional else '%s is empty: set it (for example from ansible-vault)' % name
    if not isinstance(value, str):
        return '%s is %s: write the token as a string (in quotes)' % (name, _kind(value))
    if re.search(r'[\s\x00-\x1f\x7f]', value):
        return ('%s holds a blank, newline or control character (value hidden): a K3s token is one word; '
                'check the vault file for a trailing newline or space' % name)
    return ''


def endpoint_problem(name, value, optional=True):
    """host[:port] without a scheme or path: a DNS name, an IPv4 address or [IPv6][:port]."""
    if value is None or value == '':
        return '' if optional else '%s is empty: give a host name or address' % name
    if not isinstance(value, str):
        return '%s is %s: give host or host:port as a string' % (name, _kind(value))
    if '://' in value:
        return '%s %r has a scheme: give only host or host:port, such as k3s.example.com:6443' % (name, value)
    try:
        host, port = split_endpoint(value)
    except ValueError as exc:
        return '%s %r is not host or host:port: %s' % (name, value, exc)
    if port is not None and not 1 <= port <= 65535:
        return '%s %r: the port must be 1 to 65535' % (name, value)
    if not (_IPV4.match(host) or _HOST_NAME.match(host) or (':' in host and _IPV6.match(host))):
        return '%s %r: %r is not a host name or IP address' % (name, value, host)
    return ''


def split_endpoint(value):
    """'host', 'host:port', '[v6]', '[v6]:port' or a bare IPv6 address -> (host, port or None)."""
    if value.startswith('['):
        end = value.find(']')
        if end < 0:
            raise ValueError('an IPv6 address in [ ] lacks its ]')
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(':'):
            raise ValueError('only :port may follow ]')
        port = rest[1:] if rest else None
    elif value.count(':') > 1:
        host, port = value, None
    elif ':' in value:
        host, port = value.split(':', 1)
    else:
        host, port = value, None
    if '/' in host or not host:
        raise ValueError('no path and no empty host')
    if port is not None:
        if not port.isdigit():
            raise ValueError('the port %r is not a number' % port)
        return host, int(port)
    return host, None


def endpoint_parts(value):
    """{'host', 'port' (None when not given), 'url_host' (IPv6 in brackets)} of a checked endpoint."""
    host, port = split_endpoint(value)
    return {'host': host, 'port': port, 'url_host': '[%s]' % host if ':' in host else host}


def url_problem(name, value, optional=False, schemes=('http', 'https'), opt_in=''):
    """An http(s) URL with a host, no blanks and no user:password@ part."""
    if value is None or value == '':
        return '' if optional else '%s is empty: give an %s:// URL' % (name, ' or '.join(schemes))
    if not isinstance(value, str):
        return '%s is %s: give a URL as a string' % (name, _kind(value))
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)$', value)
    if not match:
        return '%s %r is not a URL: give %s://host/path' % (name, value, schemes[-1])
    scheme, authority = match.group(1).lower(), match.group(2)
    if scheme not in schemes:
        hint = (' (or set %s: true to allow plain http, for a mirror whose content is pinned by checksum)'
                % opt_in) if opt_in else ''
        return '%s %r uses %s://: only %s:// is allowed%s' % (name, value, scheme, ':// or '.join(schemes), hint)
    if '@' in authority:
        return ('%s has a user name or password in it (value hidden): put the credentials in the tool\'s own '
                'secret store (for apt /etc/apt/auth.conf.d), never in the URL' % name)
    if not authority or re.search(r'\s', value):
        return '%s %r has no host or holds a blank' % (name, value)
    return ''


def fingerprint(value):
    """The canonical form of an OpenPGP fingerprint: upper case, blanks removed."""
    return str(value).replace(' ', '').upper()


def fingerprint_problem(name, value):
    """A full v4 OpenPGP fingerprint: exactly 40 hex digits (blanks between groups allowed)."""
    if not isinstance(value, str):
        return '%s has %s where a fingerprint string is needed: write it in quotes' % (name, _kind(value))
    if not _HEX40.match(fingerprint(value)):
        return ('%s has %r: a key fingerprint is exactly 40 hex digits (gpg --show-keys --with-fingerprint); '
                'a short key ID is not accepted' % (name, value))
    return ''


def unpinned_fingerprints(found, pinned):
    """The fingerprints in ``found`` that are not exactly one of ``pinned`` (canonical forms
    compared as whole strings, never as patterns)."""
    wanted = set(fingerprint(p) for p in pinned)
    return [f for f in found if fingerprint(f) not in wanted]


def sha256_problem(name, value, optional=True):
    if value is None or value == '':
        return '' if optional else '%s is empty: give the sha256 (64 hex digits)' % name
    if not isinstance(value, str) or not _HEX64.match(value.lower()):
        return '%s has %r: a sha256 is exactly 64 hex digits (sha256sum prints it)' % (name, value)
    return ''


def positive_int_problem(name, value):
    """A whole number >= 1 (delays, retries, timeouts); a digit string counts."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INT.match(value))):
        return '%s is %s: give a whole number of 1 or more' % (name, _shown(value, False))
    if int(value) < 1:
        return '%s is %s: it must be 1 or more (0 or less would never wait or divide by zero)' % (name, value)
    return ''


def bool_problem(name, value, secret=False):
    """True or false. YAML booleans, and the strings Ansible reads as booleans (yes/no, on/off,
    true/false, 1/0, as `-e name=true` gives), are accepted; anything else is refused."""
    if isinstance(value, bool):
        return ''
    if isinstance(value, str) and value.strip().lower() in ANSIBLE_BOOLEANS:
        return ''
    if isinstance(value, int) and value in (0, 1):
        return ''
    return '%s is %s, not a boolean: write true or false' % (name, _shown(value, secret))


def form_problem(form, name, value, optional=False, secret=False, opt_in=''):
    """Dispatch on ``form``; the forms are documented in plugins/modules/validate_inputs.py."""
    if optional and (value is None or value == ''):
        return ''
    if form == 'path':
        return path_problem(name, value)
    if form == 'removable_path':
        return path_problem(name, value, removable=True)
    if form == 'token':
        return token_problem(name, value, optional=optional)
    if form == 'endpoint':
        return endpoint_problem(name, value, optional=optional)
    if form == 'url':
        return url_problem(name, value, optional=optional)
    if form == 'https_url':
        return url_problem(name, value, optional=optional, schemes=('https',), opt_in=opt_in)
    if form == 'fingerprints':
        if not isinstance(value, (list, tuple)) or not value:
            return '%s must be a non-empty list of 40-hex fingerprints' % name
        return '; '.join(p for p in (fingerprint_problem(name, v) for v in value) if p)
    if form == 'sha256':
        return sha256_problem(name, value, optional=optional)
    if form == 'positive_int':
        return positive_int_problem(name, value)
    if form == 'bool':
        return bool_problem(name, value, secret=secret)
    raise ValueError('unknown input form %r' % form)


# ------------------------------------------------------------------ argument specs

def _type_problem(type_name, value):
    """'' or 'is <kind>, not <wanted>' for a value of an argument-spec type (strict: no string
    stands in for a list or dict, no boolean for a string)."""
    if type_name in (None, 'raw'):
        return ''
    if value is None:
        return 'is null (empty in YAML): give a value or leave the variable out'
    if type_name == 'list':
        ok = isinstance(value, (list, tuple))
        wanted = 'a list (write [a, b] or one "- item" per line; a comma-separated string is not a list)'
    elif type_name == 'dict':
        ok = isinstance(value, dict)
        wanted = 'a dict (key: value lines; a "k=v" string is not a dict)'
    elif type_name == 'bool':
        ok = not bool_problem('', value)
        wanted = 'a boolean: write true or false'
    elif type_name == 'int':
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and bool(_INT.match(value)))
        wanted = 'a whole number'
    elif type_name == 'float':
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        wanted = 'a number'
    elif type_name in ('str', 'path'):
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        wanted = 'a string (quote true/false/yes/no when you mean the text)'
    else:
        return ''
    return '' if ok else 'is %s, not %s' % (_kind(value), wanted)


def type_problems(options, values):
    """Strict type check of ``values`` (name -> value, only the variables that are set) against
    the ``options`` of a role's argument spec entry point. Ansible's own validation converts
    'a,b' into a list and 'k=v' into a dict without changing the variable, so such a value
    would reach the tasks as a string; this refuses it. Values are never quoted."""
    problems = []
    for name in sorted(options or {}):
        if name not in values:
            continue
        spec = options[name] or {}
        value = values[name]
        problem = _type_problem(spec.get('type', 'str'), value)
        if problem:
            problems.append('%s %s' % (name, problem))
            continue
        if spec.get('type') == 'list' and spec.get('elements'):
            bad = [i for i, item in enumerate(value) if _type_problem(spec['elements'], item)]
            if bad:
                problems.append('%s has item(s) %s that are not %s' % (
                    name, ', '.join('#%d' % (i + 1) for i in bad), spec['elements']))
    return problems


# ------------------------------------------------------------------ existing files

def parse_problem(text, fmt, mapping=True):
    """'' when ``text`` parses as ``fmt`` (yaml or json) and, with ``mapping``, is a mapping
    (or empty YAML); else where and what is wrong. The file's content is never quoted, as it
    may hold credentials."""
    if fmt == 'json':
        try:
            data = json.loads(text)
        except ValueError as exc:
            where = ' at line %s column %s' % (exc.lineno, exc.colno) if hasattr(exc, 'lineno') else ''
            return 'is not valid JSON%s (%s)' % (where, getattr(exc, 'msg', 'parse error'))
        if mapping and not isinstance(data, dict):
            return 'is JSON, but %s, not an object' % _kind(data)
        return ''
    if fmt == 'yaml':
        import yaml  # the controller always has PyYAML (Ansible needs it)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, 'problem_mark', None)
            where = ' at line %d column %d' % (mark.line + 1, mark.column + 1) if mark else ''
            return 'is not valid YAML%s (%s)' % (where, getattr(exc, 'problem', None) or 'parse error')
        if mapping and data is not None and not isinstance(data, dict):
            return 'is YAML, but %s, not a mapping of settings' % _kind(data)
        return ''
    raise ValueError('unknown format %r' % fmt)
