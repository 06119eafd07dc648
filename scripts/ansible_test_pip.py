"""ansible-test's pip bootstrap script, without downloading the script.

ansible-test creates each virtual environment without pip, then runs a
bootstrap script that it downloads from ci-files.testing.ansible.com, a host
this machine may not reach. scripts/ansible-test.sh puts this file in that
script's place in ansible-test's cache. A first pip comes from the standard
library's ensurepip (on Python 3.11 with setuptools, which ensurepip always
adds there); it then installs, from the package index, the pip version
ansible-test asked for.
"""

import ensurepip
import os
import runpy
import sys

environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run and leaves it
# there; the pip run below must read the machine's pip configuration.
os.environ.clear()
os.environ.update(environ)
# The two options of the original script that pip itself does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
