"""Unit tests of the hardware probe behind hardware_facts.

The fixture trees (tests/unit/fixtures/hardware/<host>.yml, laid out by
tests/hardware_fixtures.py) model the six
fleet hosts (see the README there); ``detect-virt`` in each holds what
systemd-detect-virt prints on that host. One test probes this machine's
real root.
"""

import os
import shutil
import subprocess

import pytest
from hardware_fixtures import FIXTURES

from ansible_collections.homelab.nixos.plugins.module_utils._hardware import (
    CHASSIS_KINDS,
    DESKTOP_CHASSIS,
    DISK_TYPES,
    GPU_VENDORS,
    LAPTOP_CHASSIS,
    PROFILE_KINDS,
    SERVER_CHASSIS,
    HardwareProbeError,
    chassis_facts,
    chassis_kind,
    cpu_facts,
    disks,
    gpus,
    has_battery,
    memory_mb,
    parse_cpuinfo,
    probe,
    suggest_profile,
    virtualization_facts,
)

HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")
METAL = {"type": "none", "is_vm": False, "is_container": False, "source": "systemd-detect-virt"}

EXPECTED = {
    "p620": {
        "cpu": {
            "vendor": "amd",
            "model": "AMD Ryzen Threadripper PRO 3955WX 16-Cores",
            "sockets": 1,
            "cores": 16,
            "threads": 32,
            "flags_virtualization": "svm",
        },
        "gpus": [{"vendor": "amd", "pci_id": "1002:744c", "slot": "0000:2d:00.0", "class": "0x030000"}],
        "chassis": {"kind": "desktop", "dmi_type": 3, "vendor": "LENOVO", "product": "30E0CTO1WW"},
        "virtualization": METAL,
        "memory_mb": 128730,
        "disks": [
            {"name": "nvme0n1", "type": "nvme", "size_gb": 2000.4, "removable": False},
            {"name": "nvme1n1", "type": "nvme", "size_gb": 1000.2, "removable": False},
        ],
        # Only a wireless mouse's battery (scope Device).
        "battery": False,
        "profile": {
            "name": "amd-workstation-gpu-amd",
            "kind": "workstation",
            "suggested_kind": "workstation",
            "kernel_params": ["amd_pstate=active", "amd_iommu=on", "amdgpu.gpu_recovery=1"],
            "cpu_governor": "performance",
            "microcode": "amd",
            "gpu_drivers": ["amdgpu"],
            "zram_percent": 25,
            "thermald": False,
        },
    },
    "razer": {
        "cpu": {
            "vendor": "intel",
            "model": "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz",
            "sockets": 1,
            "cores": 6,
            "threads": 12,
            "flags_virtualization": "vmx",
        },
        "gpus": [
            {"vendor": "intel", "pci_id": "8086:3e9b", "slot": "0000:00:02.0", "class": "0x030000"},
            # Optimus: the NVIDIA GPU is a "3D controller" (0x0302), still a display-class device.
            {"vendor": "nvidia", "pci_id": "10de:1f10", "slot": "0000:01:00.0", "class": "0x030200"},
        ],
        "chassis": {
            "kind": "laptop",
            "dmi_type": 10,
            "vendor": "Razer",
            "product": "Blade 15 Advanced Model (Mid 2019) - RZ09-0301",
        },
        "virtualization": METAL,
        "memory_mb": 15835,
        # sda is the empty SD card reader: skipped.
        "disks": [{"name": "nvme0n1", "type": "nvme", "size_gb": 512.1, "removable": False}],
        "battery": True,
        "profile": {
            "name": "intel-laptop-gpu-nvidia-intel",
            "kind": "laptop",
            "suggested_kind": "laptop",
            "kernel_params": ["intel_pstate=active", "i915.enable_guc=2", "nvidia-drm.modeset=1"],
            "cpu_governor": "powersave",
            "microcode": "intel",
            "gpu_drivers": ["nvidia", "modesetting"],
            "zram_percent": 50,
            "thermald": True,
        },
    },
    "p510": {
        "cpu": {
            "vendor": "intel",
            "model": "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
            "sockets": 1,
            "cores": 14,
            "threads": 28,
            "flags_virtualization": "vmx",
        },
        "gpus": [
            {"vendor": "nvidia", "pci_id": "10de:1c30", "slot": "0000:02:00.0", "class": "0x030000"},
            {"vendor": "nvidia", "pci_id": "10de:1b81", "slot": "0000:03:00.0", "class": "0x030000"},
        ],
        # A tower (7): desktop by DMI, a server only by role.
        "chassis": {"kind": "desktop", "dmi_type": 7, "vendor": "LENOVO", "product": "30B5S0AW00"},
        "virtualization": METAL,
        "memory_mb": 64299,
        # sr0, md127 and dm-0 are skipped.
        "disks": [
            {"name": "sda", "type": "hdd", "size_gb": 8001.6, "removable": False},
            {"name": "sdb", "type": "hdd", "size_gb": 8001.6, "removable": False},
            {"name": "sdc", "type": "ssd", "size_gb": 500.1, "removable": False},
        ],
        "battery": False,
        "profile": {
            "name": "intel-workstation-gpu-nvidia",
            "kind": "workstation",
            "suggested_kind": "workstation",
            "kernel_params": ["intel_pstate=active", "nvidia-drm.modeset=1"],
            "cpu_governor": "performance",
            "microcode": "intel",
            "gpu_drivers": ["nvidia"],
            "zram_percent": 25,
            "thermald": False,
        },
    },
    "dex5550": {
        "cpu": {
            "vendor": "intel",
            "model": "Intel(R) Core(TM) i5-8500T CPU @ 2.10GHz",
            "sockets": 1,
            "cores": 6,
            "threads": 6,
            "flags_virtualization": "vmx",
        },
        "gpus": [{"vendor": "intel", "pci_id": "8086:3e92", "slot": "0000:00:02.0", "class": "0x030000"}],
        "chassis": {"kind": "desktop", "dmi_type": 35, "vendor": "Dell Inc.", "product": "OptiPlex 5060"},
        "virtualization": METAL,
        "memory_mb": 15841,
        "disks": [{"name": "sda", "type": "ssd", "size_gb": 512.1, "removable": False}],
        "battery": False,
        "profile": {
            "name": "intel-workstation-gpu-intel",
            "kind": "workstation",
            "suggested_kind": "workstation",
            # Intel iGPU params are for laptops only.
            "kernel_params": ["intel_pstate=active"],
            "cpu_governor": "performance",
            "microcode": "intel",
            "gpu_drivers": ["modesetting"],
            "zram_percent": 25,
            "thermald": False,
        },
    },
    "samsung": {
        "cpu": {
            "vendor": "intel",
            "model": "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz",
            "sockets": 1,
            "cores": 4,
            "threads": 8,
            "flags_virtualization": "vmx",
        },
        "gpus": [{"vendor": "intel", "pci_id": "8086:9a49", "slot": "0000:00:02.0", "class": "0x030000"}],
        "chassis": {"kind": "laptop", "dmi_type": 31, "vendor": "SAMSUNG ELECTRONICS CO., LTD.", "product": "950QDB"},
        "virtualization": METAL,
        "memory_mb": 15338,
        "disks": [
            {"name": "mmcblk0", "type": "ssd", "size_gb": 63.9, "removable": True},
            {"name": "nvme0n1", "type": "nvme", "size_gb": 512.1, "removable": False},
        ],
        "battery": True,
        "profile": {
            "name": "intel-laptop-gpu-intel",
            "kind": "laptop",
            "suggested_kind": "laptop",
            "kernel_params": ["intel_pstate=active", "i915.enable_guc=2"],
            "cpu_governor": "powersave",
            "microcode": "intel",
            "gpu_drivers": ["modesetting"],
            "zram_percent": 50,
            "thermald": True,
        },
    },
    "nixvm": {
        "cpu": {
            "vendor": "amd",
            "model": "AMD Ryzen Threadripper PRO 3955WX 16-Cores",
            "sockets": 1,
            "cores": 4,
            "threads": 4,
            # Nested virtualization exposes svm to the guest: it must not add amd_iommu.
            "flags_virtualization": "svm",
        },
        # Intel-vendor q35 chipset devices and virtio devices are not GPUs.
        "gpus": [],
        "chassis": {"kind": "vm", "dmi_type": 1, "vendor": "QEMU", "product": "Standard PC (Q35 + ICH9, 2009)"},
        "virtualization": {"type": "kvm", "is_vm": True, "is_container": False, "source": "systemd-detect-virt"},
        "memory_mb": 7949,
        "disks": [{"name": "vda", "type": "virtual", "size_gb": 21.5, "removable": False}],
        "battery": False,
        "profile": {
            "name": "vm",
            "kind": "vm",
            "suggested_kind": "vm",
            "kernel_params": [],
            "cpu_governor": None,
            "microcode": None,
            "gpu_drivers": [],
            "zram_percent": 0,
            "thermald": False,
        },
    },
}


