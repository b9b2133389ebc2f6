"""`make lab` on the real lab: converge, rerun with changed=0, and a host
stopped in the middle of a run (the fault test)."""

import re
import subprocess
import time

from labtools import HOSTS, ROOT, env, lab, recap, run_site, site_command

VICTIM = "samsung"


def test_converge_then_rerun_changes_nothing(hardened_lab):
    # The session's lab: six fresh hosts, converged once by the fixture (its output).
    first = recap(hardened_lab)
    assert set(first) == set(HOSTS)
    assert all(changed > 0 for _ok, changed, _u, _f in first.values()), "a fresh host had nothing to converge"
    assert "FLEET SUMMARY" in hardened_lab
    rc, out = run_site()
    assert rc == 0, out[-3000:]
    assert all(changed == 0 and failed == 0 for _ok, changed, _u, failed in recap(out).values()), out[-3000:]
    assert "FLEET SUMMARY" in out


def test_a_host_stopped_mid_run_leaves_the_others_converged_and_is_healed(fresh_lab):
    proc = subprocess.Popen(
        site_command(), cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    stopped = False
    for line in proc.stdout:
        lines.append(line)
        # The first task that changes a host: stop one host while the others work.
        if not stopped and "TASK [homelab.nixos.base : Probe the hardware]" in line:
            lab("stop", VICTIM)
            stopped = True
    rc = proc.wait()
    out = "".join(lines)
    assert stopped, "the run never reached the hardware probe"
    assert rc != 0, "a run with an unreachable host must fail"
    result = recap(out)
    assert result[VICTIM][2] == 1, "%s should be reported unreachable" % VICTIM
    summary = out[out.index("FLEET SUMMARY") :]
    assert re.search(r"^%s\s+UNREACHABLE\b" % VICTIM, summary, re.M)
    for host in HOSTS:
        if host == VICTIM:
            continue
        _ok, changed, unreachable, failed = result[host]
        assert unreachable == 0 and failed == 0 and changed > 0, host
        assert re.search(r"^%s\s+converged\b" % host, summary, re.M), host

    # The five others really are converged: a rerun without the victim changes nothing.
    rc, out = run_site("--limit", "!" + VICTIM)
    assert rc == 0 and all(v[1] == 0 for v in recap(out).values()), out[-3000:]

    # The next `make lab` (lab up + site.yml) heals the stopped host.
    started = time.monotonic()
    lab("up")
    rc, out = run_site()
    assert rc == 0, out[-3000:]
    assert all(v[2] == 0 and v[3] == 0 for v in recap(out).values())
    assert time.monotonic() - started < 300
