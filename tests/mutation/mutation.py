# -*- coding: utf-8 -*-
"""Mutation testing of the most critical module_utils with mutmut (``make mutation``).

Run by scripts/mutation.sh inside .cache/mutmut-venv (tests/mutation/requirements.txt).
Usage: python tests/mutation/mutation.py [TARGET ...] (default: every target, one at a time)

For each target (TARGETS below: one source file and the unit tests that reach it), in
.cache/mutation/<target>/ (rebuilt each run, outside git):

1. the checkout's ``plugins/``, ``roles/`` and ``tests/unit/`` are copied under
   ``ansible_collections/k3s_gpu/cluster/``, so that the file path mutmut derives its module
   names from is the import path the tests use (mutmut's trampolines compare the two);
2. ``mutmut run`` mutates that one file and runs, for each mutant, the selected tests that
   reached the mutated function in the clean run;
3. each mutant is classified (``classify``) and the score printed; the full list of what
   survived, with the change each one makes, goes to .cache/mutation/<target>/report.txt.

String-only mutants. A mutant is *string-only* when the mutated function and the original,
read as Python tokens (``tokenize``), differ in nothing but the text of string literals:
same number of tokens, and every token that differs is a string literal on both sides
(mutmut's ``"text"`` -> ``"XXtextXX"``, ``"TEXT"``/``"text"`` case swaps). Anything else (an
operator, a number, a name, a keyword, an argument removed, a value replaced by None) is a
*logic* mutant. The rule is applied mechanically to every mutant; nothing is picked by hand.
Some string-only mutants do change behaviour (a dictionary key, a literal compared with
input); they are reported apart with their own kill rate, not dropped.

Verdicts (mutmut's exit codes): killed = a selected test failed (1, 3) or the mutant ran
past its time limit (timeout codes; a hang is a detected change); survived = every test
passed (0); no tests = no selected test calls the function (33, 5), counted as not killed;
anything else (suspicious, not checked) is counted as not killed and listed.

The score that the target is held to (MIN_SCORE, default 90) is killed / all logic mutants.
"""

from __future__ import absolute_import, division, print_function

import argparse
import ast
import difflib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tokenize

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTION = os.path.join('ansible_collections', 'k3s_gpu', 'cluster')

# target -> (source file, the unit tests that reach it in-process). Left out on purpose:
# tests that need the upstream peers (Go programs, containerd: test_*_peer.py), which would
# make the score depend on `make peers`, and tests that run the code in a subprocess
# (test_cdi_refresh.py, the playbook tests), where a mutated copy would fail for a reason
# other than the mutation (mutmut's trampolines import mutmut).
TARGETS = {
    'nvidia_smi': ('plugins/module_utils/_nvidia_smi.py',
                   ['tests/unit/test_nvidia_smi.py', 'tests/unit/test_cdi.py', 'tests/unit/plugins/test_addons_logic.py',
                    'tests/unit/plugins/test_diagnose_detectors.py']),
    'cdi': ('plugins/module_utils/_cdi.py',
            ['tests/unit/test_cdi.py', 'tests/unit/test_cdi_validation.py', 'tests/unit/test_cdi_discovery.py',
             'tests/unit/test_cdi_owner.py', 'tests/unit/plugins/test_diagnose_detectors.py']),
    'containerd': ('plugins/module_utils/_containerd.py',
                   ['tests/unit/test_containerd.py', 'tests/unit/test_containerd_dropin.py',
                    'tests/unit/test_containerd_logic.py', 'tests/unit/plugins/test_addons_logic.py']),
}
ORDER = ['nvidia_smi', 'cdi', 'containerd']

KILLED_CODES = {1: 'killed', 3: 'killed', 36: 'timeout', 24: 'timeout', -24: 'timeout', 152: 'timeout',
                255: 'timeout', -9: 'timeout', -11: 'segfault'}
SURVIVED_CODES = {0: 'survived'}
NO_TESTS_CODES = {33: 'no tests', 5: 'no tests'}


