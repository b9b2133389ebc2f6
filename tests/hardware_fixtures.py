"""Hardware fixtures of the six fleet hosts, laid out as directory trees.

Each ``tests/unit/fixtures/hardware/<host>.yml`` maps paths (relative to the
host's ``/``) to file contents. Sysfs paths contain colons (PCI slots such as
``0000:03:00.0``), which ansible-test refuses in a collection, so the trees
are stored as data and written to a temporary directory once per test run.
"""

import atexit
import os
import shutil
import tempfile

import yaml

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit", "fixtures", "hardware")
HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")


def _materialize():
    target = tempfile.mkdtemp(prefix="homelab-hardware-")
    atexit.register(shutil.rmtree, target, True)
    for host in HOSTS:
        with open(os.path.join(_SOURCE, host + ".yml"), encoding="utf-8") as f:
            files = yaml.safe_load(f)["files"]
        for rel, content in files.items():
            path = os.path.join(target, host, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as out:
                out.write(content)
    return target


FIXTURES = _materialize()
