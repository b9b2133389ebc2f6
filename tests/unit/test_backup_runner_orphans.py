"""The backup runner reaps what restic leaves behind.

restic 0.14 exits without waiting for the ``ssh`` of its sftp backend. In the lab that straggler, still in
the unit's cgroup when the runner exited, left homelab-backup.service in stop-sigterm until systemd gave up
after 90 s with result 'timeout' (CI of 40311be). The runner now adopts such orphans (PR_SET_CHILD_SUBREAPER)
and reaps them after every restic call.

Each scenario runs in a child Python process: a subreaper is a property of the process, and pytest's own
process must not become one. The stand-in for restic is a shell script that backgrounds a process and
exits, as restic does with its ssh.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "roles", "backup", "files", "homelab_backup.py")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's")

SCENARIO = textwrap.dedent(
    """
    import importlib.util, json, subprocess, sys, time
    spec = importlib.util.spec_from_file_location("homelab_backup", sys.argv[1])
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    fake_restic, mode = sys.argv[2], sys.argv[3]
    cfg = runner.validate_config({
        "host": "samsung", "restic": fake_restic, "state_dir": "/var/lib/homelab/backup",
        "cache_dir": "/var/cache/homelab-backup", "textfile": "/var/lib/node-exporter/homelab_backup.prom",
        "paths": ["/home"], "canary_file": "/home/canary", "drill_dir": "/var/tmp/drill", "drill_sample": 5,
        "check_read_data_subset": "10%",
        "repositories": [{"name": "local", "url": "/var/lib/homelab/backup/repo",
                          "password_file": "/run/agenix/backup", "retention": {"keep_daily": 7}}],
    })
    out = {"adopted": runner.adopt_orphans() if mode != "plain" else False}
    started = time.monotonic()
    if mode == "direct":  # restic without run_restic: nothing reaps
        subprocess.run([fake_restic], check=True)
        out["reaped"] = 0
    else:
        result = runner.run_restic(cfg, cfg.primary, ["snapshots"], check=False)
        out["restic_rc"] = result.returncode
    out["seconds"] = time.monotonic() - started
    out["children"] = runner._children()
    out["subreaper"] = runner.is_subreaper()
    print(json.dumps(out))
    """
)


def _fake_restic(tmp_path, background):
    script = tmp_path / "restic"
    # Like restic's ssh, whose stdio are restic's pipes, the straggler holds none of the caller's pipes.
    script.write_text(f"#!/bin/sh\n{background} </dev/null >/dev/null 2>&1 &\nexit 0\n")
    script.chmod(0o755)
    return str(script)


def _scenario(fake, mode):
    proc = subprocess.run(
        [sys.executable, "-c", SCENARIO, RUNNER, fake, mode], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_straggler_of_a_restic_call_is_reaped_before_run_restic_returns(tmp_path):
    # A straggler like restic's ssh: it exits 0.3 s after restic.
    fake = _fake_restic(tmp_path, "sleep 0.3")
    out = _scenario(fake, "reap")
    assert out["adopted"] and out["subreaper"]
    assert out["restic_rc"] == 0
    assert out["children"] == []
    assert out["seconds"] >= 0.25, "run_restic returned before the straggler exited"


def test_without_the_reaping_the_adopted_straggler_is_still_there(tmp_path):
    # The control: the same fake restic called directly leaves a child behind, so the test above can fail.
    out = _scenario(_fake_restic(tmp_path, "sleep 0.3"), "direct")
    assert out["adopted"]
    assert len(out["children"]) == 1


def test_a_straggler_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    fake = _fake_restic(tmp_path, "(trap '' TERM; exec sleep 60)")
    started = time.monotonic()
    out = _scenario(fake, "reap")
    assert out["children"] == []
    # Five seconds' grace, SIGTERM (ignored), SIGKILL one second later.
    assert 5.5 <= out["seconds"] < 20, out
    assert time.monotonic() - started < 30


def test_a_process_that_is_no_subreaper_keeps_its_children(tmp_path):
    # Without adopt_orphans (the unit tests' own process, any importer) nothing is reaped: the orphan goes to
    # init as before and run_restic returns at once.
    out = _scenario(_fake_restic(tmp_path, "sleep 2"), "plain")
    assert not out["subreaper"]
    assert out["seconds"] < 1.5
    assert out["children"] == []


def test_reap_orphans_leaves_the_callers_own_children_alone():
    spec_runner = _load_runner()
    child = subprocess.Popen(["sleep", "0.2"])
    try:
        assert spec_runner.reap_orphans() == 0
    finally:
        assert child.wait(timeout=10) == 0


def _load_runner():
    spec = importlib.util.spec_from_file_location("homelab_backup_orphans", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
