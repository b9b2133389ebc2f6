"""Configuration rollback on the lab (playbooks/ops/config-rollback.yml): /etc
kept in git by etckeeper goes back to an earlier commit, and a rollback that
would break sshd is undone by itself."""

import re

from labtools import podman_exec, run_site

HOST = "razer"


def _exec(*command, check=True):
    return podman_exec(HOST, *command, check=check, timeout=120)


def _rollback(*extra):
    rc, out = run_site("--limit", HOST, *extra, playbook="playbooks/ops/config-rollback.yml", timeout=600)
    return rc, " ".join(out.split())


def _head():
    return _exec("git", "-C", "/etc", "rev-parse", "HEAD").stdout.strip()


def test_etc_goes_back_to_the_previous_commit_and_forward_again(hardened_lab):
    assert _exec("test", "-d", "/etc/.git").returncode == 0
    assert _exec("stat", "-c", "%a", "/etc/.git").stdout.strip() == "700"
    issue = _exec("cat", "/etc/issue").stdout
    _exec("sh", "-c", "echo 'homelab rollback test' >> /etc/issue && echo new > /etc/homelab-rollback-test")
    _exec("etckeeper", "commit", "homelab test: a change to roll back")
    changed = _head()
    rc, out = _rollback()
    assert rc == 0, out[-3000:]
    assert "homelab test: a change to roll back" in out and "(current)" in out
    rc, out = _rollback("-e", "rollback_to=previous")
    assert rc == 0, out[-3000:]
    assert _exec("cat", "/etc/issue").stdout == issue
    assert _exec("test", "-e", "/etc/homelab-rollback-test", check=False).returncode == 1
    # The rollback is a commit of its own; the changed state is still there to roll forward to.
    assert _exec("git", "-C", "/etc", "status", "--porcelain").stdout == ""
    rc, out = _rollback("-e", f"rollback_to={changed}")
    assert rc == 0, out[-3000:]
    assert "homelab rollback test" in _exec("cat", "/etc/issue").stdout
    # Back where the lab was.
    rc, out = _rollback("-e", "rollback_to=previous")
    assert rc == 0, out[-3000:]
    assert _exec("cat", "/etc/issue").stdout == issue


def test_a_rollback_that_breaks_sshd_is_undone(hardened_lab):
    sshd_config = _exec("sha256sum", "/etc/ssh/sshd_config").stdout
    # A commit whose sshd_config does not parse, then a good one on top of it.
    _exec(
        "sh", "-c", "cp /etc/ssh/sshd_config /root/sshd_config.good && echo 'NoSuchKeyword yes' >> /etc/ssh/sshd_config"
    )
    _exec("etckeeper", "commit", "homelab test: broken sshd_config")
    broken = _head()
    _exec("sh", "-c", "cp /root/sshd_config.good /etc/ssh/sshd_config")
    _exec("etckeeper", "commit", "homelab test: sshd_config repaired")
    rc, out = _rollback("-e", f"rollback_to={broken}")
    assert rc != 0
    assert re.search(r"the rollback of /etc to \w+ was undone", out), out[-3000:]
    assert _exec("sha256sum", "/etc/ssh/sshd_config").stdout == sshd_config
    assert _exec("sshd", "-t", check=False).returncode == 0
