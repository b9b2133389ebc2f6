"""The lab tests drive the real six-host lab (scripts/lab.py) over SSH.

They are slow and need root and podman, so they only run when selected:
`make test` runs them with HOMELAB_LAB_TESTS=1 after the molecule scenarios.
"""

import os

import pytest
from labtools import lab, run_site


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HOMELAB_LAB_TESTS") == "1":
        # Tests that start from a fresh lab go first: they take the lab down,
        # which would pull it from under the session's converged lab.
        items.sort(key=_lab_order)
        return
    skip = pytest.mark.skip(reason="lab tests run under `make test` (HOMELAB_LAB_TESTS=1)")
    for item in items:
        if "tests/lab/" in str(item.fspath):
            item.add_marker(skip)


def _lab_order(item):
    """Other tests first (their order kept), then fresh-lab tests, then test_lab.py's
    rerun on the session's lab (before any other test changes it), then the rest."""
    if "tests/lab/" not in str(item.fspath):
        return 0
    if "fresh_lab" in getattr(item, "fixturenames", ()):
        return 1
    return 2 if item.fspath.basename == "test_lab.py" else 3


@pytest.fixture
def fresh_lab():
    """Six freshly started lab hosts."""
    lab("down")
    lab("up")
    yield
    lab("down", "--keep-overlay")


@pytest.fixture(scope="session")
def hardened_lab():
    """Six fresh lab hosts converged with site.yml, shared by every lab test that
    needs a converged fleet (one converge instead of one per module). Yields the
    output of that first converge (test_lab.py checks it changed every host)."""
    lab("down")
    lab("up")
    rc, out = run_site()
    assert rc == 0, out[-3000:]
    yield out
    lab("down", "--keep-overlay")
