"""The local six-host lab: Debian containers named after the fleet.

    scripts/lab.py up       build the image if needed, start the six hosts,
                            write the inventory overlay inventory/lab/
    scripts/lab.py down     remove the containers, the network, the overlay
    scripts/lab.py overlay  write inventory/lab only (the addresses are fixed)
    scripts/lab.py status   one line per host
    scripts/lab.py stop H   stop one host (fault tests)
    scripts/lab.py destroy H  remove one host's container (disaster-recovery drills)

The image is built with debootstrap + `podman import` (no registry here) and
kept in podman's storage under a tag derived from its recipe, so later runs
(and later clones) skip the build. Containers run systemd as PID 1 under
runc with lowered ulimits and only NET_ADMIN: never --privileged, which would
let a container write the test machine's kernel.* sysctls.

Ansible reaches the hosts over real SSH as `admin` with the lab's own key;
inventory/lab/ is a complete inventory directory: links to the real
inventory, group_vars and host_vars, plus an overlay with addresses and
credentials, so every group and host variable of the fleet still applies.
"""

import argparse
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")
PREFIX = "homelab-lab-"
LABEL = "homelab.nixos.lab=1"
NETWORK = "homelab-lab"
SUBNET = "10.89.60.0/24"
ADDRESSES = {host: "10.89.60.%d" % (11 + i) for i, host in enumerate(HOSTS)}
SUITE = "bookworm"
MIRROR = os.environ.get("HOMELAB_LAB_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "iputils-ping",
    "nftables",
    "procps",
    "ca-certificates",
    "curl",
    "gnupg",
    "less",
)
LAB_USER = "admin"
STATE = os.path.join(ROOT, ".cache", "lab")
KEY = os.path.join(STATE, "id_ed25519")
KNOWN_HOSTS = os.path.join(STATE, "known_hosts")
# The lab's agenix secrets: random values, encrypted to the lab key only; the
# secrets role re-encrypts them to the hosts that need them.
SECRETS_DIR = os.path.join(STATE, "secrets")
LAB_SECRETS = {
    "lab-canary": {"hosts": ["all"]},
    "lab-monitoring": {"hosts": ["monitoring_server"], "group": "adm", "mode": "0440"},
    "lab-backup": {"hosts": ["all"]},
}
OVERLAY = os.path.join(ROOT, "inventory", "lab")
RUN_OPTIONS = (
    "--systemd=always",
    "--runtime=runc",  # crun fails here: cgroups in hybrid mode
    "--ulimit=nofile=1024:1024",  # runc refuses the default limits here
    "--ulimit=nproc=1000:1000",
    "--cap-add=NET_ADMIN",  # nftables and namespaced net.* sysctls
    "--security-opt=unmask=ALL",
    "--tmpfs=/tmp",
)

# Everything that goes into the image; its hash names the image, so a change
# here builds a new one and an unchanged recipe reuses the cached image.
IMAGE_SETUP = r"""
set -eu
useradd -m -s /bin/bash -G sudo {user}
echo '{user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/lab-{user}
chmod 0440 /etc/sudoers.d/lab-{user}
# Every container makes its own host keys on first boot.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > /etc/systemd/system/ssh.service.d/10-lab-hostkeys.conf
systemctl enable ssh.service >/dev/null 2>&1 || true
# Nothing to do on a console nobody reads.
systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
  systemd-udevd-control.socket systemd-udevd-kernel.socket >/dev/null 2>&1 || true
printf 'deb {mirror} {suite} main\ndeb {mirror} {suite}-updates main\n' > /etc/apt/sources.list
# Keep fresh package lists, as on an installed host: roles refresh them only
# when they are older than a day.
apt-get update -qq
apt-get clean
: > /etc/machine-id
"""


class LabError(RuntimeError):
    pass


def log(msg):
    print("lab: " + msg, flush=True)


def run(args, check=True, capture=True, stdin=None, timeout=None):
    proc = subprocess.run(
        list(args),
        input=stdin,
        capture_output=capture,
        text=True,
        check=False,
        timeout=timeout,
        env=dict(os.environ, LC_ALL="C"),
    )
    if check and proc.returncode != 0:
        raise LabError("%s failed (rc=%d): %s" % (" ".join(args), proc.returncode, (proc.stderr or "").strip()))
    return proc


def podman(*args, **kw):
    return run(("podman", *args), **kw)


def image_tag():
    recipe = json.dumps([SUITE, MIRROR, PACKAGES, IMAGE_SETUP, LAB_USER], sort_keys=True)
    return "localhost/homelab-lab:%s-%s" % (SUITE, hashlib.sha256(recipe.encode()).hexdigest()[:12])


