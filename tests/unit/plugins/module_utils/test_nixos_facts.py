"""Unit tests of the nixos_facts logic against fake NixOS trees in tmp directories.

The trees use absolute symlinks (``/nix/store/...``) as a real host does; the
code under test must resolve them inside the tree, never on this machine.
"""

import os
import time

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._nixos_facts import (
    channels,
    configuration_type,
    current_generation,
    empty_facts,
    existing,
    flake_uri,
    gather,
    generations,
    parse_os_release,
    read_text,
    reboot_reasons,
    resolve,
)

NIXOS_RELEASE = """\
ANSI_COLOR="1;34"
BUG_REPORT_URL="https://github.com/NixOS/nixpkgs/issues"
BUILD_ID="24.11.20241231.edf04b7"
ID=nixos
NAME=NixOS
PRETTY_NAME="NixOS 24.11 (Vicuna)"
VERSION="24.11 (Vicuna)"
VERSION_CODENAME=vicuna
VERSION_ID="24.11"
"""

DEBIAN_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""

SYS1 = "/nix/store/aaaa-nixos-system-p620-24.11.20241201.1111111"
SYS2 = "/nix/store/bbbb-nixos-system-p620-24.11.20241231.edf04b7"
KERNEL_OLD = "/nix/store/kkk1-linux-6.6.63"
KERNEL_NEW = "/nix/store/kkk2-linux-6.12.6"
INITRD = "/nix/store/iiii-initrd-linux"
MODULES = "/nix/store/mmmm-linux-modules"
PROFILES = "/nix/var/nix/profiles"


class FakeNixosTree:
    """Test double: a directory laid out like a NixOS root filesystem (store, profiles, /run links)."""

    def __init__(self, root):
        self.root = str(root)

    def path(self, logical):
        return os.path.join(self.root, logical.lstrip("/"))

    def write(self, logical, text=""):
        host = self.path(logical)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w", encoding="utf-8") as f:
            f.write(text)

    def link(self, logical, target):
        host = self.path(logical)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        os.symlink(target, host)

    def system(self, store_path, kernel, version):
        """A system closure with kernel, initrd, kernel-modules and nixos-version."""
        self.write(kernel + "/bzImage", "kernel")
        self.write(INITRD + "/initrd", "initrd")
        self.write(MODULES + "/lib/modules/.keep")
        self.write(store_path + "/nixos-version", version + "\n")
        self.link(store_path + "/kernel", kernel + "/bzImage")
        self.link(store_path + "/initrd", INITRD + "/initrd")
        self.link(store_path + "/kernel-modules", MODULES)

    def generation(self, number, store_path, mtime):
        link = f"{PROFILES}/system-{number}-link"
        self.link(link, store_path)
        os.utime(self.path(link), (mtime, mtime), follow_symlinks=False)


def _nixos(tmp_path, booted=SYS1, kernel_new=KERNEL_NEW):
    """Two generations; the current one is 2, the booted one ``booted``."""
    tree = FakeNixosTree(tmp_path)
    # /etc/os-release is a chain of absolute links on NixOS.
    tree.write("/nix/store/oooo-etc-os-release", NIXOS_RELEASE)
    tree.link("/etc/static", "/nix/store/eeee-etc/etc")
    tree.link("/nix/store/eeee-etc/etc/os-release", "/nix/store/oooo-etc-os-release")
    tree.link("/etc/os-release", "/etc/static/os-release")
    tree.write("/etc/hostname", "p620\n")
    tree.system(SYS1, KERNEL_OLD, "24.11.20241201.1111111")
    tree.system(SYS2, kernel_new, "24.11.20241231.edf04b7")
    tree.generation(1, SYS1, 1733011200)  # 2024-12-01T00:00:00Z
    tree.generation(2, SYS2, 1735646400)  # 2024-12-31T12:00:00Z
    tree.link(PROFILES + "/system", "system-2-link")
    tree.link("/run/current-system", SYS2)
    tree.link("/run/booted-system", booted)
    return tree


@pytest.fixture
def nixos(tmp_path):
    return _nixos(tmp_path)


def test_resolve_follows_absolute_links_inside_the_root(nixos):
    assert resolve(nixos.root, "/etc/os-release") == "/nix/store/oooo-etc-os-release"
    assert resolve(nixos.root, "/run/current-system/kernel") == KERNEL_NEW + "/bzImage"
    assert resolve(nixos.root, PROFILES + "/system") == SYS2
    assert read_text(nixos.root, "/etc/os-release") == NIXOS_RELEASE