def verdict(code):
    """(status, killed?) for one mutmut exit code."""
    for table, killed in ((KILLED_CODES, True), (SURVIVED_CODES, False), (NO_TESTS_CODES, False)):
        if code in table:
            return table[code], killed
    return ('not checked' if code is None else 'suspicious (exit %s)' % code), False


# ---- classification ---------------------------------------------------------------------------

def _tokens(source):
    """Significant tokens of a function's source: (type, text), comments and layout left out."""
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER)
    readline = io.StringIO(textwrap.dedent(source)).readline
    return [(tok.type, tok.string) for tok in tokenize.generate_tokens(readline) if tok.type not in skip]


def is_string_only(original, mutant):
    """True when ``mutant`` differs from ``original`` only in the text of string literals."""
    before, after = _tokens(original), _tokens(mutant)
    if len(before) != len(after):
        return False
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    return bool(changed) and all(a[0] == tokenize.STRING and b[0] == tokenize.STRING for a, b in changed)


def function_sources(path):
    """{generated function name: source} of a mutated file (orig and mutants, methods included)."""
    with open(path) as handle:
        text = handle.read()
    lines = text.splitlines(True)
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and '__mutmut_' in node.name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found[node.name] = ''.join(lines[first - 1:node.end_lineno])
    return found


def _with_name(source, old, new):
    return source.replace('def %s(' % old, 'def %s(' % new, 1)


def classify(mutated_path, exit_code_by_key):
    """One row per mutant: name, function, kind (logic/string), status, killed, diff."""
    sources = function_sources(mutated_path)
    rows = []
    for key, code in sorted(exit_code_by_key.items()):
        name = key.rpartition('.')[2]                   # x_parse_xml__mutmut_12
        stem = name.rsplit('__mutmut_', 1)[0]           # x_parse_xml
        original = sources[stem + '__mutmut_orig']
        mutant = _with_name(sources[name], name, stem + '__mutmut_orig')
        status, killed = verdict(code)
        diff = [line for line in difflib.unified_diff(original.splitlines(), mutant.splitlines(), lineterm='', n=0)
                if line[:1] in '+-' and not line.startswith(('+++', '---'))]
        rows.append({'mutant': name, 'function': stem[2:] if stem.startswith('x_') else stem,
                     'kind': 'string' if is_string_only(original, mutant) else 'logic',
                     'status': status, 'killed': killed, 'diff': diff})
    return rows


def score(rows, kind):
    chosen = [r for r in rows if r['kind'] == kind]
    killed = sum(1 for r in chosen if r['killed'])
    return killed, len(chosen), (100.0 * killed / len(chosen)) if chosen else 100.0


# ---- running ----------------------------------------------------------------------------------

def _ignore(_folder, names):
    return [n for n in names if n in ('__pycache__', '.pytest_cache') or n.endswith('.pyc')]


def prepare(target, workdir):
    source, tests = TARGETS[target]
    if os.path.isdir(workdir):
        shutil.rmtree(workdir)
    collection = os.path.join(workdir, COLLECTION)
    # roles/: some of the tests read role files (test_addons_logic.py renders a role template).
    for folder in ('plugins', 'roles', os.path.join('tests', 'unit')):
        shutil.copytree(os.path.join(REPO, folder), os.path.join(collection, folder), ignore=_ignore)
    for test in tests:
        if not os.path.isfile(os.path.join(REPO, test)):
            raise SystemExit('ERROR: %s (a test of mutation target %s) does not exist: update TARGETS in %s'
                             % (test, target, __file__))
    selection = '\n'.join('    %s' % os.path.join(COLLECTION, t) for t in tests)
    with open(os.path.join(workdir, 'setup.cfg'), 'w') as handle:
        handle.write('[mutmut]\nsource_paths = ansible_collections\nonly_mutate = %s\n'
                     'pytest_add_cli_args_test_selection =\n%s\npytest_add_cli_args = -p no:cacheprovider\n'
                     'use_git_change_detection = false\n'
                     % (os.path.join(COLLECTION, source), selection))