def fixture_root(host):
    return os.path.join(FIXTURES, host)


def captured_detect_virt(host):
    with open(os.path.join(fixture_root(host), "detect-virt")) as f:
        return f.read()


def probe_host(host, **kwargs):
    return probe(fixture_root(host), detect_virt=captured_detect_virt(host), **kwargs)


@pytest.fixture
def tree(tmp_path):
    """A writable copy of a fixture tree: ``tree("p620")`` returns its root."""

    def copy(host):
        root = str(tmp_path / host)
        shutil.copytree(fixture_root(host), root)
        return root

    return copy


def write(root, relative, text):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_unreadable(root, relative):
    """Replace a file by a directory: reading it fails with an OSError even as
    root (tests here run as root, so permission bits would not stop a read)."""
    path = os.path.join(root, relative)
    os.remove(path)
    os.makedirs(path)


def assert_well_formed(facts):
    cpu = facts["cpu"]
    assert cpu["vendor"] in ("amd", "intel", "other")
    assert cpu["model"] is None or (isinstance(cpu["model"], str) and cpu["model"])
    assert 1 <= cpu["sockets"] <= cpu["cores"] <= cpu["threads"]
    assert cpu["flags_virtualization"] in ("svm", "vmx", None)
    for gpu in facts["gpus"]:
        assert gpu["vendor"] in GPU_VENDORS
        assert len(gpu["pci_id"]) == 9 and gpu["pci_id"][4] == ":"
        assert gpu["class"].startswith("0x03") and len(gpu["class"]) == 8
    chassis = facts["chassis"]
    assert chassis["kind"] in CHASSIS_KINDS
    assert chassis["dmi_type"] is None or isinstance(chassis["dmi_type"], int)
    virt = facts["virtualization"]
    assert isinstance(virt["type"], str) and virt["type"]
    assert not (virt["is_vm"] and virt["is_container"])
    assert (virt["type"] == "none") == (not virt["is_vm"] and not virt["is_container"])
    assert virt["source"] in ("systemd-detect-virt", "probe")
    assert isinstance(facts["memory_mb"], int) and facts["memory_mb"] > 0
    for disk in facts["disks"]:
        assert disk["type"] in DISK_TYPES
        assert disk["size_gb"] is None or disk["size_gb"] > 0
        assert isinstance(disk["removable"], bool)
    assert isinstance(facts["battery"], bool)
    profile = facts["profile"]
    assert profile["kind"] in PROFILE_KINDS and profile["suggested_kind"] in PROFILE_KINDS
    assert profile["cpu_governor"] in ("performance", "powersave", "schedutil", None)
    assert profile["microcode"] in ("amd", "intel", None)
    assert profile["zram_percent"] in (0, 25, 50)
    assert all(isinstance(p, str) and "=" in p for p in profile["kernel_params"])
    assert isinstance(profile["thermald"], bool)


