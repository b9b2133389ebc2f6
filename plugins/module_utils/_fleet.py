# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plain description of each fleet host, derived from inventory variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ROLE_GROUPS = (
    "workstations",
    "laptops",
    "servers",
    "vms",
    "monitoring_server",
    "log_server",
    "media",
    "build_host",
    "backup_targets",
)


class FleetError(ValueError):
    """Hosts that are not in the inventory, or unusable variables."""


def _cpu_vendor(host_vars):
    params = host_vars.get("base_kernel_params") or []
    if any(str(p).startswith("amd_pstate") for p in params):
        return "amd"
    if any(str(p).startswith("intel_pstate") for p in params):
        return "intel"
    probed = ((host_vars.get("ansible_facts") or {}).get("homelab_hardware") or {}).get("cpu") or {}
    return probed.get("vendor") if probed.get("vendor") in ("amd", "intel") else "other"


def fleet_hosts(hostvars, hosts):
    """[{name, address, kind, cpu, gpu, roles, nixos}] for ``hosts``, in order."""
    missing = [h for h in hosts if h not in hostvars]
    if missing:
        raise FleetError("hosts not in the inventory: %s" % ", ".join(sorted(missing)))
    out = []
    for name in hosts:
        host_vars = hostvars[name]
        groups = list(host_vars.get("group_names") or [])
        gpus = [vendor for vendor in ("amd", "nvidia") if "gpu_" + vendor in groups]
        out.append(
            {
                "name": name,
                "address": str(host_vars.get("ansible_host") or name),
                "kind": host_vars.get("base_host_kind") or "unknown",
                "cpu": _cpu_vendor(host_vars),
                "gpu": ",".join(gpus) or "none",
                "roles": sorted(g for g in groups if g in ROLE_GROUPS),
                "nixos": "nixos" in groups,
            }
        )
    return out
