#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: managed_file
short_description: Write a file or folder only when the host's report says it differs
version_added: 0.1.0
description:
  - An action for roles that read the host once (M(k3s_gpu.cluster.host_state)) and then write
    many files. Each file is declared once, in this task; the task compares it on the controller
    with the report given as O(found) and, when the host already has it exactly (the same bytes,
    mode, owner and group; for a folder the type, mode, owner and group), returns C(ok) without
    calling the host.
  - Otherwise, or when the report does not know the path, it hands the task over unchanged to
    M(ansible.builtin.template) (O(template)), M(ansible.builtin.copy) (O(content)) or
    M(ansible.builtin.file) (O(state=directory)), which write it as they always do (check mode,
    C(--diff), O(backup), O(validate), atomic replace).
  - The template is rendered as C(lookup('ansible.builtin.template')) renders it for the
    comparison, which gives the bytes M(ansible.builtin.template) writes. Anything unknown (no
    entry, a link, another type, an unreadable file) counts as different.
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
attributes:
  check_mode:
    support: full
    description: The same comparison; a file that differs is handed over in check mode, so nothing is written.
  diff_mode:
    support: full
    description: The module it hands over to shows the diff; a file that is already as wanted has none.
options:
  template:
    description:
      - A template of the calling role (its C(templates/) folder), as O(ansible.builtin.template#module:src).
      - Exactly one of O(template), O(content) and O(state) is required.
    type: str
  content:
    description:
      - The whole text of the file, as O(ansible.builtin.copy#module:content).
      - Give the task C(no_log) when it carries a secret.
    type: str
  state:
    description: V(directory) for a folder (M(ansible.builtin.file) with O(ansible.builtin.file#module:state=directory)).
    type: str
    choices: [directory]
  dest:
    description: The path of the file or folder on the host; also the key looked up in O(found).
    type: path
    required: true
  found:
    description:
      - What the host has, keyed by path, as read before (the C(files) of a
        M(k3s_gpu.cluster.host_state) result, or a dict of entries of the same shape (C(type),
        C(sha1), C(mode), C(owner), C(group))).
      - Omitted, or without O(dest), the task is always handed over.
    type: dict
  owner:
    description: Owner of the file or folder; compared when given.
    type: str
  group:
    description: Group of the file or folder; compared when given.
    type: str
  mode:
    description: Mode as an octal string such as V("0644"); compared when given.
    type: raw
  backup:
    description: Passed on to the module that writes the file (a backup of a file it replaces).
    type: bool
  validate:
    description: Passed on to the module that writes the file (a command that checks the new file, C(%s) its path).
    type: str
seealso:
  - module: k3s_gpu.cluster.host_state
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
'''

EXAMPLES = r'''
- name: Read the files the role writes in one call
  k3s_gpu.cluster.host_state:
    files: [/etc/apt/preferences.d/nvidia-driver.pref, /etc/k3s-gpu]
  register: state

- name: Pin the driver packages (no call to the host when the file is already this)
  k3s_gpu.cluster.managed_file:
    template: nvidia-driver.pref.j2
    dest: /etc/apt/preferences.d/nvidia-driver.pref
    owner: root
    group: root
    mode: "0644"
    found: "{{ state.files }}"

- name: Write a secret file
  k3s_gpu.cluster.managed_file:
    content: "{{ token }}\n"
    dest: /etc/k3s-gpu/token
    mode: "0600"
    found: "{{ state.files }}"
  no_log: true
'''

RETURN = r'''
handed_over:
  description: Whether the task was handed over to the module that writes (false when the host already had it).
  returned: always
  type: bool
dest:
  description: The path.
  returned: when the host already had it
  type: str
msg:
  description: Why nothing was sent.
  returned: when the host already had it
  type: str
'''
