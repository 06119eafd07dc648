#!/usr/bin/env bash
# ansible-test sanity (every test) and units on the collection unpacked in
# the current directory (under ansible_collections/NAMESPACE/NAME), with the
# ansible-test and the Python on PATH. scripts/collection-checks.sh runs it
# on this machine and on the version matrix's control node.
# units runs in a venv that gets only tests/unit/requirements.txt. Each
# ansible-test venv starts without pip; pip comes from ensurepip
# (scripts/ansible_test_pip.py) instead of a bootstrap script downloaded
# from ci-files.testing.ansible.com.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=progress.sh
. "$here/scripts/progress.sh"
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core=$(python3 -c 'from ansible.release import __version__; print(__version__)')
package=$(python3 -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',$/\1/p" "$package/_internal/python_requirements.py")
[ -n "$pip_version" ] || { echo "ansible-test: cannot tell which pip ansible-test $core bootstraps" >&2; exit 1; }
mkdir -p ~/.ansible/test/cache
cp "$here/scripts/ansible_test_pip.py" ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py

log=$(mktemp)
# ansible-test writes its results and venvs into tests/output, in the tree
# it checks: they go, so that the next check sees the collection alone.
trap 'rm -f "$log"; rm -rf tests/output' EXIT
rm -rf tests/output
check() {
  local name=$1
  shift
  quiet_step ansible-test "$log" "$name, ansible-core $core, Python $python" ansible-test "$@" --python "$python" --color no
}
# No test may be waived: the collection has no ignore file (-v makes
# ansible-test say how many ignore lines it read, and which tests found no
# file to check).
if compgen -G "tests/sanity/ignore-*.txt" >/dev/null; then
  echo "ansible-test: FAIL: a sanity ignore file: $(ls tests/sanity/ignore-*.txt)" >&2
  exit 1
fi
check sanity sanity --local -v
grep -q "^Read 0 sanity test ignore line" "$log" || { echo "ansible-test: FAIL: ignore lines were read" >&2; exit 1; }
tests=$(grep -c '^Running sanity test' "$log")
idle=$(grep -B1 '^No tests applicable' "$log" | sed -n 's/^Running sanity test "\(.*\)".*/\1/p' | paste -sd' ')
echo "ansible-test:   $tests sanity tests, none failed; $(wc -w <<<"$idle") had no file to check: $idle"
check units units --venv --requirements
echo "ansible-test:   $(grep -o '[0-9]* passed' "$log" | awk '{n += $1} END {print n}') unit tests passed"