def test_resolve_handles_dotdot_missing_parts_and_loops(tmp_path):
    tree = FakeNixosTree(tmp_path)
    tree.link("/a", "/b")
    tree.link("/b", "/a")
    tree.link("/up", "../../../etc")
    assert resolve(tree.root, "/a") is None
    assert existing(tree.root, "/a") is None
    assert read_text(tree.root, "/a") is None
    assert resolve(tree.root, "/up/x") == "/etc/x"  # '..' never leaves the root
    assert resolve(tree.root, "/no/such/./file") == "/no/such/file"
    assert existing(tree.root, "/no/such/file") is None


def test_parse_os_release_strips_quotes_and_skips_noise():
    text = '# comment\n\nID=nixos\nVERSION_ID="24.11"\nNAME=\'NixOS\'\nBROKEN="unterminated\ngarbage\n'
    assert parse_os_release(text) == {"ID": "nixos", "VERSION_ID": "24.11", "NAME": "NixOS", "BROKEN": "unterminated"}
    assert parse_os_release(None) == {}


def test_full_facts_of_a_nixos_host_with_a_new_kernel(nixos):
    facts = gather(nixos.root)
    assert facts["is_nixos"] is True
    assert (facts["version"], facts["version_codename"], facts["build_id"]) == (
        "24.11",
        "vicuna",
        "24.11.20241231.edf04b7",
    )
    assert facts["current_system"] == SYS2
    assert facts["booted_system"] == SYS1
    assert facts["reboot_required"] is True
    assert facts["reboot_reasons"] == [
        f"kernel changed: {KERNEL_OLD}/bzImage -> {KERNEL_NEW}/bzImage",
    ]
    assert facts["current_generation"] == 2
    assert facts["generations"] == [
        {"number": 1, "path": SYS1, "date": "2024-12-01T00:00:00Z", "current": False},
        {"number": 2, "path": SYS2, "date": "2024-12-31T12:00:00Z", "current": True},
    ]
    assert facts["nixpkgs_version"] == "24.11.20241231.edf04b7"
    assert facts["configuration_type"] == "none"
    assert facts["config_dir"] == "/etc/nixos"
    assert facts["flake_uri"] is None
    assert facts["channels"] == []


def test_same_kernel_initrd_and_modules_need_no_reboot(tmp_path):
    tree = _nixos(tmp_path, kernel_new=KERNEL_OLD)
    # Different systems (a config-only change), same boot-relevant parts.
    assert reboot_reasons(tree.root) == []
    facts = gather(tree.root)
    assert facts["booted_system"] != facts["current_system"]
    assert facts["reboot_required"] is False


def test_booted_is_current_needs_no_reboot(tmp_path):
    tree = _nixos(tmp_path, booted=SYS2)
    assert gather(tree.root)["reboot_required"] is False


def test_changed_initrd_and_missing_kernel_modules_are_reasons(nixos):
    os.unlink(nixos.path(SYS2 + "/initrd"))
    nixos.write("/nix/store/iii2-initrd-linux/initrd", "initrd 2")
    nixos.link(SYS2 + "/initrd", "/nix/store/iii2-initrd-linux/initrd")
    os.unlink(nixos.path(SYS2 + "/kernel-modules"))
    reasons = reboot_reasons(nixos.root)
    assert [reason.split(" ")[0] for reason in reasons] == ["kernel", "initrd", "kernel-modules"]
    assert reasons[2] == f"kernel-modules changed: {MODULES} -> (none)"


def test_missing_booted_system_cannot_require_a_reboot(nixos):
    os.unlink(nixos.path("/run/booted-system"))
    facts = gather(nixos.root)
    assert facts["booted_system"] is None
    assert (facts["reboot_required"], facts["reboot_reasons"]) == (False, [])


def test_flake_configuration(nixos):
    nixos.write("/etc/nixos/flake.nix", "{ }")
    nixos.write("/etc/nixos/configuration.nix", "{ }")
    facts = gather(nixos.root)
    assert facts["configuration_type"] == "flake"
    assert facts["flake_uri"] == "/etc/nixos#p620"
    assert flake_uri(nixos.root, host="other") == "/etc/nixos#other"


def test_flake_uri_follows_a_symlinked_flake(nixos):
    nixos.write("/home/admin/nixos-config/flake.nix", "{ }")
    nixos.link("/etc/nixos/flake.nix", "/home/admin/nixos-config/flake.nix")
    assert flake_uri(nixos.root) == "/home/admin/nixos-config#p620"


