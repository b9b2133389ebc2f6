"""Check NixOS option paths against tests/data/nixpkgs_options.yml.

``assert_known_options(settings)`` walks the nested dict that is rendered
into a NixOS module (the ``to_nix`` data) and fails unless every leaf path
is an option declared in nixpkgs, or lies below one marked ``freeform``, and
none is listed under ``absent`` (removed, renamed or never existing). Tests
get it through the ``known_options`` fixture.
"""

import os
from functools import lru_cache

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.homelab.nixos.plugins.module_utils._nix import is_raw

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "nixpkgs_options.yml")


def _split(name):
    return tuple(name.split("."))


def _show(path):
    """``a.b."c.d"``: quote the parts that contain a dot."""
    return ".".join('"%s"' % part if "." in part else part for part in path)


@lru_cache(maxsize=1)
def load_nixpkgs_options():
    with open(DATA, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _below(path, prefix):
    return len(path) > len(prefix) and path[: len(prefix)] == prefix


def leaf_paths(settings, prefix=()):
    """Every leaf option path of ``settings`` as a tuple of attribute names.

    Lists, scalars and raw Nix markers are leaves; an empty dict is a leaf at
    its own path.
    """
    if not isinstance(settings, dict) or is_raw(settings) or (not settings and prefix):
        return [prefix]
    paths = []
    for key, value in settings.items():
        paths.extend(leaf_paths(value, (*prefix, str(key))))
    return paths


def check_path(path, data=None):
    """``None`` when ``path`` (a tuple) is known, else the reason it is not."""
    data = data if data is not None else load_nixpkgs_options()
    for name, reason in (data.get("absent") or {}).items():
        absent = _split(name)
        if path == absent or _below(path, absent):
            return "%s: %s is absent from nixpkgs: %s" % (_show(path), name, " ".join(str(reason).split()))
    options = data["options"]
    if ".".join(path) in options:
        return None
    for name, entry in options.items():
        if (entry or {}).get("freeform") and _below(path, _split(name)):
            return None
    if any(_below(_split(name), path) for name in options):
        # A namespace above known options, e.g. ``services.openssh = { }``.
        return None
    return "%s: not an option declared in nixpkgs (add it to %s after checking nixpkgs)" % (_show(path), DATA)


def assert_known_options(settings):
    """Fail unless every leaf of ``settings`` is a known NixOS option path.

    Returns the checked leaf paths (dotted strings) so callers can also assert
    that a branch was really exercised.
    """
    paths = leaf_paths(settings)
    problems = [problem for problem in (check_path(path) for path in paths) if problem]
    assert not problems, "unknown or removed NixOS options:\n  " + "\n  ".join(problems)
    return sorted(_show(path) for path in paths)


@pytest.fixture(scope="session")
def nixpkgs_options():
    """The parsed tests/data/nixpkgs_options.yml."""
    return load_nixpkgs_options()


@pytest.fixture(scope="session")
def known_options():
    """``assert_known_options(settings)``: see the module docstring."""
    return assert_known_options


@pytest.fixture
def warnings(monkeypatch):
    """The messages modules pass to module.warn."""
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: seen.append(msg))
    return seen
