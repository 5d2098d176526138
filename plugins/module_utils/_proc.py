# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command with a time limit (AnsibleModule.run_command has none)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess


def run(cmd, timeout):
    """Run ``cmd`` (a list). Returns (rc, stdout, stderr) as text; rc is None when it timed
    out (the process is killed) and 127 when it cannot be started (stderr says why)."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
    except OSError as exc:
        return 127, '', str(exc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, '', ''
    return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