# The six fleet hosts ---------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_fixture_trees_hold_what_the_probe_reads(host):
    root = fixture_root(host)
    with open(os.path.join(root, "proc", "cpuinfo")) as f:
        assert sum(1 for line in f if line.startswith("processor")) >= 2
    for relative in (
        "proc/meminfo",
        "sys/class/dmi/id/chassis_type",
        "sys/class/dmi/id/sys_vendor",
        "sys/class/dmi/id/product_name",
        "detect-virt",
    ):
        assert os.path.isfile(os.path.join(root, relative)), relative
    for name in os.listdir(os.path.join(root, "sys", "block")):
        for relative in ("size", "removable", "queue/rotational"):
            assert os.path.isfile(os.path.join(root, "sys", "block", name, relative))


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(
    "key", ["cpu", "gpus", "chassis", "virtualization", "memory_mb", "disks", "battery", "profile"]
)
def test_fleet_host(host, key):
    assert probe_host(host)[key] == EXPECTED[host][key]


@pytest.mark.parametrize("host", HOSTS)
def test_fleet_host_facts_are_well_formed_and_complete(host):
    facts = probe_host(host)
    assert_well_formed(facts)
    assert facts == EXPECTED[host]


@pytest.mark.parametrize("host", HOSTS)
def test_single_probes_agree_with_probe(host):
    root = fixture_root(host)
    facts = probe_host(host)
    virt = virtualization_facts(root, captured_detect_virt(host))
    assert cpu_facts(root) == facts["cpu"]
    assert gpus(root) == facts["gpus"]
    assert virt == facts["virtualization"]
    assert chassis_facts(root, virt) == facts["chassis"]
    assert memory_mb(root) == facts["memory_mb"]
    assert disks(root) == facts["disks"]
    assert has_battery(root) == facts["battery"]
    without_profile = {k: v for k, v in facts.items() if k != "profile"}
    assert suggest_profile(without_profile) == facts["profile"]


