"""List the safety suite's cases (docs/safety.md, section "The cases") from the sources.

    python3 scripts/safety-cases.py           print the section
    python3 scripts/safety-cases.py --write   rewrite it in docs/safety.md
    python3 scripts/safety-cases.py --check   exit 1 when docs/safety.md differs (tests/unit/test_safety_doc.py)

A case is a task named "Case ..." in a negative playbook, a "Run case ..." task of an
integration target, or a test (each parametrized item counts) in a unit test file below.
Each molecule and integration case must be mapped to the rules of issue #15 it proves and to
its category in CASES; an unmapped or vanished case fails --check, so the list cannot drift.
"""

import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, 'docs', 'safety.md')
BEGIN, END = '<!-- cases:begin (scripts/safety-cases.py --write) -->', '<!-- cases:end -->'

RULES = {
    1: 'reset cannot harm the host',
    2: 'health gates fail',
    3: 'validate before change',
    4: 'nothing the user had is lost',
    5: 'no secret on screen',
    6: 'supply-chain pins hold',
}

# Where the cases are, with how each runs.
PLAYBOOKS = [
    ('molecule/k3s-lab/negative.yml', 'k3s-lab'),
    ('molecule/k3s-lab/reset-check.yml', 'k3s-lab'),
    ('molecule/k3s-lab/run-vvv.yml', 'k3s-lab, k3s-lab-ha'),
    ('molecule/k3s-lab/gate-check.yml', 'k3s-lab'),
    ('molecule/host-roles-shared/negative.yml', 'debian12'),
    ('tests/integration/targets/nvidia_driver_cuda_keys/tasks/main.yml', 'integration'),
]
UNIT_FILES = [
    ('tests/unit/test_inputs.py', [1, 3, 6], 'the rules themselves (module_utils/_inputs.py)'),
    ('tests/unit/test_files.py', [3, 4], 'module_utils/_files.py: directories, non-text files, backups'),
    ('tests/unit/test_module_files.py', [3, 4], 'cdi_spec and k3s_containerd_runtime on such files'),
    ('tests/unit/plugins/test_diagnose_playbook.py', [5], 'diagnose.yml at -vvv over config files holding secrets'),
]

