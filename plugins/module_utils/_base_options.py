# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base role's desired state, as NixOS options.

The base role computes a backend-neutral description of a host (kernel
parameters, governor, zram, Nix housekeeping, journald, fstrim); this maps
it to the option names nixpkgs declares (checked against nixpkgs' module
sources, see tests/data/nixpkgs_options.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.nixos.plugins.module_utils._nix import raw

GOVERNORS = ("performance", "powersave", "schedutil", "ondemand", "conservative", "userspace")
MICROCODE = ("amd", "intel")


class BaseOptionsError(ValueError):
    """The desired state cannot be expressed."""


def _merge(target, extra, path=()):
    """Deep-merge ``extra`` into ``target`` (``extra`` wins on scalars)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, (*path, key))
        else:
            target[key] = value
    return target


def nixos_options(desired):
    """NixOS option values (to_nix data) for the base role's ``desired`` state."""
    opts = {
        "networking": {"hostName": desired["hostname"]},
        "boot": {"kernelParams": list(desired.get("kernel_params") or [])},
        # Ansible modules need a Python on the host (see bootstrap.yml).
        "environment": {
            "systemPackages": [raw("pkgs.python3")],
            # A drop-in works on every release: services.journald.extraConfig
            # is removed in 26.11 and services.journald.settings is new there.
            "etc": {
                "systemd/journald.conf.d/homelab.conf": {
                    "text": "[Journal]\nSystemMaxUse=%s\n" % desired["journald_max_use"]
                }
            },
        },
        "nix": {
            "settings": {
                "auto-optimise-store": bool(desired["nix"]["optimise"]),
                "trusted-users": list(desired["nix"]["trusted_users"]),
            },
            "gc": {"automatic": bool(desired["nix"]["gc"]["automatic"])},
        },
        "services": {},
    }
    gc = desired["nix"]["gc"]
    if gc["automatic"]:
        opts["nix"]["gc"]["dates"] = gc["dates"]
        opts["nix"]["gc"]["options"] = "--delete-older-than %dd" % int(gc["keep_days"])
    if desired["nix"]["optimise"]:
        opts["nix"]["optimise"] = {"automatic": True}

    governor = desired.get("cpu_governor")
    if governor:
        if governor not in GOVERNORS:
            raise BaseOptionsError("unknown CPU governor %r; one of %s" % (governor, ", ".join(GOVERNORS)))
        opts["powerManagement"] = {"cpuFreqGovernor": governor}

    zram = desired.get("zram") or {}
    if int(zram.get("percent") or 0) > 0:
        opts["zramSwap"] = {
            "enable": True,
            "algorithm": zram.get("algorithm") or "zstd",
            "memoryPercent": int(zram["percent"]),
        }

    if desired.get("thermald"):
        opts["services"]["thermald"] = {"enable": True}

    microcode = desired.get("microcode")
    if microcode:
        if microcode not in MICROCODE:
            raise BaseOptionsError("unknown microcode vendor %r; one of amd, intel" % (microcode,))
        opts["hardware"] = {"cpu": {microcode: {"updateMicrocode": True}}}

    fstrim = desired.get("fstrim") or {}
    if fstrim.get("enabled"):
        opts["services"]["fstrim"] = {"enable": True, "interval": fstrim["interval"]}
        if fstrim.get("random_delay"):
            # services.fstrim has no delay option; the timer it creates does.
            opts["systemd"] = {"timers": {"fstrim": {"timerConfig": {"RandomizedDelaySec": fstrim["random_delay"]}}}}

    if not opts["services"]:
        del opts["services"]
    return _merge(opts, desired.get("extra_settings") or {})
