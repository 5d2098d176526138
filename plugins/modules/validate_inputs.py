#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: validate_inputs
short_description: Check a role's inputs strictly, before anything changes
version_added: 0.1.0
description:
  - An action that runs on the controller and changes nothing. It fails with one message that
    lists every problem found, names each variable and says how to fix it; a value marked
    secret is never quoted.
  - With O(argument_spec), every option of that entry point of the calling role's
    C(meta/argument_specs.yml) that is set is type-checked strictly. Ansible's own validation
    accepts C("a,b") for a list and C("k=v") for a dict without changing the variable, so the
    string would reach the tasks; here a list must be a list, a dict a dict, a string must not
    be a boolean, and list items must have the type of C(elements). Booleans accept true/false
    and the strings Ansible reads as booleans (yes/no, on/off, true/false, 1/0), as given by
    C(-e name=true); anything else is refused.
  - O(inputs) checks the form of values the argument spec cannot describe. The rules live in the
    collection's C(plugins/module_utils/_inputs.py) and are listed under O(inputs[].form).
author:
  - k3s_gpu.cluster maintainers (@k3s-gpu)
attributes:
  check_mode:
    support: full
    description: Reads only variables; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is written.
options:
  argument_spec:
    description:
      - Entry point (such as C(main)) of the calling role's argument spec whose options are checked strictly.
      - Omit it outside a role.
    type: str
  inputs:
    description: Values whose form is checked.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The variable name used in the message.
        type: str
        required: true
      value:
        description: The value.
        type: raw
      form:
        description:
          - C(path) an absolute, normalised path of plain characters (no blank, quote, glob or shell character).
          - C(removable_path) a C(path) the collection may remove on reset, so not C(/), not a system folder
            (C(/var), C(/etc), C(/usr), C(/home), C(/var/lib), ...), not directly under C(/), not a home folder and
            not in C(/proc), C(/sys) or C(/dev).
          - C(token) a string without blanks, newlines or control characters (never quoted back).
          - C(endpoint) C(host) or C(host:port) without a scheme or path (a DNS name, IPv4 address or C([IPv6])).
          - C(url) an C(http://) or C(https://) URL with a host and without C(user:password@).
          - C(https_url) the same, C(https://) only.
          - C(fingerprints) a non-empty list of OpenPGP fingerprints of exactly 40 hex digits.
          - C(sha256) 64 hex digits.
          - C(positive_int) a whole number of 1 or more.
          - C(bool) a boolean (see the description).
        type: str
        required: true
        choices: [path, removable_path, token, endpoint, url, https_url, fingerprints, sha256, positive_int, bool]
      optional:
        description: An empty value (C("") or null) is accepted.
        type: bool
        default: false
      secret:
        description: Never quote the value in a message.
        type: bool
        default: false
      opt_in:
        description: For C(https_url), the boolean variable that allows C(http://); the message names it.
        type: str
        default: ""
'''

EXAMPLES = r'''
- name: Check the role's inputs before anything changes
  k3s_gpu.cluster.validate_inputs:
    argument_spec: main
    inputs:
      - {name: k3s_token, value: "{{ k3s_token | default('') }}", form: token, optional: true, secret: true}
      - {name: k3s_api_endpoint, value: "{{ k3s_api_endpoint | default('') }}", form: endpoint, optional: true}
      - {name: k3s_data_dir, value: "{{ k3s_data_dir | default('/var/lib/rancher/k3s') }}", form: removable_path}
'''

RETURN = r'''
checked:
  description: How many values were checked.
  returned: always
  type: int
problems:
  description: One sentence per problem.
  returned: failed
  type: list
  elements: str
'''
