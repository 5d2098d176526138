# -*- coding: utf-8 -*-
# Copyright: k3s_gpu.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Attributes shared by the collection's modules."""

    # Modules that only read the host.
    FACTS = r'''
attributes:
  check_mode:
    support: full
    description: Can run in check mode; the module only reads the host.
  diff_mode:
    support: none
    description: Nothing is written, so there is nothing to diff.
  facts:
    support: full
    description: Returns facts under C(ansible_facts).
'''

    # Modules that only read the host and return what they read (not as facts).
    READER = r'''
attributes:
  check_mode:
    support: full
    description: Can run in check mode; the module only reads the host.
  diff_mode:
    support: none
    description: Nothing is written, so there is nothing to diff.
'''

    # Modules that write files.
    WRITER = r'''
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description: Shows the before and after text of every file written or removed.
'''

    # The backup option of the writers.
    BACKUP = r'''
options:
  backup:
    description:
      - Keep a timestamped copy of a file before replacing or removing it.
    type: bool
    default: false
'''
