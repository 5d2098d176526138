# -*- coding: utf-8 -*-
"""docs/safety.md lists exactly the safety cases the sources hold (scripts/safety-cases.py)."""

from __future__ import absolute_import, division, print_function

import os
import subprocess
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def test_docs_safety_lists_every_case_and_only_those():
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'scripts', 'safety-cases.py'), '--check'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_readme_links_the_safety_page():
    with open(os.path.join(REPO_ROOT, 'README.md')) as handle:
        assert '(docs/safety.md)' in handle.read()
