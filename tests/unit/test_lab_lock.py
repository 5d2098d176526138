# -*- coding: utf-8 -*-
"""scripts/lib.sh lab_lock: one lab command at a time on the machine (the lab's containers have
fixed names). A second `lab.sh up`/`down` while another holds the lock stops at once with a
message, before it touches Docker; a script that holds the lock runs lab.sh without locking again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import time

from conftest import REPO_ROOT

LAB = os.path.join(REPO_ROOT, 'scripts', 'lab', 'lab.sh')


def _env(lock, **extra):
    env = dict(os.environ, LAB_LOCK_FILE=str(lock))
    env.pop('LAB_LOCK_HELD', None)
    # a docker that must not be reached: the lock is taken before any Docker call
    env['PATH'] = '/nonexistent-docker-dir:' + env['PATH']
    env.update(extra)
    return env


def _held(lock):
    holder = subprocess.Popen(['flock', str(lock), 'sleep', '30'])
    for _attempt in range(50):
        if subprocess.run(['flock', '-n', str(lock), 'true'], check=False).returncode != 0:
            return holder
        time.sleep(0.1)
    holder.kill()
    raise AssertionError('the holder did not take the lock')


def test_a_second_lab_command_stops_with_a_message(tmp_path):
    lock = tmp_path / 'lab.lock'
    holder = _held(lock)
    try:
        for command in ('up', 'down'):
            start = time.time()
            run = subprocess.run([LAB, command], env=_env(lock), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 universal_newlines=True, timeout=60, check=False)
            assert run.returncode == 1, run.stderr
            assert 'another lab command is running on this machine' in run.stderr
            assert str(lock) in run.stderr
            assert time.time() - start < 20
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_taken_and_inherited(tmp_path):
    lock = tmp_path / 'lab.lock'
    script = ('. %s/scripts/lib.sh; lab_lock; flock -n %s true && echo free || echo held; '
              'bash -c ". %s/scripts/lib.sh; lab_lock && echo child-ran"') % (REPO_ROOT, lock, REPO_ROOT)
    run = subprocess.run(['bash', '-c', script], env=_env(lock), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ['held', 'child-ran']
