# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the nixos_facts module: what a NixOS host is running, read from its files.

Every function takes ``root``, the directory that stands for ``/``, so tests
build a fake NixOS tree in a temporary directory. Symlinks are resolved
*inside* that root: an absolute link target such as ``/nix/store/...`` is
looked up under ``root``, exactly as the host itself would see it.

Nothing here runs a command or changes a file, and nothing raises for a
missing or broken file: a host that is not NixOS gets ``is_nixos: false``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import socket
import time

DEFAULT_CONFIG_DIR = "/etc/nixos"
SYSTEM_PROFILE = "/nix/var/nix/profiles/system"
CURRENT_SYSTEM = "/run/current-system"
BOOTED_SYSTEM = "/run/booted-system"
CHANNELS_FILE = "/root/.nix-channels"
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")
# What the stock NixOS "reboot needed?" check compares between the booted and the current system.
REBOOT_LINKS = ("kernel", "initrd", "kernel-modules")

_GENERATION_LINK = re.compile(r"system-([0-9]+)-link")
# The same limit on symlink hops as Linux path resolution.
_MAX_LINK_HOPS = 40


def _host_path(root, path):
    """Where the logical absolute ``path`` (as seen inside ``root``) lives on this machine."""
    return os.path.join(root, path.lstrip("/"))


def _readlink(root, path):
    """Target of the symlink at logical ``path``, or None when it is not a symlink."""
    try:
        return os.readlink(_host_path(root, path))
    except OSError:
        return None


def resolve(root, path):
    """Resolve every symlink in the logical absolute ``path`` inside ``root``.

    Returns the resolved logical path (starting with ``/``), resolving as far
    as the files exist, like ``realpath -m``; None for a symlink loop.
    """
    pending = [part for part in path.split("/") if part]
    pending.reverse()
    resolved = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = [*resolved, part]
        target = _readlink(root, "/" + "/".join(candidate))
        if target is None:
            resolved = candidate
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            return None
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([p for p in target.split("/") if p]))
    return "/" + "/".join(resolved)


def existing(root, path):
    """The resolved logical ``path`` when it exists inside ``root``, else None."""
    target = resolve(root, path)
    if target is None or not os.path.lexists(_host_path(root, target)):
        return None
    return target