@pytest.mark.parametrize(
    ("host", "vendor_ids"),
    [
        ("p620", ["1002"]),
        ("razer", ["8086", "10de"]),
        ("p510", ["10de", "10de"]),
        ("dex5550", ["8086"]),
        ("samsung", ["8086"]),
        ("nixvm", []),
    ],
)
def test_gpus_by_pci_vendor_id(host, vendor_ids):
    assert [gpu["pci_id"].split(":")[0] for gpu in gpus(fixture_root(host))] == vendor_ids


# Kind override from the inventory --------------------------------------------


def test_p510_as_a_server_by_inventory():
    profile = probe_host("p510", kind="server")["profile"]
    assert profile == {
        "name": "intel-server-gpu-nvidia",
        "kind": "server",
        "suggested_kind": "workstation",
        "kernel_params": ["intel_pstate=active", "nvidia-drm.modeset=1"],
        "cpu_governor": "performance",
        "microcode": "intel",
        "gpu_drivers": ["nvidia"],
        "zram_percent": 25,
        "thermald": True,
    }


def test_headless_dex5550_as_a_server_by_inventory():
    profile = probe_host("dex5550", kind="server")["profile"]
    assert profile["name"] == "intel-server-gpu-intel"
    assert profile["kernel_params"] == ["intel_pstate=active"]
    assert profile["thermald"] is True


def test_kind_override_changes_the_amd_rules():
    profile = probe_host("p620", kind="laptop")["profile"]
    assert profile["kernel_params"] == ["amd_pstate=active", "amdgpu.gpu_recovery=1"]
    assert (profile["cpu_governor"], profile["zram_percent"], profile["thermald"]) == ("powersave", 50, False)


