# -*- coding: utf-8 -*-
"""Find known secret values in a log: as plain text, JSON-escaped, URL-encoded or inside base64
(slurp output) at any of the three byte alignments.

    python3 find_secrets.py LOG SECRET [SECRET ...]     exit 1 and name the leaks (never the values)

Used by tests/unit/plugins/test_diagnose_playbook.py and molecule/k3s-lab/run-vvv.yml.
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import sys

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover
    from urllib import quote


def forms(secret):
    """The spellings of ``secret`` a log can hold, each with its name."""
    raw = secret.encode('utf-8')
    found = [('plain', secret), ('json', json.dumps(secret)[1:-1]), ('url-encoded', quote(secret, safe=''))]
    for shift in range(3):
        encoded = base64.b64encode(b'\0' * shift + raw).decode('ascii')
        start = -(-8 * shift // 6)            # first character made only of the secret's bits
        end = 8 * (shift + len(raw)) // 6     # last one
        if end - start >= 8:
            found.append(('base64+%d' % shift, encoded[start:end]))
    return found


def leaks(text, secrets):
    """['<n>th secret as <form>', ...] for every secret found in ``text``."""
    out = []
    for index, secret in enumerate(secrets, 1):
        if len(secret) < 8:
            raise ValueError('secret #%d is too short to search for safely' % index)
        for name, form in forms(secret):
            if form in text:
                out.append('secret #%d as %s' % (index, name))
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    with open(argv[1], encoding='utf-8', errors='replace') as handle:
        text = handle.read()
    found = leaks(text, argv[2:])
    if found:
        print('%s shows %s' % (argv[1], ', '.join(found)))
        return 1
    print('%s: none of %d secrets found (plain, JSON, URL-encoded, base64)' % (argv[1], len(argv) - 2))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
