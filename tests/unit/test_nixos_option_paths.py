"""Every option path the collection emits exists in nixpkgs.

The reference is tests/data/nixpkgs_options.yml (checked against the
NixOS/nixpkgs module sources); the checker is the ``known_options`` fixture
from tests/unit/conftest.py.
"""

import datetime
import glob
import os

import pytest
import yaml

from ansible_collections.homelab.nixos.plugins.module_utils._base_options import nixos_options
from ansible_collections.homelab.nixos.plugins.module_utils._nix import raw


def full_desired(microcode):
    """A base-role desired state with every branch of nixos_options() on."""
    return {
        "hostname": "node1",
        "kernel_params": ["quiet", "mitigations=auto"],
        "cpu_governor": "schedutil",
        "zram": {"percent": 25, "algorithm": "lz4"},
        "thermald": True,
        "microcode": microcode,
        "fstrim": {"enabled": True, "interval": "weekly", "random_delay": "6h"},
        "nix": {
            "gc": {"automatic": True, "dates": "weekly", "keep_days": 14},
            "optimise": True,
            "trusted_users": ["root", "@wheel"],
        },
        "journald_max_use": "500M",
        "extra_settings": {
            "boot": {"kernel": {"sysctl": {"vm.swappiness": 10}}},
            "nix": {"settings": {"max-jobs": 4, "experimental-features": ["nix-command", "flakes"]}},
        },
    }


# --- the reference data itself ------------------------------------------------


def test_reference_data_is_well_formed(nixpkgs_options):
    assert isinstance(nixpkgs_options["checked_on"], datetime.date)
    options, absent = nixpkgs_options["options"], nixpkgs_options["absent"]
    for name, entry in options.items():
        assert entry["file"].startswith("nixos/") and entry["file"].endswith(".nix"), name
        assert isinstance(entry.get("freeform", False), bool), name
    for name, reason in absent.items():
        assert isinstance(reason, str) and reason.strip(), name
    assert not set(options) & set(absent)


def test_freeform_settings_list_the_keys_nixpkgs_declares(nixpkgs_options):
    nix_settings = nixpkgs_options["options"]["nix.settings"]
    assert nix_settings["freeform"] is True
    assert {"auto-optimise-store", "trusted-users"} <= set(nix_settings["known_keys"])
    assert nixpkgs_options["options"]["systemd.timers"]["freeform"] is True
    assert "PermitRootLogin" in nixpkgs_options["options"]["services.openssh.settings"]["known_keys"]


# --- the base role -------------------------------------------------------------


@pytest.mark.parametrize("microcode", ["intel", "amd"])
def test_base_options_emit_only_known_nixos_options(known_options, microcode):
    paths = known_options(nixos_options(full_desired(microcode)))
    # Every branch really ran, so every path above was checked.
    for path in (
        "networking.hostName",
        "boot.kernelParams",
        "environment.systemPackages",
        "nix.settings.auto-optimise-store",
        "nix.settings.trusted-users",
        "nix.gc.automatic",
        "nix.gc.dates",
        "nix.gc.options",
        "nix.optimise.automatic",
        "powerManagement.cpuFreqGovernor",
        "zramSwap.enable",
        "zramSwap.algorithm",
        "zramSwap.memoryPercent",
        "services.thermald.enable",
        "hardware.cpu.%s.updateMicrocode" % microcode,
        "services.fstrim.enable",
        "services.fstrim.interval",
        "systemd.timers.fstrim.timerConfig.RandomizedDelaySec",
        'boot.kernel.sysctl."vm.swappiness"',
    ):
        assert path in paths


# --- the checker ---------------------------------------------------------------


def test_checker_accepts_declared_freeform_and_raw(known_options):
    known_options(
        {
            "services": {
                "openssh": {"enable": True, "ports": [22], "settings": {"PermitRootLogin": "no", "MaxAuthTries": 3}},
                "prometheus": {"enable": True, "globalConfig": {"scrape_interval": "15s"}, "scrapeConfigs": []},
                "restic": {"backups": {"home": {"paths": ["/home"], "timerConfig": {"OnCalendar": "daily"}}}},
            },
            "boot": {"kernelParams": raw("[ ]")},
            "networking": {"firewall": {}},
        }
    )


def test_checker_rejects_the_removed_top_level_permit_root_login(known_options):
    with pytest.raises(AssertionError, match=r"services\.openssh\.permitRootLogin.*settings\.PermitRootLogin"):
        known_options({"services": {"openssh": {"permitRootLogin": "no"}}})


def test_checker_rejects_made_up_and_non_freeform_paths(known_options):
    with pytest.raises(AssertionError, match=r"services\.openssh\.madeUpOption: not an option"):
        known_options({"services": {"openssh": {"madeUpOption": True}}})
    with pytest.raises(AssertionError, match=r"services\.prometheus\.globalConfig\.bogus"):
        known_options({"services": {"prometheus": {"globalConfig": {"bogus": "1m"}}}})


@pytest.mark.parametrize(
    "settings",
    [
        {"services": {"journald": {"extraConfig": "SystemMaxUse=1G\n"}}},
        {"services": {"auditd": {"enable": True}}},
        {"services": {"aide": {"enable": True}}},
        {"hardware": {"opengl": {"enable": True}}},
    ],
)
def test_checker_rejects_absent_options(known_options, settings):
    with pytest.raises(AssertionError, match="absent from nixpkgs"):
        known_options(settings)


def _inventory_host_vars():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in sorted(glob.glob(os.path.join(root, "inventory", "host_vars", "*.yml"))):
        with open(path) as f:
            yield os.path.basename(path)[:-4], yaml.safe_load(f) or {}


@pytest.mark.parametrize(("host", "host_vars"), list(_inventory_host_vars()))
def test_inventory_extra_settings_use_known_options(known_options, host, host_vars):
    extra = host_vars.get("base_nixos_extra_settings") or {}
    if extra:
        known_options(extra)