def test_kind_override_is_ignored_in_guests():
    assert probe_host("nixvm", kind="server")["profile"] == EXPECTED["nixvm"]["profile"]


def test_kind_vm_from_inventory_on_metal_turns_tuning_off():
    profile = probe_host("dex5550", kind="vm")["profile"]
    assert profile == {**EXPECTED["nixvm"]["profile"], "suggested_kind": "workstation", "gpu_drivers": ["modesetting"]}


@pytest.mark.parametrize("kind", ["desktop", "container", ""])
def test_kind_override_must_be_a_profile_kind(kind):
    with pytest.raises(ValueError, match="kind must be one of"):
        probe_host("p620", kind=kind)


# Missing, unreadable and odd data --------------------------------------------


def test_missing_dmi_gives_unknown_chassis_and_a_workstation(tree):
    root = tree("p620")
    shutil.rmtree(os.path.join(root, "sys", "class", "dmi"))
    facts = probe(root, detect_virt="none")
    assert facts["chassis"] == {"kind": "unknown", "dmi_type": None, "vendor": None, "product": None}
    assert facts["profile"]["kind"] == "workstation"
    assert facts["profile"]["name"] == "amd-workstation-gpu-amd"


def test_missing_dmi_with_a_battery_is_a_laptop(tree):
    root = tree("samsung")
    shutil.rmtree(os.path.join(root, "sys", "class", "dmi"))
    facts = probe(root, detect_virt="none")
    assert facts["chassis"]["kind"] == "unknown"
    assert facts["profile"] == EXPECTED["samsung"]["profile"]


def test_unreadable_and_placeholder_dmi(tree):
    root = tree("dex5550")
    make_unreadable(root, "sys/class/dmi/id/chassis_type")
    write(root, "sys/class/dmi/id/sys_vendor", "To Be Filled By O.E.M.\n")
    with open(os.path.join(root, "sys/class/dmi/id/product_name"), "wb") as f:
        f.write(b"\xff\xfe garbled\n")  # not UTF-8
    chassis = chassis_facts(root)
    assert chassis["dmi_type"] is None
    assert chassis["kind"] == "unknown"
    assert chassis["vendor"] is None
    assert chassis["product"] == "\ufffd\ufffd garbled"


def test_garbled_chassis_type(tree):
    root = tree("dex5550")
    write(root, "sys/class/dmi/id/chassis_type", "Desktop\n")
    assert chassis_facts(root)["dmi_type"] is None


@pytest.mark.parametrize(
    ("code", "kind"),
    [(code, "laptop") for code in sorted(LAPTOP_CHASSIS)]
    + [(code, "desktop") for code in sorted(DESKTOP_CHASSIS)]
    + [(code, "server") for code in sorted(SERVER_CHASSIS)]
    + [(None, "unknown"), (1, "unknown"), (2, "unknown"), (30, "unknown"), (99, "unknown")],
)
def test_chassis_kind_from_dmi_code(code, kind):
    assert chassis_kind(code) == kind
    assert chassis_kind(code, {"is_vm": False, "is_container": False}) == kind


def test_chassis_kind_of_guests_ignores_dmi():
    assert chassis_kind(10, {"is_vm": True, "is_container": False}) == "vm"
    assert chassis_kind(3, {"is_vm": False, "is_container": True}) == "container"


def test_rack_server_chassis():
    facts = {
        "cpu": {"vendor": "amd", "flags_virtualization": "svm"},
        "gpus": [{"vendor": "other", "pci_id": "1a03:2000", "slot": "0000:c1:00.0", "class": "0x030000"}],
        "chassis": {"kind": "server"},
        "virtualization": METAL,
        "battery": False,
    }
    profile = suggest_profile(facts)
    # The BMC's ASPEED VGA is reported as a GPU but needs no driver or name tag.
    assert profile["name"] == "amd-server"
    assert profile["kernel_params"] == ["amd_pstate=active", "amd_iommu=on"]
    assert (profile["cpu_governor"], profile["zram_percent"], profile["gpu_drivers"]) == ("performance", 25, [])


