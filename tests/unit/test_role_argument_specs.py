"""Every role's meta/argument_specs.yml stays in sync with its defaults."""

import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


def _load(role, *parts):
    path = os.path.join(ROOT, "roles", role, *parts)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_argument_specs(role):
    specs = _load(role, "meta", "argument_specs.yml")
    assert specs and "main" in specs["argument_specs"], "%s has no argument_specs main entry" % role


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_agree(role):
    defaults = _load(role, "defaults", "main.yml") or {}
    options = _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    public = {k: v for k, v in defaults.items() if not k.startswith("_")}
    assert sorted(public) == sorted(options), "defaults and argument_specs list different variables"
    for name, value in public.items():
        spec = options[name]
        assert spec.get("description"), "%s has no description" % name
        assert spec.get("default") == value, "%s: default %r in defaults, %r in argument_specs" % (
            name,
            value,
            spec.get("default"),
        )
        assert name.startswith(role + "_"), "%s does not carry the role prefix" % name


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_are_role_prefixed(role):
    options = _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert all(name.startswith(role + "_") for name in options)
