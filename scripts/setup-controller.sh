#!/usr/bin/env bash
# Prepare this machine to run and test the collection: Debian packages and a
# pinned Python venv in .venv. Idempotent and quick when nothing is missing.
# Never contacts Ansible Galaxy: the collections we depend on ship in the
# `ansible` Python package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(nix-bin python3-venv git make rsync openssh-client age restic)
[[ "${1:-}" == "--lab" ]] && APT_PACKAGES+=(podman runc debootstrap uidmap slirp4netns netavark aardvark-dns)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool and amtool for the rule and config tests, unpacked from Debian's
# packages into .cache/tools: installing the packages would start a
# Prometheus and an Alertmanager on this machine.
if [[ ! -x .cache/tools/usr/bin/promtool || ! -x .cache/tools/usr/bin/amtool ]]; then
  echo "setup: unpacking promtool and amtool into .cache/tools"
  rm -rf .cache/debs && mkdir -p .cache/debs .cache/tools
  (cd .cache/debs && apt-get download -qq prometheus prometheus-alertmanager 2>/dev/null ||
    { apt-get update -qq && apt-get download -qq prometheus prometheus-alertmanager; })
  for deb in .cache/debs/*.deb; do dpkg-deb -x "$deb" .cache/tools; done
  rm -rf .cache/debs
fi
# etckeeper for the config_rollback tests, unpacked the same way: installing
# it would put this machine's /etc under git.
if [[ ! -x .cache/tools/usr/bin/etckeeper ]]; then
  echo "setup: unpacking etckeeper into .cache/tools"
  rm -rf .cache/debs && mkdir -p .cache/debs .cache/tools
  (cd .cache/debs && apt-get download -qq etckeeper 2>/dev/null ||
    { apt-get update -qq && apt-get download -qq etckeeper; })
  for deb in .cache/debs/*.deb; do dpkg-deb -x "$deb" .cache/tools; done
  rm -rf .cache/debs
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: creating .venv from requirements-dev.txt"
  rm -rf .venv
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" >"$stamp"
fi
