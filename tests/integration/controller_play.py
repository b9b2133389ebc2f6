"""Run a playbook against the controller itself, as one inventory host.

The preflight tests use it: connection local, check mode by default and the
JSON callback, so a preflight that wrongly passed could still not change this
machine, and the test reads which tasks ran and why one failed.
"""

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def run_playbook(tmp_path, playbook, host, host_vars, check=True):
    """(rc, the json callback's output) of ``playbook`` run with one host ``host`` having ``host_vars``."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {host: host_vars}}}))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_FACT_CACHING="memory",
    )
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), *(["--check"] if check else []), playbook],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout[proc.stdout.index("{") :])
