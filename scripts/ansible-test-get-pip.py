"""Local replacement for the pip bootstrap script that ansible-test downloads.

ansible-test creates each sanity test's virtualenv without pip, then runs a "get-pip"
script that it fetches from a host outside PyPI, which this lab cannot reach.  This file
is installed at ~/.ansible/test/cache/get_pip_<version>.py by scripts/sanity.sh and does
the same job with what the interpreter already has: ensurepip, then `pip install` of the
requested pip version from PyPI.  ansible-test calls it with pip install options and
package pins such as ``pip==24.2``; the get-pip-only flags --no-setuptools/--no-wheel mean
"do not install those", which is already the case, so they are dropped.
"""
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)


if __name__ == "__main__":
    main()