def test_no_pci_bus(tree):
    root = tree("p620")
    shutil.rmtree(os.path.join(root, "sys", "bus", "pci"))
    facts = probe(root, detect_virt="none")
    assert facts["gpus"] == []
    assert facts["profile"]["name"] == "amd-workstation"
    assert facts["profile"]["kernel_params"] == ["amd_pstate=active", "amd_iommu=on"]
    assert facts["profile"]["gpu_drivers"] == []


def test_unreadable_or_garbled_pci_devices_are_skipped(tree):
    root = tree("razer")
    make_unreadable(root, "sys/bus/pci/devices/0000:01:00.0/class")
    write(root, "sys/bus/pci/devices/0000:00:02.0/vendor", "intel\n")
    write(root, "sys/bus/pci/devices/0000:aa:00.0/class", "0x030000\n")  # no vendor/device files
    write(root, "sys/bus/pci/devices/0000:bb:00.0/class", "not hex\n")
    assert gpus(root) == []


def test_unknown_gpu_vendor_is_other(tree):
    root = tree("nixvm")
    write(root, "sys/bus/pci/devices/0000:00:01.0/vendor", "0x1234\n")
    write(root, "sys/bus/pci/devices/0000:00:01.0/device", "0x1111\n")
    write(root, "sys/bus/pci/devices/0000:00:01.0/class", "0x030000\n")
    assert gpus(root) == [{"vendor": "other", "pci_id": "1234:1111", "slot": "0000:00:01.0", "class": "0x030000"}]


def test_vm_with_a_passed_through_gpu_gets_the_driver_but_no_params(tree):
    root = tree("nixvm")
    write(root, "sys/bus/pci/devices/0000:06:00.0/vendor", "0x10de\n")
    write(root, "sys/bus/pci/devices/0000:06:00.0/device", "0x2204\n")
    write(root, "sys/bus/pci/devices/0000:06:00.0/class", "0x030000\n")
    profile = probe(root, detect_virt="kvm")["profile"]
    assert profile["gpu_drivers"] == ["nvidia"]
    assert profile["kernel_params"] == []


def test_missing_cpuinfo_is_an_error(tree):
    root = tree("p620")
    os.remove(os.path.join(root, "proc", "cpuinfo"))
    with pytest.raises(HardwareProbeError, match="cpuinfo"):
        probe(root, detect_virt="none")


def test_unreadable_cpuinfo_is_an_error(tree):
    root = tree("p620")
    make_unreadable(root, "proc/cpuinfo")
    with pytest.raises(HardwareProbeError, match="cannot read"):
        cpu_facts(root)


def test_cpuinfo_without_processors_is_an_error(tree):
    root = tree("p620")
    write(root, "proc/cpuinfo", "garbage\n\n")
    with pytest.raises(HardwareProbeError, match="lists no processor"):
        cpu_facts(root)


def test_missing_meminfo_is_an_error(tree):
    root = tree("razer")
    os.remove(os.path.join(root, "proc", "meminfo"))
    with pytest.raises(HardwareProbeError, match="meminfo"):
        probe(root, detect_virt="none")


def test_meminfo_without_memtotal_is_an_error(tree):
    root = tree("razer")
    write(root, "proc/meminfo", "MemFree:  1024 kB\n")
    with pytest.raises(HardwareProbeError, match="MemTotal"):
        memory_mb(root)


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(HardwareProbeError, match="not a directory"):
        probe(str(tmp_path / "missing"))
    with pytest.raises(HardwareProbeError, match="cannot read"):
        probe(str(tmp_path))


