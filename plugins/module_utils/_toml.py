# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read TOML on targets that lack ``tomllib`` (Python < 3.11).

``loads`` uses ``tomllib`` when present; otherwise a parser for the subset that containerd
configs use: ``[table]`` headers with quoted segments, ``key = value`` with strings,
booleans, numbers and (multi-line) arrays, comments. Like TOML itself it refuses a table
or key defined twice, which is the mistake that stops containerd from starting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

try:
    import tomllib as _tomllib
except ImportError:  # Python < 3.11
    _tomllib = None


class TomlError(ValueError):
    pass


def loads(text, force_subset=False):
    if _tomllib is not None and not force_subset:
        try:
            return _tomllib.loads(text)
        except _tomllib.TOMLDecodeError as exc:
            raise TomlError(str(exc))
    return _Parser(text).parse()


_BARE = re.compile(r'[A-Za-z0-9_-]+')


def split_key(text, lineno):
    """Split a dotted key (``a."b.c".d``) into its parts."""
    parts, i, text = [], 0, text.strip()
    while i < len(text):
        ch = text[i]
        if ch in ' \t':
            i += 1
            continue
        if ch == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == '\\' else 1
            if end >= len(text):
                raise TomlError('line %d: unterminated quoted key' % lineno)
            parts.append(json.loads(text[i:end + 1]))
            i = end + 1
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise TomlError('line %d: unterminated quoted key' % lineno)
            parts.append(text[i + 1:end])
            i = end + 1
        else:
            match = _BARE.match(text, i)
            if not match:
                raise TomlError('line %d: invalid key %r' % (lineno, text))
            parts.append(match.group(0))
            i = match.end()
        while i < len(text) and text[i] in ' \t':
            i += 1
        if i < len(text):
            if text[i] != '.':
                raise TomlError('line %d: invalid key %r' % (lineno, text))
            i += 1
            if i >= len(text):
                raise TomlError('line %d: key ends with a dot' % lineno)
    if not parts:
        raise TomlError('line %d: empty key' % lineno)
    return parts


def _strip_comment(line):
    """Drop a trailing comment that is not inside a string."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == '\\' and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in '"\'':
            quote = ch
        elif ch == '#':
            return line[:i]
        i += 1
    return line


class _Parser(object):
    def __init__(self, text):
        self.lines = text.splitlines()
        self.root = {}
        self.defined = set()

    def _table(self, parts, lineno):
        node = self.root
        for part in parts:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise TomlError('line %d: %s is a value, not a table' % (lineno, '.'.join(parts)))
        return node

    def parse(self):
        current = self.root
        i = 0
        while i < len(self.lines):
            lineno = i + 1
            line = _strip_comment(self.lines[i]).strip()
            i += 1
            if not line:
                continue
            if line.startswith('[['):
                raise TomlError('line %d: arrays of tables are not supported here' % lineno)
            if line.startswith('['):
                if not line.endswith(']'):
                    raise TomlError('line %d: invalid table header %r' % (lineno, line))
                parts = tuple(split_key(line[1:-1], lineno))
                if parts in self.defined:
                    raise TomlError('line %d: table [%s] is defined twice' % (lineno, '.'.join(parts)))
                self.defined.add(parts)
                current = self._table(parts, lineno)
                continue
            if '=' not in line:
                raise TomlError('line %d: expected key = value, got %r' % (lineno, line))
            key_text, value_text = self._split_assignment(line, lineno)
            # An array may continue on the next lines.
            while value_text.startswith('[') and not self._balanced(value_text):
                if i >= len(self.lines):
                    raise TomlError('line %d: unterminated array' % lineno)
                value_text += ' ' + _strip_comment(self.lines[i]).strip()
                i += 1
            keys = split_key(key_text, lineno)
            target = current
            for part in keys[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise TomlError('line %d: %s is a value, not a table' % (lineno, key_text))
            if keys[-1] in target:
                raise TomlError('line %d: key %s is defined twice' % (lineno, '.'.join(keys)))
            value, rest = self._value(value_text, lineno)
            if rest.strip():
                raise TomlError('line %d: unexpected %r after the value' % (lineno, rest.strip()))
            target[keys[-1]] = value
        return self.root

    @staticmethod
    def _split_assignment(line, lineno):
        quote = None
        for pos, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in '"\'':
                quote = ch
            elif ch == '=':
                return line[:pos].strip(), line[pos + 1:].strip()
        raise TomlError('line %d: expected key = value' % lineno)

    @staticmethod
    def _balanced(text):
        depth, quote, i = 0, None, 0
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == '\\' and quote == '"':
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in '"\'':
                quote = ch
            elif ch == '[':
                depth += 1
            elif ch == ']':
                depth -= 1
            i += 1
        return depth == 0

    def _value(self, text, lineno):
        text = text.lstrip()
        if not text:
            raise TomlError('line %d: missing value' % lineno)
        ch = text[0]
        if ch == '"':
            end = 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == '\\' else 1
            if end >= len(text):
                raise TomlError('line %d: unterminated string' % lineno)
            try:
                return json.loads(text[:end + 1]), text[end + 1:]
            except ValueError:
                raise TomlError('line %d: invalid string %s' % (lineno, text[:end + 1]))
        if ch == "'":
            end = text.find("'", 1)
            if end < 0:
                raise TomlError('line %d: unterminated string' % lineno)
            return text[1:end], text[end + 1:]
        if ch == '[':
            items, rest = [], text[1:]
            while True:
                rest = rest.lstrip()
                if rest.startswith(']'):
                    return items, rest[1:]
                item, rest = self._value(rest, lineno)
                items.append(item)
                rest = rest.lstrip()
                if rest.startswith(','):
                    rest = rest[1:]
                elif not rest.startswith(']'):
                    raise TomlError('line %d: expected , or ] in array' % lineno)
        if ch == '{':
            raise TomlError('line %d: inline tables are not supported here' % lineno)
        match = re.match(r'(true|false)(?![A-Za-z0-9_])', text)
        if match:
            return match.group(1) == 'true', text[match.end():]
        match = re.match(r'[+-]?(\d[\d_]*)(\.\d+)?([eE][+-]?\d+)?', text)
        if match:
            number = match.group(0).replace('_', '')
            value = float(number) if (match.group(2) or match.group(3)) else int(number)
            return value, text[match.end():]
        raise TomlError('line %d: unsupported value %r' % (lineno, text[:40]))
