"""Helpers of the lab tests: drive scripts/lab.py and site.yml on the lab."""

import functools
import importlib.util
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@functools.cache
def labchecks():
    """molecule/resources/labchecks.py: the checks and lab facts the molecule verifiers share."""
    spec = importlib.util.spec_from_file_location(
        "labchecks", os.path.join(ROOT, "molecule", "resources", "labchecks.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOSTS = labchecks().LAB_HOSTS
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


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


def site_command(*extra, playbook="site.yml"):
    return [os.path.join(BIN, "ansible-playbook"), "-i", "inventory/lab", playbook, *extra]


def run_site(*extra, playbook="site.yml", timeout=None):
    """(rc, output) of ``playbook`` (site.yml by default) on the lab."""
    proc = subprocess.run(
        site_command(*extra, playbook=playbook),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env(),
        check=False,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout + proc.stderr


def podman_exec(host, *command, check=True, timeout=300):
    """``command`` run as root inside the lab host's container."""
    return subprocess.run(
        ["podman", "exec", "homelab-lab-" + host, *command],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def wait_for(predicate, timeout, interval=2):
    """``predicate()``'s first true value within ``timeout`` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def recap(output):
    """{host: (ok, changed, unreachable, failed)} of the fleet's hosts from the
    PLAY RECAP. The controller (localhost, which writes the Tailscale ACL policy)
    is not a fleet host and is left out."""
    return {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output) if m[0] != "localhost"}