# case name -> (rules, category)
CASES = {
    # k3s-lab negative.yml
    'Case invalid version string': ([3], 'malformed version'),
    'Case even number of servers': ([3], 'conflicting inventory'),
    'Case unknown disable entry': ([3], 'unknown choice'),
    'Case external datastore without a token': ([3], 'missing input'),
    'Case token with a blank': ([3, 5], 'malformed token'),
    'Case API endpoint with a scheme': ([3], 'malformed URL/endpoint'),
    'Case plain http release URL': ([3, 6], 'malformed URL/endpoint'),
    'Case disable given as a string': ([3], 'wrong type'),
    'Case boolean that is not one': ([3], 'wrong type'),
    'Case unknown taint effect': ([3], 'unknown choice'),
    'Case start timeout of zero': ([2, 3], 'wrong value'),
    'Case system folder as the data dir': ([1, 3], 'dangerous path'),
    'Case binary pin that does not match': ([6], 'supply chain'),
    'Case NVIDIA runtime not installed': ([3], 'missing file'),
    'Case no token source': ([3], 'missing file'),
    'Case invalid taint': ([3], 'malformed taint'),
    'Case invalid label': ([3], 'malformed label'),
    'Case docker mode without Docker': ([3], 'missing host state'),
    'Case labels given as a string': ([3], 'wrong type'),
    'Case token in the config variables': ([3, 5], 'secret in the wrong place'),
    'Case damaged drop-in that the role would replace': ([3, 4], 'corrupt config (YAML)'),
    'Case directory where a drop-in file goes': ([3, 4], 'directory where a file is expected'),
    'Case registries.yaml written by someone else is kept': ([4], 'foreign file kept'),
    'Case site.yml with an unknown add-on': ([3], 'unknown choice'),
    'Case site.yml on an inventory without a server group': ([3], 'inventory missing a group'),
    'Case site.yml with a host outside k3s_cluster': ([3], 'inventory missing a group'),
    # k3s-lab reset-check.yml
    'Case reset without k3s_reset_confirm': ([1], 'missing confirmation'),
    'Case reset of an inventory without a k3s_cluster group and without confirmation': ([1], 'inventory missing a group'),
    'Case reset confirmed on one host of two': ([1], 'inventory shape'),
    'Case reset with a confirmation that is not a boolean': ([1, 3], 'wrong type'),
    'Case reset of a system folder as the data dir': ([1], 'dangerous path'),
    'Case reset of a data dir that climbs out of its folder': ([1], 'dangerous path'),
    # k3s-lab run-vvv.yml (k3s-lab: rotated credentials; k3s-lab-ha: the generated token)
    'Case -vvv --diff output without the token or the lab credentials': ([5], 'secret on screen'),
    # k3s-lab gate-check.yml
    'Case health gate - run upgrade.yml to the broken release': ([2], 'health gate'),
    # host roles (debian12)
    'Case - unsupported OS and a GPU node without a GPU; wrong OS and arch groups': ([3], 'host state / inventory'),
    'Case - invalid branch string': ([3], 'malformed version'),
    'Case - branch Debian non-free does not ship': ([3], 'conflicting options'),
    'Case - source of another OS': ([3], 'unknown choice'),
    'Case - conflicting driver options': ([3], 'conflicting options'),
    'Case - conflicting toolkit options': ([3], 'conflicting options'),
    'Case - airgap folder without the pinned packages': ([3, 6], 'missing file'),
    'Case - repository key whose fingerprint is not pinned': ([6], 'supply chain'),
    'Case - daemon.json that is not JSON, before any package': ([3, 4], 'corrupt config (JSON)'),
    'Case - directory where daemon.json goes': ([3, 4], 'directory where a file is expected'),
    'Case - key pinned by a short key ID': ([3, 6], 'malformed fingerprint'),
    'Case - key pin that is a pattern': ([3, 6], 'malformed fingerprint'),
    'Case - key URL with a password': ([3, 5], 'malformed URL/endpoint'),
    'Case - repository URL of another scheme': ([3], 'malformed URL/endpoint'),
    'Case - package list given as a string': ([3], 'wrong type'),
    'Case - unknown CDI backend': ([3], 'unknown choice'),
    'Case - airgap package with another checksum': ([6], 'supply chain'),
    'Case - airgap folder without recorded checksums': ([6], 'supply chain'),
    'Case - K3s token with a newline (any OS, NixOS included)': ([3, 5], 'malformed token'),
    'Case - reboot timeout of zero': ([2, 3], 'wrong value'),
    'Case - extra packages given as a string': ([3], 'wrong type'),
    'Case - NixOS configuration.nix without an imports list': ([3], 'unparsable file'),
    # integration target nvidia_driver_cuda_keys
    'Run case debian12': ([6], 'supply chain (positive)'),
    'Run case debian13': ([6], 'supply chain (positive)'),
    'Run case debian13 pointed at the debian12 repository': ([6], 'supply chain (positive)'),
    'Run case rhel9 (Rocky)': ([6], 'supply chain (positive)'),
    'Run case rhel8 on Arm': ([6], 'supply chain (positive)'),
    'Run case debian14 (no known key)': ([3, 6], 'missing input'),
    'Run case rhel10 (no known key)': ([3, 6], 'missing input'),
    'Run case debian14 with the key given by the user': ([6], 'supply chain (positive)'),
    'Run case debian13 pinned by key ID (refused)': ([3, 6], 'malformed fingerprint'),
    'Run case rhel9 pinned by key ID': ([3, 6], 'malformed fingerprint'),
    'Run case debian13 with nothing pinned': ([3, 6], 'missing input'),
    'Run case debian13 with a pin that is no fingerprint': ([3, 6], 'malformed fingerprint'),
    "Run case debian13 with Debian's own driver (no CUDA key needed)": ([3], 'positive control'),
}

