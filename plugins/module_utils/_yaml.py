# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML for CDI specs without PyYAML on the target.

``dump`` writes block-style YAML (deterministic, strings quoted whenever plain style could
be misread). ``loads`` uses PyYAML when it is installed; otherwise it reads block-style
YAML as written by ``dump`` and by Go's yaml libraries (nvidia-ctk): mappings,
sequences (indented or not), plain and quoted scalars, comments, flow ``[]``/``{}``
when empty. JSON, being YAML, is read by ``json`` first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

try:
    import yaml as _pyyaml
except ImportError:
    _pyyaml = None


class YamlError(ValueError):
    pass


_PLAIN = re.compile(r'^[A-Za-z0-9_/.][A-Za-z0-9_/.=+,@-]*$')
_SPECIAL = re.compile(r'^(true|false|yes|no|on|off|null|~|y|n|[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$',
                      re.I)


def _scalar(value):
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and not _SPECIAL.match(text):
        return text
    return json.dumps(text)


def _dump(value, indent, lines):
    pad = '  ' * indent
    if isinstance(value, dict):
        if not value:
            return
        for key, item in value.items():
            key_text = _scalar(str(key))
            if isinstance(item, dict) and item:
                lines.append('%s%s:' % (pad, key_text))
                _dump(item, indent + 1, lines)
            elif isinstance(item, list) and item:
                lines.append('%s%s:' % (pad, key_text))
                _dump(item, indent + 1, lines)
            elif isinstance(item, (dict, list)):
                lines.append('%s%s: %s' % (pad, key_text, '{}' if isinstance(item, dict) else '[]'))
            else:
                lines.append('%s%s: %s' % (pad, key_text, _scalar(item)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub = []
                _dump(item, indent + 1, sub)
                sub[0] = pad + '- ' + sub[0][len(pad) + 2:]
                lines.extend(sub)
            elif isinstance(item, list) and item:
                sub = []
                _dump(item, indent + 1, sub)
                sub[0] = pad + '- ' + sub[0][len(pad) + 2:]
                lines.extend(sub)
            elif isinstance(item, (dict, list)):
                lines.append('%s- %s' % (pad, '{}' if isinstance(item, dict) else '[]'))
            else:
                lines.append('%s- %s' % (pad, _scalar(item)))
    else:
        lines.append(pad + _scalar(value))


def dump(value, header=None):
    lines = ['---'] if header is None else ['# ' + line for line in header.splitlines()] + ['---']
    _dump(value, 0, lines)
    return '\n'.join(lines) + '\n'


def loads(text, force_subset=False):
    stripped = text.lstrip()
    if stripped.startswith('{') or stripped.startswith('['):
        try:
            return json.loads(text)
        except ValueError:
            pass
    if _pyyaml is not None and not force_subset:
        try:
            return _pyyaml.safe_load(text)
        except _pyyaml.YAMLError as exc:
            raise YamlError(str(exc))
    return _Parser(text).parse()


def _parse_scalar(text, lineno):
    text = text.strip()
    if text in ('', '~', 'null', 'Null', 'NULL'):
        return None
    if text == '[]':
        return []
    if text == '{}':
        return {}
    if text[0] == '"':
        try:
            return json.loads(text)
        except ValueError:
            raise YamlError('line %d: cannot read the string %s' % (lineno, text))
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise YamlError('line %d: unterminated string %s' % (lineno, text))
        return text[1:-1].replace("''", "'")
    if text[0] in '[{&*!|>%@`':
        raise YamlError('line %d: this YAML reader handles block style only (%s); install python3-yaml'
                        % (lineno, text[:20]))
    lowered = text.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    if re.match(r'^[-+]?\d+$', text):
        return int(text)
    if re.match(r'^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$', text):
        return float(text)
    return text


def _strip_comment(line):
    quote = None
    for pos, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in '"\'' and (pos == 0 or line[pos - 1] in ' :-[{,'):
            quote = ch
        elif ch == '#' and (pos == 0 or line[pos - 1] in ' \t'):
            return line[:pos].rstrip()
    return line.rstrip()


def _split_key(text, lineno):
    """'key: value' -> (key, value-or-None); None when the line is not a mapping entry."""
    if text[0] in '"\'':
        end = text.find(text[0], 1)
        while text[0] == '"' and end > 0 and text[end - 1] == '\\':
            end = text.find('"', end + 1)
        if end < 0:
            raise YamlError('line %d: unterminated key' % lineno)
        rest = text[end + 1:]
        if not rest.startswith(':'):
            return None
        return _parse_scalar(text[:end + 1], lineno), rest[1:].strip()
    match = re.match(r'^([^:#]+?)\s*:(\s+(.*))?$', text)
    if not match:
        return None
    return match.group(1), (match.group(3) or '').strip()


class _Parser(object):
    def __init__(self, text):
        self.items = []
        for number, raw in enumerate(text.splitlines(), 1):
            if raw.strip() in ('---', '...') and not raw.startswith(' '):
                continue
            if '\t' in raw[:len(raw) - len(raw.lstrip())]:
                raise YamlError('line %d: tabs are not allowed in indentation' % number)
            line = _strip_comment(raw)
            if line.strip():
                self.items.append((len(line) - len(line.lstrip(' ')), line.strip(), number))
        self.pos = 0

    def parse(self):
        if not self.items:
            return None
        value = self._block(self.items[0][0])
        if self.pos < len(self.items):
            raise YamlError('line %d: unexpected indentation' % self.items[self.pos][2])
        return value

    def _block(self, indent):
        _ind, text, _num = self.items[self.pos]
        if text == '-' or text.startswith('- '):
            return self._sequence(indent)
        return self._mapping(indent)

    def _sequence(self, indent):
        result = []
        while self.pos < len(self.items):
            ind, text, num = self.items[self.pos]
            if ind != indent or not (text == '-' or text.startswith('- ')):
                if ind > indent:
                    raise YamlError('line %d: unexpected indentation' % num)
                break
            rest = text[1:].strip()
            if not rest:
                self.pos += 1
                result.append(self._child(indent, num))
            elif _split_key(rest, num) is not None and not rest.startswith(('"', "'")) or \
                    (rest[0] in '"\'' and _split_key(rest, num) is not None):
                # "- key: value" starts a mapping whose keys are indented by two more.
                self.items[self.pos] = (indent + 2, rest, num)
                result.append(self._mapping(indent + 2))
            else:
                self.pos += 1
                result.append(_parse_scalar(rest, num))
        return result

    def _child(self, indent, num, allow_same_seq=False):
        if self.pos >= len(self.items):
            return None
        ind, text, _n = self.items[self.pos]
        is_seq = text == '-' or text.startswith('- ')
        if ind > indent or (allow_same_seq and ind == indent and is_seq):
            return self._block(ind)
        return None

    def _mapping(self, indent):
        result = {}
        while self.pos < len(self.items):
            ind, text, num = self.items[self.pos]
            if ind < indent:
                break
            if ind > indent:
                raise YamlError('line %d: unexpected indentation' % num)
            if text == '-' or text.startswith('- '):
                break
            split = _split_key(text, num)
            if split is None:
                raise YamlError('line %d: expected "key: value", got %r' % (num, text))
            key, rest = split
            if key in result:
                raise YamlError('line %d: key %s appears twice' % (num, key))
            self.pos += 1
            if rest:
                result[key] = _parse_scalar(rest, num)
            else:
                # Go's yaml writes sequences under a key without indenting them.
                result[key] = self._child(indent, num, allow_same_seq=True)
        return result