def test_classic_configuration_with_channels(nixos):
    nixos.write("/etc/nixos/configuration.nix", "{ }")
    nixos.write(
        "/root/.nix-channels",
        "https://nixos.org/channels/nixos-24.11 nixos\n\nhttps://example.org/channels/home-manager\n",
    )
    facts = gather(nixos.root)
    assert facts["configuration_type"] == "classic"
    assert facts["flake_uri"] is None
    assert facts["channels"] == [
        {"name": "home-manager", "url": "https://example.org/channels/home-manager"},
        {"name": "nixos", "url": "https://nixos.org/channels/nixos-24.11"},
    ]


def test_config_dir_parameter(nixos):
    nixos.write("/srv/cfg/flake.nix", "{ }")
    facts = gather(nixos.root, config_dir="/srv/cfg/", host="nixvm")
    assert (facts["config_dir"], facts["configuration_type"], facts["flake_uri"]) == (
        "/srv/cfg/",
        "flake",
        "/srv/cfg#nixvm",
    )
    assert configuration_type(nixos.root, "/etc/nixos") == "none"


def test_debian_host_is_not_nixos_and_does_not_fail(tmp_path):
    tree = FakeNixosTree(tmp_path)
    tree.write("/usr/lib/os-release", DEBIAN_RELEASE)
    tree.link("/etc/os-release", "../usr/lib/os-release")
    tree.write("/etc/nixos/flake.nix", "{ }")  # even stray NixOS files change nothing
    facts = gather(tree.root)
    assert facts == empty_facts()
    assert facts["is_nixos"] is False
    assert facts["version"] is None
    assert facts["generations"] == []


def test_empty_root_is_not_nixos(tmp_path):
    assert gather(str(tmp_path))["is_nixos"] is False


def test_usr_lib_os_release_is_the_fallback(tmp_path):
    tree = FakeNixosTree(tmp_path)
    tree.write("/usr/lib/os-release", NIXOS_RELEASE)
    facts = gather(tree.root)
    assert facts["is_nixos"] is True
    assert facts["version"] == "24.11"


def test_nixos_without_profiles_or_run_links(tmp_path):
    """A freshly mounted, not yet booted system (e.g. /mnt during install)."""
    tree = FakeNixosTree(tmp_path)
    tree.write("/etc/os-release", NIXOS_RELEASE)
    facts = gather(tree.root)
    assert facts["is_nixos"] is True
    assert facts["current_system"] is None
    assert facts["booted_system"] is None
    assert facts["current_generation"] is None
    assert facts["generations"] == []
    assert facts["reboot_required"] is False
    assert facts["nixpkgs_version"] is None


def test_broken_symlinks_are_tolerated(nixos):
    # The current system was garbage collected (should never happen, must not crash).
    os.unlink(nixos.path("/run/current-system"))
    nixos.link("/run/current-system", "/nix/store/gone-nixos-system")
    # A generation link pointing nowhere, a stray file and a non-link named like a generation.
    nixos.link(PROFILES + "/system-3-link", "/nix/store/zzzz-missing")
    nixos.write(PROFILES + "/system-4-link", "not a link")
    nixos.write(PROFILES + "/per-user/.keep")
    nixos.link(PROFILES + "/other-9-link", SYS1)
    facts = gather(nixos.root)
    assert facts["current_system"] is None
    assert facts["nixpkgs_version"] is None
    assert facts["reboot_required"] is False
    assert [g["number"] for g in facts["generations"]] == [1, 2, 3]
    assert facts["generations"][2]["path"] == "/nix/store/zzzz-missing"


def test_profile_pointing_at_something_else(nixos):
    os.unlink(nixos.path(PROFILES + "/system"))
    nixos.link(PROFILES + "/system", SYS2)
    assert current_generation(nixos.root) is None
    assert not any(g["current"] for g in generations(nixos.root))


def test_absolute_profile_link_and_missing_profile_dir(tmp_path, nixos):
    os.unlink(nixos.path(PROFILES + "/system"))
    nixos.link(PROFILES + "/system", PROFILES + "/system-1-link")
    assert current_generation(nixos.root) == 1
    empty = str(tmp_path / "empty")
    os.mkdir(empty)
    assert current_generation(empty) is None
    assert generations(empty) == []
    assert channels(empty) == []


def test_generation_dates_are_utc(nixos):
    stamp = 1700000000
    os.utime(nixos.path(PROFILES + "/system-1-link"), (stamp, stamp), follow_symlinks=False)
    date = generations(nixos.root)[0]["date"]
    assert date == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)) == "2023-11-14T22:13:20Z"
