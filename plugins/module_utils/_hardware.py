# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe the real hardware of a Linux host and suggest a tuning profile.

Used by the ``hardware_facts`` module. Everything here reads the kernel's
own view of the machine (``/proc``, ``/sys``) below a ``root`` directory, so
the same code runs on a host (``root="/"``) and in unit tests against
captured fixture trees. Nix files are never read: the configuration says
what a host should be, the kernel says what it is.

``systemd-detect-virt`` is the one outside tool involved. The caller runs it
and passes what it printed as ``detect_virt``; ``None`` means it could not be
run, and the probe falls back to container marker files and the CPU's
``hypervisor`` flag.

Reading rules: ``proc/cpuinfo`` and ``proc/meminfo`` must exist (without them
``root`` is not a Linux system and :class:`HardwareProbeError` is raised);
everything else (DMI, PCI, block devices, power supplies) is optional, and a
missing, unreadable or garbled file only makes that one value unknown
(``None``) or drops that one device.

The suggested profile is only a suggestion: its ``kind`` follows the chassis
(a tower server such as a Xeon in a DMI "Tower" case is suggested as a
workstation), and the inventory can override it with ``kind``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

# SMBIOS chassis types (DMI type 3, "Chassis Information").
LAPTOP_CHASSIS = frozenset((8, 9, 10, 14, 31, 32))
DESKTOP_CHASSIS = frozenset((3, 4, 5, 6, 7, 13, 15, 16, 24, 35, 36))
SERVER_CHASSIS = frozenset((17, 23, 25, 28, 29))

CHASSIS_KINDS = ("desktop", "laptop", "server", "vm", "container", "unknown")
PROFILE_KINDS = ("workstation", "laptop", "server", "vm")
# What the inventory may choose instead of the suggested kind (base_host_kind).
OVERRIDE_KINDS = PROFILE_KINDS
GPU_VENDORS = ("amd", "nvidia", "intel", "other")
DISK_TYPES = ("nvme", "ssd", "hdd", "virtual")

# What systemd-detect-virt prints for containers; anything else but "none" is a VM.
CONTAINER_TYPES = frozenset(
    (
        "openvz",
        "lxc",
        "lxc-libvirt",
        "systemd-nspawn",
        "docker",
        "podman",
        "rkt",
        "wsl",
        "proot",
        "pouch",
        "container-other",
    )
)

# PCI vendor ids. 0x1022 is AMD's id for CPU-side devices, 0x1002 (ATI) for GPUs.
PCI_VENDORS = {"1002": "amd", "1022": "amd", "10de": "nvidia", "8086": "intel"}
PCI_CLASS_DISPLAY = 0x03

_CPU_VENDORS = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}
# Driver names as NixOS's services.xserver.videoDrivers spells them.
_GPU_DRIVERS = {"amd": "amdgpu", "nvidia": "nvidia", "intel": "modesetting"}

