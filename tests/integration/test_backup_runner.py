"""The backup runner (roles/backup/files/homelab_backup.py) run as a real process with the real restic
(Debian 12's 0.14) on repositories in a tmp directory: a primary ("local") and a replica ("p510")
filled from it by ``restic copy``. The only network peer is 127.0.0.1 (an ssh port nothing listens on).

The module's ``site`` runs the first backup once; later tests reuse those repositories (restic's key
derivation makes every call cost a second, so each scenario is one runner call where it can be) and
tests that damage a repository work on a copy of it.
"""

import copy
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "roles", "backup", "files", "homelab_backup.py")
_SPEC = importlib.util.spec_from_file_location("homelab_backup", RUNNER)
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)

HOST = "samsung"
ODD_NAME = "we ird [1]*?.txt"
UNREACHABLE = (
    "ssh -p 1 -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null"
    " nobody@127.0.0.1 -s sftp"
)
IS_ROOT = os.geteuid() == 0


def _restic_binary():
    path = shutil.which("restic", path="/usr/bin:/bin:" + os.environ.get("PATH", ""))
    if path is None:
        if os.environ.get("HOMELAB_ALLOW_NO_RESTIC") == "1":
            pytest.skip("restic not installed")
        pytest.fail("restic is missing: install Debian's restic package (apt-get install restic)")
    return path


class Site:
    """Source files, password files, repositories and configurations in one tmp directory."""

    def __init__(self, root, restic):
        self.root = root
        self.restic_path = restic
        self.outputs = []
        self.passwords = {}
        self.src = root / "src"
        self._write_sources()
        self.base = {
            "host": HOST,
            "restic": restic,
            "state_dir": str(root / "state"),
            "cache_dir": str(root / "cache"),
            "textfile": str(root / "textfile" / "homelab_backup.prom"),
            "paths": [str(self.src)],
            "excludes": ["*.tmp", f"{self.src}/*/.cache"],
            "tags": ["homelab"],
            "canary_file": str(self.src / "private" / "canary"),
            "check_read_data_subset": "100%",
            "drill_sample": 3,
            "drill_dir": str(root / "drill"),
            "lock_timeout_seconds": 5,
            "repositories": [
                self.repository("local", root / "repos" / "local", {"keep_last": 1}),
                dict(self.repository("p510", root / "repos" / "p510", {"keep_last": 3}), **{"from": "local"}),
            ],
        }
        self.config = self.write_config("config", self.base)

    def _write_sources(self):
        files = {
            "notes/a.txt": b"first line\n",
            "notes/deep/b.md": b"# b\n" * 50,
            "blob.bin": os.urandom(300_000),
            f"notes/{ODD_NAME}": b"odd name\n",
            "scratch.tmp": b"excluded by *.tmp\n",
            "alice/.cache/c": b"excluded by */.cache\n",
        }
        for name, content in files.items():
            path = self.src / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def password_file(self, name):
        path = self.root / "passwords" / name
        path.parent.mkdir(exist_ok=True)
        self.passwords[name] = secrets.token_hex(16)
        path.write_text(self.passwords[name] + "\n")
        path.chmod(0o600)
        return str(path)

    def repository(self, name, url, retention, password=None):
        return {
            "name": name,
            "url": str(url),
            "password_file": password or self.password_file(name),
            "retention": retention,
        }

    def write_config(self, name, raw):
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(raw, indent=2))
        return str(path)

    def variant(self, name, **changes):
        """A configuration like the base one, with its own state, cache and textfile unless given."""
        raw = copy.deepcopy(self.base)
        raw.update(
            state_dir=str(self.root / name / "state"),
            cache_dir=str(self.root / name / "cache"),
            textfile=str(self.root / name / "textfile" / "homelab_backup.prom"),
            drill_dir=str(self.root / name / "drill"),
        )
        raw.update(changes)
        return self.write_config(name, raw), raw

    def run(self, config, *command, prefix=()):
        argv = [*prefix, sys.executable, RUNNER, "--config", config, *command]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=120)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def restic(self, repo, *args):
        """restic run by the test itself on one repository of a configuration's ``repositories``."""
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "RESTIC_PASSWORD_FILE": repo["password_file"]}
        argv = [self.restic_path, "--repo", repo["url"], "--no-cache", *args]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def snapshots(self, repo):
        return json.loads(self.restic(repo, "snapshots", "--json", "--host", HOST))

    def repo(self, name, raw=None):
        return next(r for r in (raw or self.base)["repositories"] if r["name"] == name)


