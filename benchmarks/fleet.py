"""Fleet benchmark on the local lab (a script, not a test: it never fails the suite).

Recreates the six lab hosts, runs site.yml (converge), runs it again (the
no-op rerun) and prints, for each run: wall seconds, tasks executed per host
(ok + failed; skipped tasks are counted apart), changed tasks, and the peak
memory of the controller (the summed PSS of ansible-playbook and its forks,
sampled every 50 ms). Ratios compare with the targets of issue #3: the no-op
rerun within 30 s, the controller under 1 GiB, and devsec.hardening's ~300 s
no-op run on one host. Last, lynis' hardening index of an unconfigured
container of the lab image and of the converged samsung (issue #5).

    .venv/bin/python benchmarks/fleet.py [--keep-lab] [--no-lynis]
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
TARGET_NOOP_S = 30.0
TARGET_MEMORY_MB = 1024.0
DEVSEC_NOOP_ONE_HOST_S = 300.0


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _memory_kb(pid):
    """(PSS, RSS) of one process. PSS splits pages shared between the forks,
    so summed over the tree it is the real footprint; summed RSS counts shared
    pages once per fork and is an upper bound."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _tree_memory_kb(pid):
    pss = rss = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        one_pss, one_rss = _memory_kb(p)
        pss += one_pss
        rss += one_rss
        stack.extend(_children(p))
    return pss, rss


def run_site():
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "inventory/lab", "site.yml"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            pss, rss = _tree_memory_kb(proc.pid)
            peak[0] = max(peak[0], pss)
            peak[1] = max(peak[1], rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit("site.yml failed (rc=%d):\n%s" % (proc.returncode, err[-2000:]))
    stats = json.loads(out[out.index("{") :])["stats"]
    return wall, stats, peak[0] / 1024.0, peak[1] / 1024.0


def lab(*args):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lab.py"), *args], check=True, capture_output=True)


LYNIS_INDEX = re.compile(r"Hardening index : (\d+)")
LYNIS = (
    "export DEBIAN_FRONTEND=noninteractive; (apt-get install -y -q lynis || (apt-get update -q && apt-get install"
    " -y -q lynis)) >/dev/null 2>&1 && lynis audit system --quick --no-colors 2>/dev/null"
)


def lynis_index(command):
    """Lynis' hardening index from running it through ``command`` (podman run/exec ... sh -c)."""
    proc = subprocess.run([*command, LYNIS], capture_output=True, text=True, check=False, timeout=900)
    match = LYNIS_INDEX.search(proc.stdout)
    if not match:
        raise SystemExit("lynis printed no hardening index:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return int(match.group(1))


def lynis_before_and_after(host="samsung"):
    """The index of an unconfigured container of the lab image, and of a converged lab host."""
    image = subprocess.run(
        ["podman", "inspect", "--format", "{{.ImageName}}", "homelab-lab-" + host],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stock = [
        "podman", "run", "--rm", "--runtime", "runc", "--network", "homelab-lab",
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000", image, "sh", "-c",
    ]  # fmt: skip
    return lynis_index(stock), lynis_index(["podman", "exec", "homelab-lab-" + host, "sh", "-c"])


def report(name, wall, stats, peak_mb, peak_rss_mb):
    print("%s: %.1f s wall, controller peak %.0f MB PSS (%.0f MB summed RSS)" % (name, wall, peak_mb, peak_rss_mb))
    for host in sorted(stats):
        s = stats[host]
        executed = s["ok"] + s["failures"]
        print(
            "  %-8s tasks executed %3d  skipped %3d  changed %3d  failed %d  unreachable %d"
            % (host, executed, s["skipped"], s["changed"], s["failures"], s["unreachable"])
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--no-lynis", action="store_true", help="skip the lynis hardening index (needs the mirror)")
    args = parser.parse_args()

    print("machine: %s, %d cores, Python %s" % (platform.platform(), os.cpu_count(), platform.python_version()))
    lab("down", "--keep-overlay")
    lab("up")
    try:
        converge = run_site()
        noop = run_site()
        lynis = None if args.no_lynis else lynis_before_and_after()
    finally:
        if not args.keep_lab:
            lab("down", "--keep-overlay")
    report("converge", *converge)
    report("no-op rerun", *noop)
    hosts = len(noop[1])
    changed_on_rerun = sum(s["changed"] for s in noop[1].values())
    peak = max(converge[2], noop[2])
    print("changed on rerun: %d" % changed_on_rerun)
    print("ratios:")
    print("  no-op rerun / converge:            %.2f" % (noop[0] / converge[0]))
    print("  no-op rerun / 30 s target:         %.2f" % (noop[0] / TARGET_NOOP_S))
    print("  controller peak / 1 GiB target:    %.2f" % (peak / TARGET_MEMORY_MB))
    print(
        "  per-host no-op / devsec (300 s):   %.4f  (%.1f s for %d hosts in parallel)"
        % (noop[0] / DEVSEC_NOOP_ONE_HOST_S, noop[0], hosts)
    )
    if lynis:
        before, after = lynis
        print("lynis hardening index on samsung: %d before (the unconfigured lab image), %d after" % (before, after))
        print("  after / before:                    %.2f" % (after / before))


if __name__ == "__main__":
    main()