def test_block_devices_that_are_not_disks(tree):
    root = tree("nixvm")
    for name in ("loop3", "ram0", "zram1", "dm-2", "md0", "sr1", "fd0", "mmcblk0boot0", "mmcblk0rpmb"):
        write(root, f"sys/block/{name}/size", "2048\n")
    write(root, "sys/block/nvme0c0n1/size", "2048\n")
    write(root, "sys/block/nvme0c0n1/hidden", "1\n")
    write(root, "sys/block/sdx/size", "0\n")
    assert [disk["name"] for disk in disks(root)] == ["vda"]


def test_emulated_and_unreadable_disks(tree):
    root = tree("p510")
    write(root, "sys/block/sdd/size", "67108864\n")
    write(root, "sys/block/sdd/queue/rotational", "1\n")
    write(root, "sys/block/sdd/device/vendor", "QEMU    \n")
    write(root, "sys/block/xvda/size", "67108864\n")
    make_unreadable(root, "sys/block/sdc/size")
    found = {disk["name"]: disk for disk in disks(root)}
    assert found["sdd"]["type"] == "virtual"
    assert found["xvda"] == {"name": "xvda", "type": "virtual", "size_gb": 34.4, "removable": False}
    assert found["sdc"] == {"name": "sdc", "type": "ssd", "size_gb": None, "removable": False}


def test_no_block_devices(tree):
    root = tree("dex5550")
    shutil.rmtree(os.path.join(root, "sys", "block"))
    assert disks(root) == []


@pytest.mark.parametrize(
    ("supplies", "expected"),
    [
        ({}, False),
        ({"AC": {"type": "Mains"}}, False),
        ({"hidpp_battery_0": {"type": "Battery", "scope": "Device"}}, False),
        ({"BAT0": {"type": "Battery"}}, True),
        ({"BAT1": {"type": "Battery", "scope": "System"}}, True),
        ({"ucsi-source-psy-USBC000:001": {"type": "USB"}, "CMB0": {"type": "Battery"}}, True),
    ],
)
def test_battery(tmp_path, supplies, expected):
    root = str(tmp_path)
    for name, attrs in supplies.items():
        for attr, value in attrs.items():
            write(root, f"sys/class/power_supply/{name}/{attr}", value + "\n")
    assert has_battery(root) is expected


def test_unreadable_battery_type_is_no_battery(tree):
    root = tree("samsung")
    make_unreadable(root, "sys/class/power_supply/BAT1/type")
    assert has_battery(root) is False


# CPU topology ----------------------------------------------------------------


