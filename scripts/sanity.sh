#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection laid out as
# ansible_collections/homelab/nixos (ansible-test insists on that path),
# with the current venv's Python and no containers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/homelab/nixos
mkdir -p "$dest"
# Tracked and new (not ignored) files that exist, without the .collections self-link.
git ls-files -z --cached --others --exclude-standard |
  python3 -c 'import os, sys
paths = sys.stdin.read().split("\0")
sys.stdout.write("".join(p + "\0" for p in paths if p and os.path.lexists(p) and not p.startswith(".collections/")))' |
  rsync -a --from0 --files-from=- "$root"/ "$dest"/
cd "$dest"
git init -q && git add -A >/dev/null
# ansible-test bootstraps pip in its sanity venvs with a get-pip script from
# a host this machine cannot reach. PyPI is reachable, so stand in a script
# that installs the same pinned packages with ensurepip + pip from PyPI.
pip_version=$("$root/.venv/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
import sys
print(get_venv_packages(NativePythonConfig(version="%d.%d" % sys.version_info[:2]))["pip"])' 2>/dev/null || echo 24.2)
cache=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ ! -f $cache ]] || ! grep -q homelab-get-pip-stand-in "$cache"; then
  mkdir -p "$(dirname "$cache")"
  cat >"$cache" <<'PY'
# homelab-get-pip-stand-in: installs the requested packages with ensurepip
# and pip from PyPI instead of ansible-test's downloaded get-pip script.
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
PY
fi
py=$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$root/.venv/bin/ansible-test" sanity --python "$py" --color no "$@"
