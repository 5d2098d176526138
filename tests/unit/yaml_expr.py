# -*- coding: utf-8 -*-
"""Evaluate an expression where a role or playbook writes it, with Ansible's own templating.

Where a rule is written with builtin filters and tests in YAML (not a filter of ours), the
unit tests read the expression out of the committed file and evaluate it here, so what they
check is what the play runs.
"""

from __future__ import absolute_import, division, print_function

import os

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _tasks(node):
    if isinstance(node, list):
        for entry in node:
            yield from _tasks(entry)
    elif isinstance(node, dict):
        yield node
        for key in ('tasks', 'pre_tasks', 'post_tasks', 'handlers', 'block', 'rescue', 'always'):
            yield from _tasks(node.get(key))


def task(relpath, name):
    """The task (or play) called ``name`` in the YAML file at ``relpath`` (from the repository root)."""
    with open(os.path.join(REPO_ROOT, relpath)) as handle:
        data = yaml.safe_load(handle)
    found = [t for t in _tasks(data) if t.get('name') == name]
    assert len(found) == 1, '%s: %d tasks named %r' % (relpath, len(found), name)
    return found[0]


def trust(text):
    """A template string from a committed file, marked as one Ansible may evaluate (for a
    variable whose value is itself a template)."""
    return trust_as_template(text)


def _templar(variables):
    return Templar(loader=DataLoader(), variables=variables)


def template(text, variables):
    """The value of a ``{{ ... }}`` string, as a task's argument would get it."""
    return _templar(variables).template(trust_as_template(text))


def condition(text, variables):
    """The truth of a conditional (``when``, ``until``, ``that``)."""
    return _templar(variables).evaluate_conditional(trust_as_template(text))
