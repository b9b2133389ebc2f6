# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plain description of each fleet host, derived from inventory variables.

Groups, kind, GPU and address are read exactly as the scrape targets read
them (``_prometheus_targets._host``), so dashboards and targets always agree;
this adds only the CPU vendor.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_targets import (
    DEFAULT_SETTINGS,
    ROLE_GROUPS,
    _host,
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
    problems = []
    out = []
    for name in hosts:
        host = _host(name, hostvars[name], DEFAULT_SETTINGS["node_port"], problems)
        if host is None:
            continue
        out.append(
            {
                "name": name,
                "address": host["address"],
                "kind": host["labels"]["kind"],
                "cpu": _cpu_vendor(hostvars[name]),
                "gpu": host["labels"]["gpu"],
                "roles": sorted(host["groups"] & set(ROLE_GROUPS)),
                "nixos": host["labels"]["nixos"] == "true",
            }
        )
    if problems:
        raise FleetError("; ".join(problems))
    return out
