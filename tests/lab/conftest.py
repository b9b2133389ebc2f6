"""The lab tests drive the real six-host lab (scripts/lab.py) over SSH.

They are slow and need root and podman, so they only run when selected:
`make test` runs them with HOMELAB_LAB_TESTS=1 after the molecule scenarios.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HOMELAB_LAB_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="lab tests run under `make test` (HOMELAB_LAB_TESTS=1)")
    for item in items:
        if "tests/lab/" in str(item.fspath):
            item.add_marker(skip)


def lab(*args):
    script = os.path.join(ROOT, "scripts", "lab.py")
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def env():
    return dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_CALLBACKS_ENABLED="homelab.nixos.fleet_summary",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
    )


def site_command(*extra):
    return [os.path.join(BIN, "ansible-playbook"), "-i", "inventory/lab", "site.yml", *extra]


def run_site(*extra):
    proc = subprocess.run(site_command(*extra), cwd=ROOT, capture_output=True, text=True, env=env(), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    """{host: (ok, changed, unreachable, failed)} from the PLAY RECAP."""
    return {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output)}


@pytest.fixture
def fresh_lab():
    """Six freshly started lab hosts."""
    lab("down")
    lab("up")
    yield
    lab("down", "--keep-overlay")