# Block devices that are not disks: loop, RAM disks, zram, device-mapper, md RAID,
# optical drives, floppies, and the boot/RPMB partitions of eMMC chips.
_NOT_A_DISK = re.compile(r"^(loop|ram|zram|dm-|md|sr|fd)|^mmcblk\d+(boot\d+|rpmb)$")
# SCSI vendor strings of emulated disks (virtio-scsi, VMware, VirtualBox, Hyper-V).
_VIRTUAL_DISK_VENDORS = ("QEMU", "VMware", "VBOX", "Msft")
# sys_vendor prefixes of hypervisors, used only when systemd-detect-virt is missing
# and the CPU reports the "hypervisor" flag. Names as systemd-detect-virt prints them.
_DMI_HYPERVISORS = (
    ("QEMU", "qemu"),
    ("VMware", "vmware"),
    ("innotek", "oracle"),
    ("Xen", "xen"),
    ("Microsoft Corporation", "microsoft"),
    ("Amazon EC2", "amazon"),
    ("Google", "google"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
)
# Strings firmware writers leave in DMI fields instead of a real value.
_DMI_PLACEHOLDERS = frozenset(
    (
        "",
        "default string",
        "not applicable",
        "not specified",
        "none",
        "o.e.m.",
        "system manufacturer",
        "system product name",
        "to be filled by o.e.m.",
    )
)
_DETECT_VIRT_WORD = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MEMTOTAL = re.compile(r"^MemTotal:\s+(\d+)\s*kB\s*$", re.MULTILINE)


class HardwareProbeError(Exception):
    """Raised when ``root`` does not look like a running Linux system."""


def _path(root, *parts):
    return os.path.join(root, *parts)


def _read(path):
    """The stripped text of ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    return data.decode("utf-8", "replace").strip()


def _read_int(path, base=10):
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _required(root, relative):
    text = _read(_path(root, relative))
    if text is None:
        raise HardwareProbeError(f"cannot read {_path(root, relative)}: is {root!r} the root of a Linux system?")
    return text


def parse_cpuinfo(text):
    """Split /proc/cpuinfo into one dict per block (``processor`` entries and
    trailing machine-wide blocks as on ARM)."""
    blocks = []
    current = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            if current:
                blocks.append(current)
                current = {}
            continue
        if key == "processor" and "processor" in current:
            blocks.append(current)
            current = {}
        current[key] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _cpu_from_blocks(blocks, source):
    processors = [block for block in blocks if "processor" in block]
    if not processors:
        raise HardwareProbeError(f"{source} lists no processor")
    first = processors[0]
    machine = {}
    for block in blocks:
        for key, value in block.items():
            machine.setdefault(key, value)
    flags = set((first.get("flags") or first.get("Features") or "").split())

    model = None
    for key in ("model name", "Model", "Hardware", "cpu model", "cpu"):
        if machine.get(key):
            model = machine[key]
            break

    threads = len(processors)
    packages = {block["physical id"] for block in processors if "physical id" in block}
    cores = {(block.get("physical id", "0"), block["core id"]) for block in processors if "core id" in block}
    if "svm" in flags:
        virtualization = "svm"
    elif "vmx" in flags:
        virtualization = "vmx"
    else:
        virtualization = None
    cpu = {
        "vendor": _CPU_VENDORS.get(first.get("vendor_id", ""), "other"),
        "model": model,
        "sockets": len(packages) or 1,
        # Without topology fields (ARM, some hypervisors) every thread counts as a core.
        "cores": len(cores) or threads,
        "threads": threads,
        "flags_virtualization": virtualization,
    }
    return cpu, flags


def _cpu_and_flags(root):
    relative = os.path.join("proc", "cpuinfo")
    return _cpu_from_blocks(parse_cpuinfo(_required(root, relative)), _path(root, relative))


def cpu_facts(root="/"):
    """Vendor (amd|intel|other), model, sockets, physical cores, threads and the
    hardware virtualization flag (svm|vmx|None) from proc/cpuinfo."""
    return _cpu_and_flags(root)[0]


def memory_mb(root="/"):
    """MemTotal from proc/meminfo in MiB (what the kernel can use, a little
    less than the installed RAM)."""
    relative = os.path.join("proc", "meminfo")
    match = _MEMTOTAL.search(_required(root, relative))
    if match is None:
        raise HardwareProbeError(f"no MemTotal line in {_path(root, relative)}")
    return int(match.group(1)) // 1024


def _dmi_string(root, name):
    text = _read(_path(root, "sys", "class", "dmi", "id", name))
    if text is None or text.lower() in _DMI_PLACEHOLDERS:
        return None
    return text


def dmi_facts(root="/"):
    """DMI chassis type code (int or None), system vendor and product name."""
    return {
        "dmi_type": _read_int(_path(root, "sys", "class", "dmi", "id", "chassis_type")),
        "vendor": _dmi_string(root, "sys_vendor"),
        "product": _dmi_string(root, "product_name"),
    }


def _detect_virt_word(output):
    if output is None:
        return None
    for line in output.splitlines():
        word = line.strip().lower()
        if word:
            return word if _DETECT_VIRT_WORD.match(word) else None
    return None


def _fallback_virt(root, cpu_flags, dmi_vendor):
    if os.path.exists(_path(root, "run", ".containerenv")):
        return "podman"
    if os.path.exists(_path(root, ".dockerenv")):
        return "docker"
    # systemd (and most container managers) write the manager's name here.
    marker = _path(root, "run", "systemd", "container")
    if os.path.exists(marker):
        return _detect_virt_word(_read(marker)) or "container-other"
    if "hypervisor" in cpu_flags:
        for prefix, name in _DMI_HYPERVISORS:
            if dmi_vendor and dmi_vendor.startswith(prefix):
                return name
        return "vm-other"
    return "none"


def virtualization_facts(root="/", detect_virt=None):
    """What the host runs in: ``type`` as systemd-detect-virt names it (none,
    kvm, qemu, docker, podman, lxc, ...), ``is_vm``, ``is_container`` and
    ``source`` (systemd-detect-virt or probe).

    ``detect_virt`` is what systemd-detect-virt printed, or None when it could
    not be run; then container marker files under ``root`` and the CPU's
    hypervisor flag decide."""
    word = _detect_virt_word(detect_virt)
    source = "systemd-detect-virt"
    if word is None:
        source = "probe"
        _cpu, flags = _cpu_and_flags(root)
        word = _fallback_virt(root, flags, _dmi_string(root, "sys_vendor"))
    is_container = word in CONTAINER_TYPES
    return {
        "type": word,
        "is_vm": word != "none" and not is_container,
        "is_container": is_container,
        "source": source,
    }


def chassis_kind(dmi_type, virtualization=None):
    """desktop|laptop|server|vm|container|unknown. In a guest the DMI data is the
    hypervisor's (VM) or the host's (container), so the guest kind wins."""
    if virtualization:
        if virtualization.get("is_container"):
            return "container"
        if virtualization.get("is_vm"):
            return "vm"
    if dmi_type in LAPTOP_CHASSIS:
        return "laptop"
    if dmi_type in DESKTOP_CHASSIS:
        return "desktop"
    if dmi_type in SERVER_CHASSIS:
        return "server"
    return "unknown"


def chassis_facts(root="/", virtualization=None):
    """The chassis kind plus the DMI type code, vendor and product it came from."""
    facts = dmi_facts(root)
    facts["kind"] = chassis_kind(facts["dmi_type"], virtualization)
    return facts


def _pci_id(text):
    """``0x1002`` -> ``1002``; None for anything that is not a 16-bit hex id."""
    if text is None or not re.match(r"^0x[0-9a-fA-F]{4}$", text):
        return None
    return text[2:].lower()


def gpus(root="/"):
    """Display controllers (PCI class 0x03xxxx) sorted by slot: vendor
    (amd|nvidia|intel|other), pci_id (``1002:744c``), slot and class."""
    base = _path(root, "sys", "bus", "pci", "devices")
    found = []
    for slot in _listdir(base):
        device_class = _read_int(_path(base, slot, "class"), 16)
        if device_class is None or device_class >> 16 != PCI_CLASS_DISPLAY:
            continue
        vendor = _pci_id(_read(_path(base, slot, "vendor")))
        device = _pci_id(_read(_path(base, slot, "device")))
        if vendor is None or device is None:
            continue
        found.append(
            {
                "vendor": PCI_VENDORS.get(vendor, "other"),
                "pci_id": f"{vendor}:{device}",
                "slot": slot,
                "class": f"0x{device_class:06x}",
            }
        )
    return found


def _disk_type(base, name):
    if name.startswith("nvme"):
        return "nvme"
    if name.startswith(("vd", "xvd")):
        return "virtual"
    scsi_vendor = _read(_path(base, name, "device", "vendor"))
    if scsi_vendor and scsi_vendor.startswith(_VIRTUAL_DISK_VENDORS):
        return "virtual"
    if _read(_path(base, name, "queue", "rotational")) == "1":
        return "hdd"
    return "ssd"


def disks(root="/"):
    """Whole disks from sys/block: name, type (nvme|ssd|hdd|virtual), size_gb
    (decimal GB, as disks are labelled; None when unreadable) and removable.
    Loop, RAM, zram, device-mapper, md, optical and floppy devices, hidden
    NVMe multipath paths and empty drives (card readers without a card) are
    skipped."""
    base = _path(root, "sys", "block")
    found = []
    for name in _listdir(base):
        if _NOT_A_DISK.match(name) or _read(_path(base, name, "hidden")) == "1":
            continue
        sectors = _read_int(_path(base, name, "size"))
        if sectors == 0:
            continue
        found.append(
            {
                "name": name,
                "type": _disk_type(base, name),
                # sys/block/*/size counts 512-byte sectors whatever the disk's sector size.
                "size_gb": None if sectors is None else round(sectors * 512 / 1000**3, 1),
                "removable": _read(_path(base, name, "removable")) == "1",
            }
        )
    return found


def has_battery(root="/"):
    """True when a system battery is present. Batteries of peripherals (mice,
    keyboards: ``scope`` is ``Device``) do not count."""
    base = _path(root, "sys", "class", "power_supply")
    for name in _listdir(base):
        if _read(_path(base, name, "type")) != "Battery":
            continue
        if (_read(_path(base, name, "scope")) or "").lower() == "device":
            continue
        return True
    return False


def _gpu_vendor_names(found):
    """Known GPU vendors, each once, in a fixed order: amd, nvidia, intel."""
    present = {gpu["vendor"] for gpu in found}
    return [vendor for vendor in ("amd", "nvidia", "intel") if vendor in present]


def suggested_kind(facts):
    """workstation|laptop|server|vm from the chassis. A chassis DMI does not
    classify (or no DMI at all) is a laptop when it has a battery, else a
    workstation. Only a suggestion: the inventory knows a host's role."""
    virtualization = facts["virtualization"]
    if virtualization["is_vm"] or virtualization["is_container"]:
        return "vm"
    kind = facts["chassis"]["kind"]
    if kind == "laptop":
        return "laptop"
    if kind == "server":
        return "server"
    if kind == "unknown" and facts["battery"]:
        return "laptop"
    return "workstation"


def _guest_profile(facts, suggested="vm"):
    virtualization = facts["virtualization"]
    if virtualization["is_container"]:
        # A container shares the host's kernel: nothing here is its to tune.
        return {
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
    # A VM: the host owns CPU frequency, microcode and memory; only a
    # passed-through GPU still needs its driver in the guest.
    return {
        "name": "vm",
        "kind": "vm",
        "suggested_kind": suggested,
        "kernel_params": [],
        "cpu_governor": None,
        "microcode": None,
        "gpu_drivers": [_GPU_DRIVERS[vendor] for vendor in _gpu_vendor_names(facts["gpus"])],
        "zram_percent": 0,
        "thermald": False,
    }


def suggest_profile(facts, kind=None):
    """A tuning profile for ``facts`` (what :func:`probe` returns without
    ``profile``). ``kind`` (workstation|laptop|server|vm, as the inventory's
    base_host_kind) overrides the suggested kind on bare metal, where ``vm``
    gives the vm profile (no hardware tuning); guests always get the vm
    profile, whatever ``kind`` says.

    Choices:

    - kernel params: AMD CPU ``amd_pstate=active`` (+ ``amd_iommu=on`` with
      svm on workstations and servers); Intel CPU ``intel_pstate=active``;
      AMD GPU ``amdgpu.gpu_recovery=1``; Intel iGPU on laptops
      ``i915.enable_guc=2``; NVIDIA GPU ``nvidia-drm.modeset=1``. None in guests.
    - governor: ``performance`` on workstations and servers, ``powersave`` on
      laptops. With amd_pstate/intel_pstate in active mode the only governors
      are performance and powersave, and powersave is the dynamic, EPP-driven
      one (not a fixed lowest clock). Laptops with other CPUs get
      ``schedutil``. None in guests (the host owns CPU frequency).
    - zram: 25 % on workstations and servers (as the inventory's group
      defaults), 50 % on laptops (small RAM, no swap partition), 0 in guests
      (the host owns memory).
    - thermald: Intel CPUs on laptops and servers (thermald supports Intel only).
    """
    if kind is not None and kind not in OVERRIDE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(OVERRIDE_KINDS)}, got {kind!r}")
    if facts["virtualization"]["is_vm"] or facts["virtualization"]["is_container"]:
        return _guest_profile(facts)
    suggested = suggested_kind(facts)
    if kind == "vm":
        # The inventory knows better (e.g. a guest systemd-detect-virt cannot see).
        return _guest_profile(facts, suggested)
    chosen = kind or suggested
    cpu = facts["cpu"]
    gpu_vendors = _gpu_vendor_names(facts["gpus"])

    params = []
    if cpu["vendor"] == "amd":
        params.append("amd_pstate=active")
        if cpu["flags_virtualization"] == "svm" and chosen in ("workstation", "server"):
            params.append("amd_iommu=on")
    elif cpu["vendor"] == "intel":
        params.append("intel_pstate=active")
    if "amd" in gpu_vendors:
        params.append("amdgpu.gpu_recovery=1")
    if "intel" in gpu_vendors and chosen == "laptop":
        params.append("i915.enable_guc=2")
    if "nvidia" in gpu_vendors:
        params.append("nvidia-drm.modeset=1")

    if chosen == "laptop":
        governor = "powersave" if cpu["vendor"] in ("amd", "intel") else "schedutil"
    else:
        governor = "performance"

    name = f"{cpu['vendor']}-{chosen}"
    if gpu_vendors:
        name += "-gpu-" + "-".join(gpu_vendors)
    return {
        "name": name,
        "kind": chosen,
        "suggested_kind": suggested,
        "kernel_params": params,
        "cpu_governor": governor,
        "microcode": cpu["vendor"] if cpu["vendor"] in ("amd", "intel") else None,
        "gpu_drivers": [_GPU_DRIVERS[vendor] for vendor in gpu_vendors],
        "zram_percent": 50 if chosen == "laptop" else 25,
        "thermald": cpu["vendor"] == "intel" and chosen in ("laptop", "server"),
    }


def probe(root="/", detect_virt=None, kind=None):
    """Everything the ``hardware_facts`` module returns as ``homelab_hardware``.

    ``root`` is the directory holding ``proc`` and ``sys`` (``/`` on a host);
    ``detect_virt`` what systemd-detect-virt printed (None: not available);
    ``kind`` an optional profile kind override from the inventory."""
    if not os.path.isdir(root):
        raise HardwareProbeError(f"{root!r} is not a directory")
    virtualization = virtualization_facts(root, detect_virt)
    facts = {
        "cpu": cpu_facts(root),
        "gpus": gpus(root),
        "chassis": chassis_facts(root, virtualization),
        "virtualization": virtualization,
        "memory_mb": memory_mb(root),
        "disks": disks(root),
        "battery": has_battery(root),
    }
    facts["profile"] = suggest_profile(facts, kind=kind)
    return facts