def read_text(root, path):
    """Content of the file at logical ``path`` (symlinks followed inside ``root``), or None."""
    target = existing(root, path)
    if target is None:
        return None
    try:
        with open(_host_path(root, target), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def parse_os_release(text):
    """The KEY=value pairs of an os-release file, quotes removed."""
    result = {}
    for raw_line in (text or "").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        result[key.strip()] = " ".join(words)
    return result


def os_release(root):
    """os-release of the host in ``root``; empty when there is none."""
    for path in OS_RELEASE_FILES:
        text = read_text(root, path)
        if text is not None:
            return parse_os_release(text)
    return {}


def _iso_mtime(root, path):
    try:
        mtime = os.lstat(_host_path(root, path)).st_mtime
    except OSError:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


def current_generation(root, profile=SYSTEM_PROFILE):
    """Number of the generation the system profile points to, or None."""
    target = _readlink(root, profile)
    if target is None:
        return None
    match = _GENERATION_LINK.fullmatch(os.path.basename(target.rstrip("/")))
    return int(match.group(1)) if match else None


def generations(root, profile=SYSTEM_PROFILE):
    """The system generations, oldest first: number, store path, date (link mtime, UTC) and current."""
    profile_dir = os.path.dirname(profile)
    host_dir = _host_path(root, profile_dir)
    try:
        entries = os.listdir(host_dir)
    except OSError:
        return []
    current = current_generation(root, profile)
    prefix = os.path.basename(profile)
    found = []
    for entry in entries:
        match = re.fullmatch(re.escape(prefix) + r"-([0-9]+)-link", entry)
        if not match:
            continue
        link = profile_dir + "/" + entry
        if _readlink(root, link) is None:
            continue
        number = int(match.group(1))
        found.append(
            {
                "number": number,
                "path": resolve(root, link),
                "date": _iso_mtime(root, link),
                "current": number == current,
            }
        )
    found.sort(key=lambda generation: generation["number"])
    return found


def _link_in(root, system, name):
    """Resolved target of ``<system>/<name>``, or None when the system or the entry is missing."""
    base = existing(root, system)
    if base is None or not os.path.lexists(_host_path(root, base + "/" + name)):
        return None
    return resolve(root, base + "/" + name)


def reboot_reasons(root, booted=BOOTED_SYSTEM, current=CURRENT_SYSTEM):
    """Why the booted system differs from the current one in kernel, initrd or kernel modules.

    Empty when they agree, or when either system link is missing (nothing to
    compare, as in a container).
    """
    if existing(root, booted) is None or existing(root, current) is None:
        return []
    reasons = []
    for name in REBOOT_LINKS:
        was = _link_in(root, booted, name)
        now = _link_in(root, current, name)
        if was != now:
            reasons.append(f"{name} changed: {was or '(none)'} -> {now or '(none)'}")
    return reasons


def configuration_type(root, config_dir=DEFAULT_CONFIG_DIR):
    """``flake`` when ``<config_dir>/flake.nix`` exists, ``classic`` for ``configuration.nix``, else ``none``."""
    if existing(root, config_dir.rstrip("/") + "/flake.nix") is not None:
        return "flake"
    if existing(root, config_dir.rstrip("/") + "/configuration.nix") is not None:
        return "classic"
    return "none"


def hostname(root):
    """The host name from ``<root>/etc/hostname``; the running host's name when ``root`` is ``/``."""
    text = read_text(root, "/etc/hostname")
    name = text.strip() if text else ""
    if not name and os.path.abspath(root) == "/":
        name = socket.gethostname()
    return name.split(".")[0] or None


def flake_uri(root, config_dir=DEFAULT_CONFIG_DIR, host=None):
    """``<flake dir>#<host>`` as nixos-rebuild builds it, following a symlinked ``flake.nix``."""
    flake = existing(root, config_dir.rstrip("/") + "/flake.nix")
    if flake is None:
        return None
    host = host or hostname(root)
    directory = os.path.dirname(flake)
    return f"{directory}#{host}" if host else directory


def channels(root, path=CHANNELS_FILE):
    """Root's channels from ``.nix-channels``: ``[{name, url}]`` sorted by name."""
    found = []
    for line in (read_text(root, path) or "").splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        url = words[0]
        name = words[1] if len(words) > 1 else os.path.basename(url.rstrip("/"))
        found.append({"name": name, "url": url})
    found.sort(key=lambda channel: channel["name"])
    return found


def empty_facts(config_dir=DEFAULT_CONFIG_DIR):
    """The facts of a host that is not NixOS."""
    return {
        "is_nixos": False,
        "version": None,
        "version_codename": None,
        "build_id": None,
        "current_system": None,
        "booted_system": None,
        "reboot_required": False,
        "reboot_reasons": [],
        "current_generation": None,
        "generations": [],
        "configuration_type": None,
        "config_dir": config_dir,
        "flake_uri": None,
        "channels": [],
        "nixpkgs_version": None,
    }


def gather(root="/", config_dir=DEFAULT_CONFIG_DIR, host=None):
    """All facts of the (NixOS) host whose filesystem is at ``root``."""
    config_dir = config_dir or DEFAULT_CONFIG_DIR
    facts = empty_facts(config_dir)
    release = os_release(root)
    if release.get("ID") != "nixos":
        return facts
    current = existing(root, CURRENT_SYSTEM)
    nixos_version = (read_text(root, current + "/nixos-version") or "").strip() if current else ""
    reasons = reboot_reasons(root)
    facts.update(
        is_nixos=True,
        version=release.get("VERSION_ID"),
        version_codename=release.get("VERSION_CODENAME"),
        build_id=release.get("BUILD_ID"),
        current_system=current,
        booted_system=existing(root, BOOTED_SYSTEM),
        reboot_required=bool(reasons),
        reboot_reasons=reasons,
        current_generation=current_generation(root),
        generations=generations(root),
        configuration_type=configuration_type(root, config_dir),
        flake_uri=flake_uri(root, config_dir, host),
        channels=channels(root),
        nixpkgs_version=nixos_version or None,
    )
    return facts