CASE_NAME = re.compile(r'^\s*- name: ((?:Case|Run case) .*?)\s*$')


def playbook_cases(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as handle:
        return [m.group(1) for m in map(CASE_NAME.match, handle) if m]


def _items(decorator):
    """Number of parameter sets of a @pytest.mark.parametrize decorator (1 for others)."""
    if (isinstance(decorator, ast.Call) and getattr(decorator.func, 'attr', '') == 'parametrize'
            and len(decorator.args) > 1 and isinstance(decorator.args[1], (ast.List, ast.Tuple))):
        return len(decorator.args[1].elts)
    return 1


def unit_tests(path):
    """[(test name, number of items)] of a pytest file, parametrized sets counted."""
    with open(os.path.join(ROOT, path), encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'):
            count = 1
            for decorator in node.decorator_list:
                count *= _items(decorator)
            found.append((node.name, count))
    return found


def section():
    lines, problems, seen = [], [], set()
    rows = []
    for path, how in PLAYBOOKS:
        for name in playbook_cases(path):
            if name in seen:
                problems.append('%s: the case name %r is used twice' % (path, name))
            seen.add(name)
            if name not in CASES:
                problems.append('%s: %r is not mapped in scripts/safety-cases.py CASES' % (path, name))
                continue
            rules, category = CASES[name]
            rows.append((path, how, name, rules, category))
    for name in sorted(set(CASES) - seen):
        problems.append('CASES maps %r, which no source has any more' % name)
    units = [(path, rules, what, unit_tests(path)) for path, rules, what in UNIT_FILES]
    unit_items = sum(sum(count for _name, count in unit[3]) for unit in units)
    molecule = [r for r in rows if r[0].startswith('molecule/')]
    lines.append('%d cases: %d in molecule scenarios, %d in an integration target and %d unit test items '
                 '(parametrized sets counted).' % (len(rows) + unit_items, len(molecule), len(rows) - len(molecule),
                                                   unit_items))
    lines.append('')
    lines.append('| rule (issue #15) | molecule and integration cases | unit test files |')
    lines.append('| --- | --- | --- |')
    for number, rule in sorted(RULES.items()):
        count = sum(1 for r in rows if number in r[3])
        files = ', '.join('`%s`' % os.path.basename(unit[0]) for unit in units if number in unit[1]) or '-'
        lines.append('| %d. %s | %d | %s |' % (number, rule, count, files))
    lines.append('')
    lines.append('| scenario | file | case | rules | category |')
    lines.append('| --- | --- | --- | --- | --- |')
    for path, how, name, rules, category in rows:
        short = 'nvidia_driver_cuda_keys' if 'targets' in path else os.path.basename(path)
        lines.append('| %s | `%s` | %s | %s | %s |' % (how, short, name, ', '.join(map(str, rules)), category))
    lines.append('')
    lines.append('| unit test file | rules | what | tests | items |')
    lines.append('| --- | --- | --- | --- | --- |')
    for path, rules, what, tests in units:
        items = sum(count for _name, count in tests)
        lines.append('| `%s` | %s | %s | %d | %d |' % (path, ', '.join(map(str, rules)), what, len(tests), items))
    return '\n'.join(lines) + '\n', problems


def current_doc():
    with open(DOC, encoding='utf-8') as handle:
        text = handle.read()
    if BEGIN not in text or END not in text:
        return text, None
    return text, text.split(BEGIN, 1)[1].split(END, 1)[0].strip('\n') + '\n'


def main(argv):
    body, problems = section()
    if problems:
        print('\n'.join(problems), file=sys.stderr)
        return 1
    if '--write' in argv:
        text, old = current_doc()
        if old is None:
            print('%s has no %s ... %s markers' % (DOC, BEGIN, END), file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        with open(DOC, 'w', encoding='utf-8') as handle:
            handle.write(head + BEGIN + '\n' + body + END + rest.split(END, 1)[1])
        return 0
    if '--check' in argv:
        _text, old = current_doc()
        if old != body:
            print('docs/safety.md lists other cases than the sources: run scripts/safety-cases.py --write',
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(body)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
