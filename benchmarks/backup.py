"""Backup benchmark on the converged local lab (a script, not a test: it never fails the suite).

Needs `make lab` first. On all six hosts at once it runs a first backup of a
fixed sample (the host's state plus 20 MB of incompressible data and 20 MB of
text in /home/admin/benchmark-data) and then a second one with nothing
changed, and prints per host and tier the run time and the repository size
from the runner's metrics, and restic's "data added" of each run. Then the
restore drill of every file (samsung), and `restic check --read-data-subset
100%` of both tiers (samsung). Ratios: the second run's added data against
the first (deduplication), repository size against the data (compression),
and the drill's time against the backup's.

    .venv/bin/python benchmarks/backup.py [--keep-data]
"""

import argparse
import concurrent.futures
import re
import subprocess
import time

HOSTS = ("p620", "razer", "p510", "dex5550", "samsung", "nixvm")
REMOTE = {host: ("dex5550" if host == "p510" else "p510") for host in HOSTS}
DATA = "/home/admin/benchmark-data"
METRICS = "/var/lib/prometheus/node-exporter/homelab_backup.prom"
CONFIG = "/etc/homelab/backup/config.json"


def _exec(host, *command, check=True, timeout=1800):
    return subprocess.run(
        ["podman", "exec", "homelab-lab-" + host, *command],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def _metrics(host):
    values = {}
    for line in _exec(host, "cat", METRICS).stdout.splitlines():
        match = re.match(r'^(homelab_backup_\w+)\{repository="([^"]+)"\} (\S+)$', line)
        if match:
            values[match[1], match[2]] = float(match[3])
    return values


def _backup(host):
    started = time.monotonic()
    proc = _exec(host, "homelab-backup", "--config", CONFIG, "backup", check=False)
    added = re.search(r"backup local: .* (\d+) bytes added", proc.stdout)
    return {
        "rc": proc.returncode,
        "wall": time.monotonic() - started,
        "added": int(added[1]) if added else None,
        "metrics": _metrics(host),
        "stderr": proc.stderr.strip(),
    }


def _all(function):
    with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
        return dict(zip(HOSTS, pool.map(function, HOSTS), strict=True))


def _timed(host, *command):
    started = time.monotonic()
    proc = _exec(host, *command, check=False)
    return proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-data", action="store_true", help="leave the sample data on the hosts")
    args = parser.parse_args()
    for host in HOSTS:
        _exec(
            host,
            "sh",
            "-c",
            f"install -d -o admin -g admin {DATA} && head -c 20000000 /dev/urandom > {DATA}/random.bin"
            f" && seq 1 2900000 > {DATA}/numbers.txt",
        )
    data_mb = 40.0
    first = _all(_backup)
    second = _all(_backup)
    print("%-8s %-7s %9s %9s %10s %12s %12s" % ("host", "tier", "1st s", "2nd s", "size MB", "1st added", "2nd added"))
    for host in HOSTS:
        for tier in ("local", REMOTE[host]):
            one, two = first[host]["metrics"], second[host]["metrics"]
            print(
                "%-8s %-7s %9.1f %9.1f %10.1f %12s %12s"
                % (
                    host,
                    tier,
                    one.get(("homelab_backup_duration_seconds", tier), float("nan")),
                    two.get(("homelab_backup_duration_seconds", tier), float("nan")),
                    two.get(("homelab_backup_size_bytes", tier), float("nan")) / 1e6,
                    first[host]["added"] if tier == "local" else "-",
                    second[host]["added"] if tier == "local" else "-",
                )
            )
    failed = {h: r["stderr"] for runs in (first, second) for h, r in runs.items() if r["rc"]}
    if failed:
        print("FAILED runs:", failed)
    wall_first = max(r["wall"] for r in first.values())
    wall_second = max(r["wall"] for r in second.values())
    print(f"six hosts at once: first run {wall_first:.1f} s, second (nothing changed) {wall_second:.1f} s")
    added_first = first["samsung"]["added"] or 1
    size = second["samsung"]["metrics"].get(("homelab_backup_size_bytes", "local"), 0) / 1e6
    print(
        f"samsung: second run added {second['samsung']['added']} bytes = "
        f"{(second['samsung']['added'] or 0) / added_first:.4f} x the first run's {added_first} (deduplication)"
    )
    print(
        f"samsung: local repository {size:.1f} MB for about {data_mb:.0f} MB of sample data = "
        f"{size / data_mb:.2f} x (compression: the text compresses, the random data cannot)"
    )
    rc, drill_s, _out = _timed("samsung", "sh", "-c", f"homelab-backup --config {CONFIG} drill")
    # A drill of every file: the config's sample is replaced for this one run.
    rc_all, drill_all_s, out_all = _timed(
        "samsung",
        "sh",
        "-c",
        f"python3 -c \"import json; c=json.load(open('{CONFIG}')); c['drill_sample']='all'; "
        f"json.dump(c, open('/root/bench-config.json','w'))\" && homelab-backup --config /root/bench-config.json drill",
    )
    checked = re.search(r"drill local: (\d+) files checked, (\d+) mismatches", out_all)
    print(
        f"samsung drill (sample): rc {rc}, {drill_s:.1f} s; drill of every file: rc {rc_all}, {drill_all_s:.1f} s, "
        f"{checked[1] if checked else '?'} files, {checked[2] if checked else '?'} mismatches; "
        f"{drill_all_s / (second['samsung']['wall'] or 1):.2f} x the second backup's time"
    )
    rc_check, check_s, _out = _timed(
        "samsung", "homelab-backup", "--config", CONFIG, "check", "--read-data-subset", "100%"
    )
    print(f"samsung restic check of both tiers, all data read: rc {rc_check}, {check_s:.1f} s")
    if not args.keep_data:
        for host in HOSTS:
            _exec(host, "rm", "-rf", DATA, "/root/bench-config.json", check=False)


if __name__ == "__main__":
    main()