def run_target(target, jobs, report_only=False):
    workdir = os.path.join(REPO, '.cache', 'mutation', target)
    source = TARGETS[target][0]
    mutated = os.path.join(workdir, 'mutants', COLLECTION, source)
    log = os.path.join(workdir, 'mutmut.log')
    timing = os.path.join(workdir, 'seconds')
    if not report_only:
        prepare(target, workdir)
        mutmut = os.path.join(os.path.dirname(sys.executable), 'mutmut')
        started = time.time()
        with open(log, 'w') as handle:
            # A session of its own, so that an interrupted run takes mutmut's workers with it.
            proc = subprocess.Popen([mutmut, 'run', '--max-children', str(jobs)], cwd=workdir, stdout=handle,
                                    stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'),
                                    start_new_session=True)
            try:
                rc = proc.wait()
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait()
        with open(timing, 'w') as handle:
            handle.write('%.0f\n' % (time.time() - started))
        if rc != 0:
            with open(log, errors='replace') as handle:
                tail = handle.read()[-3000:]
            raise SystemExit('ERROR: mutmut run for %s failed (exit %s); the end of %s:\n%s' % (target, rc, log, tail))
    meta = mutated + '.meta'
    if not os.path.isfile(meta):
        raise SystemExit('ERROR: no mutmut results in %s: run scripts/mutation.sh %s first' % (workdir, target))
    with open(meta) as handle:
        codes = json.load(handle)['exit_code_by_key']
    with open(timing) as handle:
        elapsed = float(handle.read())
    rows = classify(mutated, codes)
    with open(os.path.join(workdir, 'report.json'), 'w') as handle:
        json.dump(rows, handle, indent=1)
    write_report(target, rows, elapsed, os.path.join(workdir, 'report.txt'))
    return rows, elapsed


def write_report(target, rows, elapsed, path):
    source, tests = TARGETS[target]
    lines = ['%s (%s), tests: %s, %.0f s' % (target, source, ' '.join(tests), elapsed)]
    for kind in ('logic', 'string'):
        killed, total, pct = score(rows, kind)
        lines.append('%s mutants: %d of %d killed (%.1f %%)' % (kind, killed, total, pct))
    for kind in ('logic', 'string'):
        left = [r for r in rows if r['kind'] == kind and not r['killed']]
        lines.append('')
        lines.append('== %s mutants not killed: %d' % (kind, len(left)))
        for row in left:
            lines.append('-- %s [%s] in %s()' % (row['mutant'], row['status'], row['function']))
            lines.extend('   ' + d for d in row['diff'])
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('targets', nargs='*', help='%s (default: all, in that order)' % ', '.join(ORDER))
    parser.add_argument('--jobs', type=int, default=int(os.environ.get('MUTATION_JOBS', '2')))
    parser.add_argument('--min', type=float, default=float(os.environ.get('MUTATION_MIN', '90')),
                        help='lowest logic score (%%) a target may have (default 90)')
    parser.add_argument('--report-only', action='store_true',
                        help='classify the results of the last run again, without running mutmut')
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error('unknown target %s (known: %s)' % (', '.join(unknown), ', '.join(ORDER)))
    below = []
    summary = []
    for target in args.targets or ORDER:
        print('==> mutation testing %s (%s)' % (target, TARGETS[target][0]), file=sys.stderr)
        rows, elapsed = run_target(target, args.jobs, args.report_only)
        logic, string = score(rows, 'logic'), score(rows, 'string')
        summary.append('%-11s logic %3d/%3d killed %5.1f %%   string-only %3d/%3d killed %5.1f %%   %4.0f s   '
                       '.cache/mutation/%s/report.txt' % ((target,) + logic + string + (elapsed, target)))
        if logic[2] < args.min:
            below.append('%s %.1f %%' % (target, logic[2]))
    print('\n'.join(summary))
    if below:
        print('ERROR: logic mutation score below %.0f %%: %s. Each report.txt lists the mutants that survived '
              'with the change they make: add a unit test that fails on it' % (args.min, ', '.join(below)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
