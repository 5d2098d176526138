# -*- coding: utf-8 -*-
"""plugins/module_utils/_plain.py: Ansible's tagged types come out as plain Python types."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.k3s_gpu.cluster.plugins.module_utils._plain import plain


class TaggedStr(str):
    pass


class TaggedInt(int):
    pass


class TaggedDict(dict):
    pass


def test_nested_subclasses_become_plain_types():
    data = TaggedDict({TaggedStr('gpus'): (TaggedInt(2), TaggedStr('H100'), 1.5, True, None)})
    result = plain(data)
    assert result == {'gpus': [2, 'H100', 1.5, True, None]}
    assert result.__class__ is dict
    key = next(iter(result))
    assert key.__class__ is str
    assert [v.__class__ for v in result["gpus"]] == [int, str, float, bool, type(None)]


def test_bool_stays_bool_not_int():
    assert plain(True) is True
    assert plain([False]) == [False] and plain([False])[0].__class__ is bool


def test_unknown_objects_pass_through():
    marker = object()
    assert plain(marker) is marker
