"""Make ``ansible_collections.homelab.nixos`` importable from a plain checkout.

``.collections/ansible_collections/homelab/nixos`` is a symlink to the
repository root (the same path ansible.cfg uses), so tests import the
collection exactly as Ansible does.
"""

import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def nix_instantiate():
    """The real nix-instantiate; tests that need it fail loudly without it
    (make test installs nix-bin), unless HOMELAB_ALLOW_NO_NIX=1."""
    path = shutil.which("nix-instantiate")
    if path is None:
        if os.environ.get("HOMELAB_ALLOW_NO_NIX") == "1":
            pytest.skip("nix-instantiate not installed")
        pytest.fail("nix-instantiate is missing: run `make test` (it installs Debian's nix-bin)")
    return path