def test_arm_cpuinfo(tree):
    root = tree("samsung")
    shutil.rmtree(os.path.join(root, "sys", "class", "dmi"))
    shutil.rmtree(os.path.join(root, "sys", "bus"))
    blocks = "".join(
        f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
        f"CPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n"
        for n in range(4)
    )
    write(root, "proc/cpuinfo", blocks + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    facts = probe(root, detect_virt="none")
    assert facts["cpu"] == {
        "vendor": "other",
        "model": "Raspberry Pi 4 Model B Rev 1.4",
        "sockets": 1,
        "cores": 4,
        "threads": 4,
        "flags_virtualization": None,
    }
    profile = facts["profile"]
    assert (profile["name"], profile["kind"]) == ("other-laptop", "laptop")
    assert (profile["cpu_governor"], profile["microcode"], profile["kernel_params"]) == ("schedutil", None, [])


def cpu_facts_from_text(tmp_path, text):
    write(str(tmp_path), "proc/cpuinfo", text)
    return cpu_facts(str(tmp_path))


def test_two_sockets(tmp_path):
    text = "".join(
        f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\nphysical id\t: {n // 4}\n"
        f"core id\t\t: {n % 2}\nflags\t\t: fpu vmx\n\n"
        for n in range(8)
    )
    blocks = parse_cpuinfo(text)
    assert len(blocks) == 8
    root_cpu = cpu_facts_from_text(tmp_path, text)
    assert (root_cpu["sockets"], root_cpu["cores"], root_cpu["threads"]) == (2, 4, 8)


def test_cpuinfo_blocks_without_blank_lines(tmp_path):
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n"
    assert [block["processor"] for block in parse_cpuinfo(text)] == ["0", "1"]
    assert cpu_facts_from_text(tmp_path, text)["vendor"] == "amd"


# Virtualization and containers -----------------------------------------------


@pytest.mark.parametrize(
    ("output", "vm", "container"),
    [
        ("none\n", False, False),
        ("kvm\n", True, False),
        ("qemu\n", True, False),
        ("microsoft\n", True, False),
        ("vm-other\n", True, False),
        ("podman\n", False, True),
        ("docker\n", False, True),
        ("lxc\n", False, True),
        ("systemd-nspawn\n", False, True),
        ("wsl\n", False, True),
        ("container-other\n", False, True),
    ],
)
def test_detect_virt_output(output, vm, container):
    virt = virtualization_facts(fixture_root("dex5550"), output)
    assert virt == {"type": output.strip(), "is_vm": vm, "is_container": container, "source": "systemd-detect-virt"}


@pytest.mark.parametrize("output", [None, "", "\n", "Failed to check for virtualization: Permission denied\n"])
def test_unusable_detect_virt_output_falls_back_to_probing(output):
    virt = virtualization_facts(fixture_root("dex5550"), output)
    assert virt == {"type": "none", "is_vm": False, "is_container": False, "source": "probe"}


@pytest.mark.parametrize(
    ("marker", "content", "expected"),
    [
        ("run/.containerenv", 'engine="podman-4.9.3"\n', "podman"),
        (".dockerenv", "", "docker"),
        ("run/systemd/container", "lxc\n", "lxc"),
        ("run/systemd/container", "", "container-other"),
    ],
)
def test_container_markers_without_detect_virt(tree, marker, content, expected):
    root = tree("p620")
    write(root, marker, content)
    facts = probe(root, detect_virt=None)
    assert facts["virtualization"] == {"type": expected, "is_vm": False, "is_container": True, "source": "probe"}
    assert facts["chassis"]["kind"] == "container"
    # The container sees the host's CPU, GPU and DMI, but none of it is its to tune.
    assert facts["gpus"] == EXPECTED["p620"]["gpus"]
    assert facts["profile"] == {
        "name": "container",
        "kind": "vm",
        "suggested_kind": "vm",
        "kernel_params": [],
        "cpu_governor": None,
        "microcode": None,
        "gpu_drivers": [],
        "zram_percent": 0,
        "thermald": False,
    }


def test_detect_virt_wins_over_markers(tree):
    root = tree("p620")
    write(root, ".dockerenv", "")
    assert virtualization_facts(root, "podman\n")["type"] == "podman"


def test_vm_without_detect_virt_is_found_by_the_hypervisor_flag():
    facts = probe(fixture_root("nixvm"), detect_virt=None)
    assert facts["virtualization"] == {"type": "qemu", "is_vm": True, "is_container": False, "source": "probe"}
    assert facts["profile"]["name"] == "vm"


def test_vm_without_detect_virt_or_dmi_is_vm_other(tree):
    root = tree("nixvm")
    shutil.rmtree(os.path.join(root, "sys", "class", "dmi"))
    assert virtualization_facts(root, None)["type"] == "vm-other"


# This machine ----------------------------------------------------------------


def test_probe_this_machine():
    """Probe the real root: whatever this host is, the facts are well formed."""
    detect_virt = None
    tool = shutil.which("systemd-detect-virt")
    if tool is not None:
        detect_virt = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
    facts = probe("/", detect_virt=detect_virt)
    assert_well_formed(facts)
    assert facts["chassis"]["kind"] in CHASSIS_KINDS
    assert facts["cpu"]["cores"] >= 1
    assert facts["memory_mb"] > 0