def _samples(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
    return values


def _metric(name, repository):
    return f'{name}{{repository="{repository}"}}'


def _raw_files(directory):
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            yield os.path.join(dirpath, name)


def _expected_files(site):
    """The regular files a backup of ``site.src`` holds (what the manifest must list)."""
    return sorted(
        p for p in _raw_files(site.src) if not p.endswith(".tmp") and "/.cache/" not in p and os.path.isfile(p)
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("backup"), _restic_binary())
    s.first = s.run(s.config, "backup")
    s.first_metrics = _samples(s.base["textfile"])
    s.first_sizes = {name: s.first_metrics[_metric("homelab_backup_size_bytes", name)] for name in ("local", "p510")}
    return s


def _promtool_lint(path):
    promtool = shutil.which(
        "promtool", path=os.environ.get("PATH", "") + ":" + os.path.join(ROOT, ".cache/tools/usr/bin")
    )
    if not promtool:
        if os.environ.get("HOMELAB_ALLOW_NO_PROMTOOL") == "1":
            pytest.skip("promtool not installed")
        pytest.fail("promtool not found (scripts/setup-controller.sh unpacks it into .cache/tools)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_first_backup_fills_primary_and_replica(site):
    assert site.first.returncode == 0, site.first.stderr
    assert "repository local: initialised" in site.first.stdout
    assert "repository p510: initialised" in site.first.stdout
    for name in ("local", "p510"):
        snapshots = site.snapshots(site.repo(name))
        assert len(snapshots) == 1
        assert snapshots[0]["tags"] == ["homelab"]
        assert site.base["state_dir"] + "/manifest.json" in snapshots[0]["paths"]
        assert site.first_metrics[_metric("homelab_backup_last_run_success", name)] == 1
        assert site.first_metrics[_metric("homelab_backup_snapshots", name)] == 1
        assert site.first_sizes[name] > 300_000
        assert site.first_metrics[_metric("homelab_backup_last_success_timestamp_seconds", name)] > 1.6e9
    primary = json.loads(site.restic(site.repo("local"), "cat", "config"))
    replica = json.loads(site.restic(site.repo("p510"), "cat", "config"))
    assert replica["chunker_polynomial"] == primary["chunker_polynomial"]
    assert replica["id"] != primary["id"]


def test_the_manifest_lists_the_backed_up_files(site):
    manifest = json.loads((site.root / "state" / "manifest.json").read_text())
    assert manifest["host"] == HOST
    assert sorted(manifest["files"]) == _expected_files(site)
    blob = manifest["files"][str(site.src / "blob.bin")]
    assert blob["sha256"] == hashlib.sha256((site.src / "blob.bin").read_bytes()).hexdigest()
    assert blob["size"] == 300_000


def test_the_canary_is_in_the_source_and_in_no_raw_repository_file(site):
    canary = (site.src / "private" / "canary").read_bytes()
    assert re.fullmatch(rb"homelab-backup-canary-[0-9a-f]{32}", canary)
    assert oct((site.src / "private" / "canary").stat().st_mode & 0o777) == "0o600"
    assert oct((site.src / "private").stat().st_mode & 0o777) == "0o700"
    for name in ("local", "p510"):
        raw_files = list(_raw_files(site.repo(name)["url"]))
        assert len(raw_files) > 5
        for path in raw_files:
            with open(path, "rb") as f:
                assert canary not in f.read(), path


def test_a_second_backup_is_deduplicated_and_pruned(site):
    with open(site.src / "notes" / "a.txt", "a", encoding="utf-8") as f:
        f.write("second line\n")
    result = site.run(site.config, "backup")
    assert result.returncode == 0, result.stderr
    added = int(
        re.search(r"backup local: snapshot \w+, \d+ files, \d+ bytes processed, (\d+) bytes added", result.stdout)[1]
    )
    assert added < 20_000
    metrics = _samples(site.base["textfile"])
    # keep_last 1 on the primary, 3 on the replica.
    assert len(site.snapshots(site.repo("local"))) == 1
    assert len(site.snapshots(site.repo("p510"))) == 2
    assert metrics[_metric("homelab_backup_snapshots", "p510")] == 2
    # Same chunker parameters: the replica grows by the change, not by another copy of blob.bin.
    assert 0 < metrics[_metric("homelab_backup_size_bytes", "p510")] - site.first_sizes["p510"] < 20_000
    assert metrics[_metric("homelab_backup_last_run_success", "p510")] == 1


def test_check_passes_with_the_encryption_check(site):
    result = site.run(site.config, "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["check local: ok, encryption check ok", "check p510: ok, encryption check ok"]
    metrics = _samples(site.base["textfile"])
    for name in ("local", "p510"):
        assert metrics[_metric("homelab_backup_last_verification_success", name)] == 1
        assert metrics[_metric("homelab_backup_encryption_verified", name)] == 1
        assert metrics[_metric("homelab_backup_last_verification_timestamp_seconds", name)] > 1.6e9


def test_drill_passes_and_cleans_up(site):
    result = site.run(site.config, "drill")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"drill local: 3 files checked, 0 mismatches, 0 changed during backup, \d+\.\ds\n", result.stdout
    )
    assert os.listdir(site.base["drill_dir"]) == []
    metrics = _samples(site.base["textfile"])
    assert metrics[_metric("homelab_backup_last_drill_success", "local")] == 1
    assert metrics[_metric("homelab_backup_drill_files_checked", "local")] == 3
    _promtool_lint(site.base["textfile"])


def test_include_patterns_restore_exactly_an_odd_file_name(site, tmp_path):
    cfg = runner.load_config(site.config)
    repo = cfg.primary
    odd = str(site.src / "notes" / ODD_NAME)
    snapshot = runner.find_snapshot(cfg, repo, HOST)
    assert runner.restore(cfg, repo, snapshot["id"], str(tmp_path), [odd]) is None
    restored = [os.path.relpath(p, tmp_path) for p in _raw_files(tmp_path)]
    assert restored == [odd.lstrip("/")]


def test_restore_on_a_fresh_host_verifies_every_file(site, tmp_path):
    config, raw = site.variant("fresh")
    target = tmp_path / "target"
    result = site.run(config, "restore", "--repository", "p510", "--target", str(target), "--from-host", HOST)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    expected = _expected_files(site)
    latest = max(site.snapshots(site.repo("p510")), key=runner.snapshot_time)
    assert summary["repository"] == "p510"
    assert summary["snapshot"] == latest["id"]
    assert summary["files"] == len(expected)
    assert summary["bytes"] == sum(os.path.getsize(p) for p in expected)
    assert (summary["mismatches"], summary["changed"]) == ([], 0)
    assert summary["seconds"] > 0
    assert (target / str(site.src / "blob.bin").lstrip("/")).read_bytes() == (site.src / "blob.bin").read_bytes()
    assert os.path.exists(os.path.join(raw["state_dir"], "lock"))


def test_a_wrong_password_changes_nothing(site):
    before = _samples(site.base["textfile"])
    primary = site.repo("local")
    config_file = Path(primary["url"], "config")
    config_before = (config_file.read_bytes(), config_file.stat().st_mtime_ns)
    snapshots_before = site.snapshots(primary)
    raw = copy.deepcopy(site.base)
    raw["repositories"][0]["password_file"] = site.password_file("wrong")
    result = site.run(site.write_config("wrong-password", raw), "backup")
    assert result.returncode == 1
    assert "initialised" not in result.stdout
    assert "homelab-backup: repository local: wrong password or no key found\n" in result.stderr
    assert "homelab-backup: repository p510: skipped, the backup into local failed\n" in result.stderr
    assert (config_file.read_bytes(), config_file.stat().st_mtime_ns) == config_before
    assert site.snapshots(primary) == snapshots_before
    after = _samples(site.base["textfile"])
    last_success = _metric("homelab_backup_last_success_timestamp_seconds", "local")
    assert after[last_success] == before[last_success]
    assert after[_metric("homelab_backup_last_run_success", "local")] == 0
    assert after[_metric("homelab_backup_last_run_success", "p510")] == 0


def test_an_unreachable_replica_fails_the_run_not_the_primary(site):
    offsite = site.repository("offsite", "sftp:nobody@127.0.0.1:/repo", {"keep_last": 1})
    offsite.update({"from": "local", "sftp_command": UNREACHABLE})
    config, raw = site.variant("unreachable", repositories=[*site.base["repositories"], offsite])
    result = site.run(config, "backup")
    assert result.returncode == 1
    assert (
        "homelab-backup: repository offsite: target unreachable "
        "(ssh: connect to host 127.0.0.1 port 1: Connection refused)\n"
    ) in result.stderr
    assert "backup local: snapshot" in result.stdout
    assert "copy p510:" in result.stdout
    metrics = _samples(raw["textfile"])
    assert metrics[_metric("homelab_backup_last_run_success", "local")] == 1
    assert metrics[_metric("homelab_backup_last_run_success", "p510")] == 1
    assert metrics[_metric("homelab_backup_last_run_success", "offsite")] == 0
    assert _metric("homelab_backup_last_success_timestamp_seconds", "offsite") not in metrics


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs, or a skip where mounting is not permitted."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_disk_is_reported(site, tiny_disk, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "random").write_bytes(os.urandom(2_000_000))
    repo = site.repository("local", tiny_disk / "repo", {"keep_last": 1}, password=site.repo("local")["password_file"])
    config, raw = site.variant("full", paths=[str(big)], canary_file=str(big / "canary"), repositories=[repo])
    result = site.run(config, "backup")
    assert result.returncode == 1
    assert "homelab-backup: repository local: no space left on device\n" in result.stderr
    assert _samples(raw["textfile"])[_metric("homelab_backup_last_run_success", "local")] == 0


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_an_incomplete_backup_keeps_its_snapshot_and_prunes_nothing(site, tmp_path):
    repo_dir = tmp_path / "repo"
    shutil.copytree(site.repo("local")["url"], repo_dir)
    source = tmp_path / "source"
    source.mkdir()
    (source / "readable").write_text("fine\n")
    (source / "locked").write_text("unreadable without CAP_DAC_OVERRIDE\n")
    (source / "locked").chmod(0)
    repo = site.repository("local", repo_dir, {"keep_last": 1}, password=site.repo("local")["password_file"])
    config, _raw = site.variant(
        "incomplete", paths=[str(source)], canary_file=str(source / "canary"), repositories=[repo]
    )
    # Without these capabilities root is refused the mode-0 file, like any owner.
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    result = site.run(config, "backup", prefix=drop)
    assert result.returncode == 1
    assert (
        f"homelab-backup: manifest: 1 unreadable files skipped (first: {source}/locked: Permission denied)"
        in result.stderr
    )
    assert re.search(
        rf"repository local: backup incomplete: 1 source files could not be read \(first: {source}/locked: "
        r"Permission denied\); snapshot \w+ kept, retention not applied",
        result.stderr,
    ), result.stderr
    # keep_last 1 was not applied: the earlier snapshot and the incomplete one are both there.
    assert len(site.snapshots(repo)) == 2


def _corrupt_largest_pack(repo_dir):
    packs = sorted(_raw_files(os.path.join(repo_dir, "data")), key=os.path.getsize)
    pack = packs[-1]
    data = bytearray(Path(pack).read_bytes())
    for i in range(100, 200):
        data[i] ^= 0xFF
    os.chmod(pack, 0o600)
    with open(pack, "wb") as f:
        f.write(data)


def test_a_corrupted_pack_fails_check_and_drill(site, tmp_path):
    repo_dir = tmp_path / "repo"
    shutil.copytree(site.repo("local")["url"], repo_dir)
    _corrupt_largest_pack(repo_dir)
    repo = site.repository("local", repo_dir, {"keep_last": 1}, password=site.repo("local")["password_file"])
    config, raw = site.variant("corrupt", drill_sample="all", repositories=[repo])
    check = site.run(config, "check")
    assert check.returncode == 1
    assert "homelab-backup: repository local: repository contains errors (Pack ID does not match" in check.stderr
    assert "check local: FAILED, encryption check ok" in check.stdout
    drill = site.run(config, "drill")
    assert drill.returncode == 1
    assert re.search(r"drill local: \d+ files checked, [1-9]\d* mismatches", drill.stdout), drill.stdout + drill.stderr
    assert "ciphertext verification failed" in drill.stderr
    assert os.listdir(raw["drill_dir"]) == []
    metrics = _samples(raw["textfile"])
    assert metrics[_metric("homelab_backup_last_verification_success", "local")] == 0
    assert metrics[_metric("homelab_backup_last_drill_success", "local")] == 0
    _promtool_lint(raw["textfile"])


def test_a_held_lock_stops_a_second_run(site):
    config, raw = site.variant("locked", lock_timeout_seconds=1)
    os.makedirs(raw["state_dir"])
    with open(os.path.join(raw["state_dir"], "lock"), "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        result = site.run(config, "check")
    assert result.returncode == 1
    assert result.stderr == (
        f"homelab-backup: another backup, check, drill or restore holds {raw['state_dir']}/lock; gave up after 1s\n"
    )


def test_no_password_is_ever_written_or_printed(site):
    """Last: every output, state, manifest and textfile of the module's runs."""
    written = [p for p in _raw_files(site.root) if p.endswith((".json", ".prom")) and "/repos/" not in p]
    texts = site.outputs + [Path(p).read_text(encoding="utf-8", errors="replace") for p in written]
    assert len(site.outputs) >= 10
    for password in site.passwords.values():
        assert not any(password in text for text in texts)


def test_validate_checks_the_configuration_only(site, tmp_path):
    ok = site.run(site.config, "validate")
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr
    bad = tmp_path / "bad.json"
    state = tmp_path / "state"
    bad.write_text(json.dumps(dict(site.base, paths=["relative"], drill_sample=0, state_dir=str(state))))
    refused = site.run(str(bad), "validate")
    assert refused.returncode == 2
    assert "paths" in refused.stderr and "drill_sample" in refused.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dict(site.base, state_dir=str(state))))
    assert site.run(str(good), "validate").returncode == 0
    # validate touches nothing: no state directory, lock or metrics for either configuration.
    assert not state.exists()


def test_check_takes_a_subset_for_this_run_only(site):
    config, _raw = site.variant("subset", check_read_data_subset="1/5")
    whole = site.run(config, "check", "--read-data-subset", "100%")
    assert whole.returncode == 0, whole.stderr
    assert "check local: ok" in whole.stdout
    refused = site.run(config, "check", "--read-data-subset", "200%")
    assert refused.returncode == 2 and "percentage up to 100%" in refused.stderr


def test_a_lost_local_repository_comes_back_with_the_remote_ones_chunker_params(site, tmp_path):
    """After a disaster: the local tier is gone, the remote one holds the history."""
    replica = dict(site.repo("p510"), url=str(tmp_path / "p510"))
    shutil.copytree(site.repo("p510")["url"], replica["url"])
    local = dict(site.repo("local"), url=str(tmp_path / "new-local"))
    config, _raw = site.variant("after-disaster", repositories=[local, replica])
    before = json.loads(site.restic(replica, "stats", "--json", "--mode", "raw-data"))["total_size"]
    result = site.run(config, "backup")
    assert result.returncode == 0, result.stderr
    chunker = [json.loads(site.restic(repo, "cat", "config"))["chunker_polynomial"] for repo in (local, replica)]
    assert chunker[0] == chunker[1]
    # Deduplicated: copying the new snapshot of the same data (a 300 kB random blob among it)
    # into the remote tier stored next to nothing.
    after = json.loads(site.restic(replica, "stats", "--json", "--mode", "raw-data"))["total_size"]
    assert after - before < 50_000, (before, after)
