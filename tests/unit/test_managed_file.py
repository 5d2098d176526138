# -*- coding: utf-8 -*-
"""The managed_file action: one declaration per file, compared with the host's report on the
controller, handed over to template/copy/file only when the report says it differs.

Run through ansible-playbook against localhost; the files are in pytest's tmp_path."""

from __future__ import absolute_import, division, print_function

import json
import os
import stat

from conftest import ansible_playbook

TEMPLATE = '# {{ ansible_managed }}\n{% for i in items %}\nline {{ i }}\n{% endfor %}\nend\n\n'


def play(tmp_path, tasks, *args):
    """Run TASKS (YAML text, %(d)s is tmp_path) on localhost; returns the CompletedProcess and
    the results the tasks saved with `register` + the final `dump` task."""
    (tmp_path / 't.j2').write_text(TEMPLATE)
    (tmp_path / 'play.yml').write_text('''
- hosts: localhost
  gather_facts: false
  vars: {items: [1, 2]}
  tasks:
%s
    - ansible.builtin.copy:
        content: "{{ {'first': first | default(None), 'second': second | default(None)} | to_json }}"
        dest: "%%(d)s/results.json"
      check_mode: false
''' % tasks % {'d': tmp_path})
    run = ansible_playbook(str(tmp_path / 'play.yml'), *args, cwd=str(tmp_path))
    results = None
    if (tmp_path / 'results.json').exists():
        results = json.loads((tmp_path / 'results.json').read_text())
    return run, results


WRITE_THEN_READ = '''
    - k3s_gpu.cluster.managed_file: {template: t.j2, dest: "%(d)s/out", mode: "0640"}
      register: first
    - k3s_gpu.cluster.host_state: {files: ["%(d)s/out"]}
      register: s
    - k3s_gpu.cluster.managed_file: {template: t.j2, dest: "%(d)s/out", mode: "0640", found: "{{ s.host_state.files }}"}
      register: second
'''


def test_written_when_absent_then_not_sent_again(tmp_path):
    run, found = play(tmp_path, WRITE_THEN_READ)
    assert run.returncode == 0, run.stdout
    assert found['first']['changed'] and found['first']['handed_over']
    # What the template module wrote is what the comparison renders: nothing is sent the second time.
    assert not found['second']['changed'] and not found['second']['handed_over']
    assert (tmp_path / 'out').read_text().endswith('line 1\nline 2\nend\n\n')
    assert stat.S_IMODE(os.stat(str(tmp_path / 'out')).st_mode) == 0o640


def test_the_report_is_trusted_so_a_same_answer_makes_no_call(tmp_path):
    # The report says the file is as wanted although the disk holds other bytes: the task must not
    # touch the host (this is what saves the call on a no-change re-run). Its remote temporary
    # folder cannot be made (its parent is a file), so any call to the host would fail the task.
    (tmp_path / 'out').write_text('old\n')
    (tmp_path / 'no-tmp').write_text('')
    tasks = '''
    - k3s_gpu.cluster.managed_file:
        template: t.j2
        dest: "%(d)s/out"
        mode: "0640"
        found: {"%(d)s/out": {type: file, sha1: "{{ lookup('ansible.builtin.template', 't.j2') | hash('sha1') }}", mode: "0640"}}
      vars:
        ansible_remote_tmp: "%(d)s/no-tmp/tmp"
      register: first
'''
    run, found = play(tmp_path, tasks)
    assert run.returncode == 0, run.stdout
    assert not found['first']['handed_over'] and not found['first']['changed']
    assert (tmp_path / 'out').read_text() == 'old\n'


def test_any_difference_or_unknown_hands_over(tmp_path):
    tasks = '''
    - k3s_gpu.cluster.managed_file: {content: "a\\n", dest: "%(d)s/c", mode: "0600"}
    - k3s_gpu.cluster.host_state: {files: ["%(d)s/c", "%(d)s/dir"]}
      register: s
    - k3s_gpu.cluster.managed_file: {content: "a\\n", dest: "%(d)s/c", mode: "0644", found: "{{ s.host_state.files }}"}
      register: first
    - k3s_gpu.cluster.managed_file: {state: directory, dest: "%(d)s/dir", mode: "0750", found: "{{ s.host_state.files }}"}
      register: second
'''
    run, found = play(tmp_path, tasks)
    assert run.returncode == 0, run.stdout
    # Another mode: handed over, and copy repairs it.
    assert found['first']['handed_over'] and found['first']['changed']
    assert stat.S_IMODE(os.stat(str(tmp_path / 'c')).st_mode) == 0o644
    # Reported absent: the folder is made.
    assert found['second']['handed_over'] and found['second']['changed']
    assert (tmp_path / 'dir').is_dir()


def test_a_folder_as_wanted_is_not_sent(tmp_path):
    (tmp_path / 'dir').mkdir(mode=0o750)
    os.chmod(str(tmp_path / 'dir'), 0o750)
    tasks = '''
    - k3s_gpu.cluster.host_state: {files: ["%(d)s/dir"]}
      register: s
    - k3s_gpu.cluster.managed_file: {state: directory, dest: "%(d)s/dir", mode: "0750", found: "{{ s.host_state.files }}"}
      register: first
    - k3s_gpu.cluster.managed_file: {state: directory, dest: "%(d)s/dir", mode: "0755", found: "{{ s.host_state.files }}"}
      register: second
'''
    run, found = play(tmp_path, tasks)
    assert run.returncode == 0, run.stdout
    assert not found['first']['handed_over']
    assert found['second']['handed_over'] and found['second']['changed']


def test_check_mode_and_diff_come_from_the_module_handed_over(tmp_path):
    (tmp_path / 'out').write_text('old\n')
    tasks = '''
    - k3s_gpu.cluster.host_state: {files: ["%(d)s/out"]}
      register: s
    - k3s_gpu.cluster.managed_file: {template: t.j2, dest: "%(d)s/out", found: "{{ s.host_state.files }}", backup: true}
      register: first
'''
    run, found = play(tmp_path, tasks, '--check', '--diff')
    assert run.returncode == 0, run.stdout
    assert found['first']['changed'] and found['first']['handed_over']
    assert '-old' in run.stdout and '+line 1' in run.stdout
    assert (tmp_path / 'out').read_text() == 'old\n'
    assert sorted(os.listdir(str(tmp_path))) == ['out', 'play.yml', 'results.json', 't.j2']


def test_exactly_one_source_and_a_dest_are_required(tmp_path):
    for task, message in [
        ('{template: t.j2, content: x, dest: "%(d)s/o"}', 'give exactly one of template'),
        ('{dest: "%(d)s/o"}', 'got none'),
        ('{state: absent, dest: "%(d)s/o"}', 'state can only be directory'),
        ('{content: x}', 'dest (the path of the file or folder) is required'),
        ('{content: x, dest: "%(d)s/o", found: [1]}', 'found must be the files of a host_state report'),
    ]:
        run = play(tmp_path, '    - k3s_gpu.cluster.managed_file: %s\n' % task)[0]
        assert run.returncode != 0
        assert message in run.stdout, (task, run.stdout)
        assert not (tmp_path / 'o').exists()
