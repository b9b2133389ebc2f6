# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel hardening of one host as plain data: sysctl values per host kind,
the router exception, and kernel modules nobody here needs.

Hosts that forward packets (a Tailscale exit node or subnet router, container
and VM hosts) keep IPv4/IPv6 forwarding on and use loose reverse-path
filtering; the old fleet broke its exit node by hardening it like the rest.
Inside a container only the network namespace's own settings (net.ipv4.*,
net.ipv6.*) can apply: the rest belong to the host's kernel and are reported
as skipped, and so is the module blacklist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

KINDS = ("workstation", "laptop", "server", "vm")
# Features whose hosts route packets for others.
FORWARDING_FEATURES = (
    "networking.tailscale_exit_node",
    "networking.subnet_router",
    "virtualization.docker",
    "virtualization.podman",
    "virtualization.microvm",
    "development.containers",
)
FORWARDING_KEYS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
COMMON = {
    # Kernel pointers, logs and BPF out of unprivileged reach.
    "kernel.kptr_restrict": 2,
    "kernel.dmesg_restrict": 1,
    "kernel.unprivileged_bpf_disabled": 1,
    "net.core.bpf_jit_harden": 2,
    "kernel.yama.ptrace_scope": 1,
    "kernel.kexec_load_disabled": 1,
    "kernel.randomize_va_space": 2,
    "kernel.perf_event_paranoid": 3,
    "dev.tty.ldisc_autoload": 0,
    "fs.protected_hardlinks": 1,
    "fs.protected_symlinks": 1,
    "fs.protected_fifos": 2,
    "fs.protected_regular": 2,
    "fs.suid_dumpable": 0,
    # Network: no redirects or source routing, SYN cookies, martians logged.
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_rfc1337": 1,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
}
# Magic SysRq: desktops keep sync, remount read-only and reboot (176) for a
# hung session; servers and VMs turn it off.
SYSRQ = {"workstation": 176, "laptop": 176, "server": 0, "vm": 0}
# Never loaded here: rare filesystems and network protocols with a history of
# local privilege escalations. squashfs (live USB images), udf and usb-storage
# stay allowed.
BLACKLIST = (
    "cramfs",
    "freevxfs",
    "jffs2",
    "hfs",
    "hfsplus",
    "dccp",
    "sctp",
    "rds",
    "tipc",
    "n_hdlc",
    "ax25",
    "netrom",
    "x25",
    "rose",
    "decnet",
    "econet",
    "af_802154",
    "ipx",
    "appletalk",
    "psnap",
    "p8023",
    "p8022",
    "can",
    "atm",
)
_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$")
_MODULE = re.compile(r"^[a-z0-9_-]+$")


class KernelHardeningError(ValueError):
    """Settings that cannot be applied; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def namespaced(key):
    """Whether a sysctl belongs to the network namespace. Inside a container only
    these may be written: some global ones (fs.protected_*, kernel.randomize_va_space)
    are writable there too, and writing them would change the container host."""
    return key.startswith(("net.ipv4.", "net.ipv6."))


def kernel_hardening(kind, features=(), forwarding=None, *, in_container=False, extra_sysctl=None, allow_modules=()):
    """{sysctl, skipped, blacklist, forwarding} for one host."""
    problems = []
    if kind not in KINDS:
        problems.append(f"host kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if forwarding is not None and not isinstance(forwarding, bool):
        problems.append(f"forwarding must be true, false or null (auto), got {forwarding!r}")
    extra = extra_sysctl or {}
    if not isinstance(extra, Mapping):
        problems.append(f"extra sysctl settings must be a mapping, got {extra!r}")
        extra = {}
    for key, value in extra.items():
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"{key!r} is not a sysctl name")
        elif isinstance(value, bool) or not isinstance(value, (int, str)) or "\n" in str(value):
            problems.append(f"sysctl {key} must be a number or a one-line string, got {value!r}")
    for module in allow_modules or ():
        if not isinstance(module, str) or not _MODULE.match(module):
            problems.append(f"{module!r} is not a kernel module name")
    if problems:
        raise KernelHardeningError(problems)

    routes = forwarding if forwarding is not None else any(f in FORWARDING_FEATURES for f in features or ())
    settings = dict(COMMON)
    settings["kernel.sysrq"] = SYSRQ[kind]
    settings["net.ipv4.ip_forward"] = 1 if routes else 0
    settings["net.ipv6.conf.all.forwarding"] = 1 if routes else 0
    # Tailscale needs loose reverse-path filtering on routers (asymmetric routes).
    rp_filter = 2 if routes else 1
    settings["net.ipv4.conf.all.rp_filter"] = rp_filter
    settings["net.ipv4.conf.default.rp_filter"] = rp_filter
    settings.update(extra)
    if in_container:
        applied = {k: v for k, v in settings.items() if namespaced(k)}
        skipped = sorted(k for k in settings if not namespaced(k))
        blacklist = []
    else:
        applied, skipped = settings, []
        blacklist = [m for m in BLACKLIST if m not in set(allow_modules or ())]
    # Forwarding first: writing ip_forward resets every interface's
    # accept_redirects (the kernel's inet_forward_change), so it must come
    # before the settings it would undo.
    first = [k for k in FORWARDING_KEYS if k in applied]
    ordered = {k: applied[k] for k in first}
    ordered.update(sorted((k, v) for k, v in applied.items() if k not in first))
    return {
        "sysctl": ordered,
        "skipped": skipped,
        "blacklist": blacklist,
        "forwarding": routes,
    }


def sysctl_conf(settings, header=""):
    """A sysctl.d file for ``settings``."""
    lines = [header.rstrip("\n")] if header else []
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def modprobe_conf(modules, false_path="/bin/false", header=""):
    """A modprobe.d file that keeps ``modules`` from loading, even on request."""
    lines = [header.rstrip("\n")] if header else []
    for module in modules:
        lines += [f"blacklist {module}", f"install {module} {false_path}"]
    return "\n".join(lines) + "\n"


def nixos_kernel_hardening(plan):
    """``boot`` options for the plan."""
    options = {"kernel": {"sysctl": dict(plan["sysctl"])}}
    if plan["blacklist"]:
        options["blacklistedKernelModules"] = list(plan["blacklist"])
        options["extraModprobeConfig"] = "".join(
            f"install {m} /run/current-system/sw/bin/false\n" for m in plan["blacklist"]
        )
    return options


def live_differences(plan_sysctl, sysctl_output):
    """Keys whose live value (``sysctl key ...`` output) differs from the plan."""
    live = {}
    for line in sysctl_output.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            live[key.strip()] = value.strip()
    return {
        key: {"want": str(value), "live": live.get(key)}
        for key, value in plan_sysctl.items()
        if live.get(key) != str(value)
    }