def ensure_image():
    tag = image_tag()
    if podman("image", "exists", tag, check=False).returncode == 0:
        log("image %s cached" % tag)
        return tag
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing: run scripts/setup-controller.sh --lab")
    log("building %s with debootstrap (about a minute)" % tag)
    work = tempfile.mkdtemp(prefix="homelab-lab-rootfs-", dir="/var/tmp")
    rootfs = os.path.join(work, "rootfs")
    try:
        started = time.monotonic()
        run(
            (
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(PACKAGES),
                SUITE,
                rootfs,
                MIRROR,
            ),
            timeout=1800,
        )
        script = IMAGE_SETUP.format(user=LAB_USER, mirror=MIRROR, suite=SUITE)
        run(("chroot", rootfs, "/bin/sh", "-c", script))
        tar = subprocess.Popen(("tar", "-C", rootfs, "-c", "."), stdout=subprocess.PIPE)
        imported = subprocess.run(
            (
                "podman",
                "import",
                "--change",
                "CMD=/sbin/init",
                "--change",
                "STOPSIGNAL=SIGRTMIN+3",
                "--change",
                "LABEL=" + LABEL,
                "-",
                tag,
            ),
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise LabError("podman import failed: %s" % imported.stderr.strip())
        log("image built in %.0f s" % (time.monotonic() - started))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Older lab images only take disk space.
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split():
        if line.startswith("localhost/homelab-lab:") and line != tag:
            podman("rmi", "-f", line, check=False)
    return tag


def ensure_network():
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        return
    podman("network", "create", "--subnet", SUBNET, "--label", LABEL, NETWORK)


def ensure_secrets():
    """Create each lab secret once, with a random value that never leaves age's pipes."""
    os.makedirs(SECRETS_DIR, mode=0o700, exist_ok=True)
    for name in LAB_SECRETS:
        path = os.path.join(SECRETS_DIR, name + ".age")
        if os.path.exists(path):
            continue
        value = (secrets.token_urlsafe(24) + "\n").encode()
        subprocess.run(
            ["age", "--encrypt", "--armor", "-R", KEY + ".pub", "-o", path], input=value, check=True, timeout=60
        )


def ensure_key():
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    if not os.path.exists(KEY):
        run(("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "homelab-lab", "-f", KEY))
    with open(KEY + ".pub") as f:
        return f.read()


def container(host):
    return PREFIX + host


def inspect(name):
    proc = podman("container", "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def remove_stale():
    """Lab-labelled containers that are not one of the six hosts (left by an
    earlier run; CI starts with whatever a session left). The six hosts
    themselves are checked one by one in start_host."""
    names = podman("ps", "-a", "--filter", "label=" + LABEL, "--format", "{{.Names}}", check=False).stdout.split()
    for name in names:
        if name not in {container(h) for h in HOSTS}:
            podman("rm", "-f", name, check=False)


def start_host(host, tag, pubkey):
    name = container(host)
    info = inspect(name)
    if info is not None:
        same_image = info.get("ImageName") == tag
        if info["State"]["Running"] and same_image:
            # Another checkout may have started it: its key and host key are
            # not ours. The lab is throwaway, so trust what runs now.
            authorize(host, pubkey)
            forget_host_key(host)
            return False
        if same_image and not info["State"]["Running"]:
            log("%s: restarting stopped container" % host)
            podman("start", name)
            authorize(host, pubkey)
            return True
        podman("rm", "-f", name)
    log("%s: starting container at %s" % (host, ADDRESSES[host]))
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        host,
        "--label",
        LABEL,
        "--network",
        NETWORK,
        "--ip",
        ADDRESSES[host],
        *RUN_OPTIONS,
        tag,
        "/sbin/init",
    )
    forget_host_key(host)
    authorize(host, pubkey)
    return True


# Appends the key from stdin to the user's authorized_keys once, with the
# ownership and modes sshd's StrictModes wants.
AUTHORIZE = r"""
set -eu
home=$(getent passwd "$1" | cut -d: -f6)
install -d -m 0700 -o "$1" -g "$1" "$home/.ssh"
key=$(cat)
touch "$home/.ssh/authorized_keys"
grep -qxF "$key" "$home/.ssh/authorized_keys" || printf '%s\n' "$key" >> "$home/.ssh/authorized_keys"
chown "$1:$1" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"
"""


def authorize(host, pubkey):
    for _attempt in range(50):
        args = ("exec", "-i", container(host), "sh", "-c", AUTHORIZE, "authorize", LAB_USER)
        proc = podman(*args, stdin=pubkey, check=False)
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise LabError("%s: could not install the lab key" % host)


def forget_host_key(host):
    if os.path.exists(KNOWN_HOSTS):
        run(("ssh-keygen", "-R", ADDRESSES[host], "-f", KNOWN_HOSTS), check=False)


def wait_for_ssh(hosts, timeout=90):
    deadline = time.monotonic() + timeout
    pending = set(hosts)
    while pending and time.monotonic() < deadline:
        for host in sorted(pending):
            try:
                with socket.create_connection((ADDRESSES[host], 22), timeout=2) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"SSH-"):
                        pending.discard(host)
            except OSError:
                pass
        if pending:
            time.sleep(0.5)
    if pending:
        raise LabError("no SSH banner within %ds from: %s" % (timeout, ", ".join(sorted(pending))))


def write_overlay():
    """inventory/lab/: the real inventory plus addresses and credentials."""
    os.makedirs(OVERLAY, exist_ok=True)
    links = {
        "00-fleet.yml": os.path.join("..", "hosts.yml"),
        "group_vars": os.path.join("..", "group_vars"),
        "host_vars": os.path.join("..", "host_vars"),
    }
    for name, target in links.items():
        path = os.path.join(OVERLAY, name)
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        if os.path.lexists(path):
            os.remove(path)
        os.symlink(target, path)
    ssh_args = "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes" % KNOWN_HOSTS
    hosts = {}
    for host in HOSTS:
        hosts[host] = {
            "ansible_host": ADDRESSES[host],
            "ansible_user": LAB_USER,
            "ansible_ssh_private_key_file": KEY,
            "ansible_ssh_common_args": ssh_args,
            # The lab hosts are Debian, not NixOS.
            "ansible_python_interpreter": "/usr/bin/python3",
            # Exercise the NixOS backend too: every host's modules are
            # rendered to build/nixos/<host>/ on the controller.
            "base_nixos_render": True,
            # Grafana's apt repository is out of reach here: write and check
            # the provisioning files only.
            "monitoring_server_grafana_install": False,
            # No Plex or Tautulli runs in the lab: probe only the server's own
            # services instead of the real fleet's media web interfaces.
            "monitoring_server_web_services": [],
            # The lab network stands in for the home LAN.
            "homelab_networks": {"lan": [SUBNET], "tailscale": ["100.64.0.0/10"]},
            # Tailscale's apt repository is out of reach here too.
            "tailscale_install": False,
            # agenix-style secrets with random values (see ensure_secrets).
            "secrets_dir": SECRETS_DIR,
            "secrets_admin_identity": KEY,
            "secrets_definitions": LAB_SECRETS,
            # The restic repositories' password: a lab secret, decrypted on the host.
            "backup_password_file": "/run/agenix/lab-backup",
        }
    text = (
        "# Written by scripts/lab.py: the lab's addresses and credentials over the\n"
        "# real inventory (00-fleet.yml, group_vars and host_vars link to it).\n"
        + json.dumps({"all": {"hosts": hosts}}, indent=2, sort_keys=True)
        + "\n"
    )
    path = os.path.join(OVERLAY, "10-lab.yml")
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w") as f:
            f.write(text)


def up(_args):
    tag = ensure_image()
    ensure_network()
    pubkey = ensure_key()
    ensure_secrets()
    remove_stale()
    started = [host for host in HOSTS if start_host(host, tag, pubkey)]
    wait_for_ssh(HOSTS)
    write_overlay()
    log("six hosts up (%s); inventory: inventory/lab" % ("started: " + ", ".join(started) if started else "all reused"))


def overlay(_args):
    write_overlay()
    log("inventory overlay written to inventory/lab")


def down(args):
    names = podman("ps", "-a", "--filter", "label=" + LABEL, "--format", "{{.Names}}", check=False).stdout.split()
    # Also containers that carry a lab name without the label (left by hand).
    names = sorted(set(names) | {container(h) for h in HOSTS if inspect(container(h)) is not None})
    if names:
        podman("rm", "-f", "-t", "2", *names, check=False)
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        podman("network", "rm", "-f", NETWORK, check=False)
    if not args.keep_overlay:
        shutil.rmtree(OVERLAY, ignore_errors=True)
    if os.path.exists(KNOWN_HOSTS):
        os.remove(KNOWN_HOSTS)
    log("lab removed (the image stays cached; `podman rmi` it to rebuild)")


def status(_args):
    for host in HOSTS:
        info = inspect(container(host))
        state = "absent" if info is None else info["State"]["Status"]
        print("%-8s %-15s %s" % (host, ADDRESSES[host], state))


def destroy(args):
    """Remove one host's container, data and all (a disaster; `up` starts a fresh one)."""
    podman("rm", "-f", "-t", "1", container(args.host), check=False)
    forget_host_key(args.host)
    log("%s destroyed" % args.host)


def stop(args):
    podman("stop", "-t", "1", container(args.host))
    log("%s stopped" % args.host)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up").set_defaults(func=up)
    p = sub.add_parser("down")
    p.add_argument("--keep-overlay", action="store_true", help="keep inventory/lab (molecule links it)")
    p.set_defaults(func=down)
    sub.add_parser("overlay", help="write inventory/lab only").set_defaults(func=overlay)
    sub.add_parser("status").set_defaults(func=status)
    p = sub.add_parser("stop")
    p.add_argument("host", choices=HOSTS)
    p.set_defaults(func=stop)
    p = sub.add_parser("destroy", help="remove one host's container (disaster-recovery drills)")
    p.add_argument("host", choices=HOSTS)
    p.set_defaults(func=destroy)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.exit(2, "lab: run as root (rootful podman, debootstrap)\n")
    try:
        args.func(args)
    except LabError as e:
        parser.exit(1, "lab: %s\n" % e)


if __name__ == "__main__":
    sys.exit(main())
