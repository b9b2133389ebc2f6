"""The NixOS generation metrics script, run by the real shell against a fake
NixOS tree (ROOT) and checked with promtool's metrics linter when present."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "roles", "monitoring_exporters", "files", "nixos-generation-metrics.sh")


def _system(root, name, kernel):
    path = root / "nix" / "store" / name
    path.mkdir(parents=True)
    for part in ("kernel", "initrd", "kernel-modules"):
        (path / part).symlink_to("/nix/store/%s-%s" % (kernel, part))
    return path


@pytest.fixture
def nixos(tmp_path):
    root = tmp_path / "root"
    profiles = root / "nix" / "var" / "nix" / "profiles"
    profiles.mkdir(parents=True)
    old = _system(root, "aaa-nixos-system-41", "k1")
    new = _system(root, "bbb-nixos-system-42", "k2")
    (profiles / "system-41-link").symlink_to(str(old).replace(str(root), ""))
    (profiles / "system-42-link").symlink_to(str(new).replace(str(root), ""))
    (profiles / "system").symlink_to("system-42-link")
    (root / "run").mkdir()
    (root / "run" / "current-system").symlink_to(new)
    (root / "run" / "booted-system").symlink_to(old)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    os.utime(profiles / "system-42-link", (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return root, textfile


def _run(root, textfile):
    env = {"PATH": "/usr/bin:/bin", "ROOT": str(root), "TEXTFILE_DIR": str(textfile)}
    return subprocess.run(["sh", SCRIPT], env=env, capture_output=True, text=True, check=False)


def test_metrics_report_generation_age_and_reboot(nixos):
    root, textfile = nixos
    proc = _run(root, textfile)
    assert proc.returncode == 0, proc.stderr
    text = (textfile / "homelab_nixos.prom").read_text()
    assert "homelab_nixos_generation 42\n" in text
    assert "homelab_nixos_generation_timestamp_seconds 1700000000\n" in text
    assert "homelab_nixos_reboot_required 1\n" in text
    assert oct((textfile / "homelab_nixos.prom").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in textfile.iterdir()] == ["homelab_nixos.prom"]  # no temp file left
    promtool = shutil.which("promtool")
    if promtool:
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_reboot_needed_when_booted_is_current(nixos):
    root, textfile = nixos
    (root / "run" / "booted-system").unlink()
    (root / "run" / "booted-system").symlink_to(os.readlink(root / "run" / "current-system"))
    assert _run(root, textfile).returncode == 0
    assert "homelab_nixos_reboot_required 0\n" in (textfile / "homelab_nixos.prom").read_text()


def test_fails_clearly_without_a_system_profile(tmp_path):
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    proc = _run(tmp_path, textfile)
    assert proc.returncode != 0
    assert not list(textfile.iterdir())
