"""Checks every molecule scenario's verify step runs (pytest-testinfra)."""

import glob
import hashlib
import json
import os
import subprocess

# The checkout (molecule/resources/labchecks.py is two levels below it).
PROJECT = os.environ.get(
    "MOLECULE_PROJECT_DIRECTORY", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")


def hostname(host):
    return host.backend.get_hostname()


LAB_HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")
# Each host's remote backup tier (inventory/hosts.yml's backup_targets, role backup):
# the first target that is not the host itself.
BACKUP_TARGET_OF = {"p510": "dex5550"}


def backup_target(name):
    """The lab host that keeps ``name``'s remote backup tier."""
    return BACKUP_TARGET_OF.get(name, "p510")


def backup_clients(name):
    """The lab hosts that back up onto ``name`` (empty when it is no backup target)."""
    return [h for h in LAB_HOSTS if backup_target(h) == name]


def sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def assert_check_mode_changed_nothing(host):
    """Checksums recorded before the check-mode run (side_effect) still hold."""
    name = hostname(host)
    with open(os.path.join(EPHEMERAL, "checksums", name + ".json")) as f:
        record = json.load(f)
    assert record["host"], "no managed files were recorded for %s" % name
    for path, checksum in record["host"].items():
        assert checksum, "%s: %s did not exist before the check run" % (name, path)
        # As root: some managed files sit in directories only root may read.
        with host.sudo():
            assert host.file(path).exists, path
            assert host.check_output("sha1sum %s", path).split()[0] == checksum, path
    for path, checksum in record["controller"].items():
        assert sha1(path) == checksum, path
    rendered = glob.glob(os.path.join(PROJECT, "build", "nixos", name, "*.nix"))
    assert sorted(rendered) == sorted(record["controller"]), "the check run added or removed rendered modules"


def rendered_modules(host):
    return sorted(glob.glob(os.path.join(PROJECT, "build", "nixos", hostname(host), "*.nix")))


def assert_rendered_modules_parse(host):
    modules = rendered_modules(host)
    assert any(m.endswith("/default.nix") for m in modules)
    for path in modules:
        proc = subprocess.run(["nix-instantiate", "--parse", path], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, "%s: %s" % (path, proc.stderr)


def _option_checker():
    """tests/unit/conftest.py's assert_known_options (nixpkgs option paths)."""
    import importlib.util  # noqa: PLC0415 - loaded only by the scenarios that evaluate modules

    spec = importlib.util.spec_from_file_location(
        "unit_conftest", os.path.join(PROJECT, "tests", "unit", "conftest.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.assert_known_options


_SCRIPT_WRITERS = {"writeShellScriptBin", "writeShellScript", "writeScriptBin", "writeScript"}


def evaluate_module(path):
    """Evaluate a rendered module without nixpkgs: apply it to stand-in
    arguments where every ``pkgs.<name>`` it mentions is a string, and the
    script writers (``pkgs.writeShellScriptBin name text``) functions giving one."""
    import re  # noqa: PLC0415

    text = open(path).read()
    packages = sorted(set(re.findall(r"\bpkgs\.([A-Za-z_][A-Za-z0-9_'-]*)", text)))
    stub = "{ %s }" % " ".join(
        ('"%s" = name: text: "<pkgs.%s ${name}>";' if p in _SCRIPT_WRITERS else '"%s" = "<pkgs.%s>";') % (p, p)
        for p in packages
    )
    expr = "import %s { config = {}; lib = {}; pkgs = %s; }" % (path, stub)
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, "%s does not evaluate: %s" % (path, proc.stderr)
    return json.loads(proc.stdout)


def assert_rendered_modules_evaluate(host):
    """Every rendered module evaluates and sets only options nixpkgs declares."""
    check = _option_checker()
    for path in rendered_modules(host):
        if path.endswith("/default.nix"):
            continue
        check(evaluate_module(path))


def assert_inventory_applies(host):
    """The real inventory's group and host variables reached the lab host:
    its rendered base module carries the kernel parameters host_vars set."""
    import yaml  # noqa: PLC0415

    name = hostname(host)
    with open(os.path.join(PROJECT, "inventory", "host_vars", name + ".yml")) as f:
        params = (yaml.safe_load(f) or {}).get("base_kernel_params") or []
    text = open(os.path.join(PROJECT, "build", "nixos", name, "base.nix")).read()
    for param in params:
        assert '"%s"' % param in text, "%s: host_vars kernel parameter %s missing" % (name, param)
    assert "trusted-users" in text  # group_vars/all
