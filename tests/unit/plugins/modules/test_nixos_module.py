"""nixos_module against the real nix-instantiate (Debian's nix-bin)."""

import json
import os
import subprocess

import pytest

from ansible_collections.homelab.nixos.plugins.modules import nixos_module

SSH = {"services": {"openssh": {"enable": True, "settings": {"PermitRootLogin": "no"}}}}


@pytest.fixture
def moddir(tmp_path):
    return str(tmp_path / "homelab")


def _args(moddir, **kw):
    args = {"name": "ssh", "directory": moddir}
    args.update(kw)
    return args


def _parse(nix_instantiate, path):
    return subprocess.run([nix_instantiate, "--parse", path], capture_output=True, text=True, check=False)


def test_settings_write_module_and_aggregator(run_module, moddir, nix_instantiate):
    failed, result = run_module(nixos_module.main, _args(moddir, settings=SSH))
    assert not failed, result
    assert result["changed"] is True
    assert result["imports"] == ["ssh.nix"]
    text = open(os.path.join(moddir, "ssh.nix")).read()
    assert "{ config, lib, pkgs, ... }:" in text
    assert 'settings.PermitRootLogin = "no";' in text
    aggregator = open(os.path.join(moddir, "default.nix")).read()
    assert "./ssh.nix" in aggregator
    for name in ("ssh.nix", "default.nix"):
        assert _parse(nix_instantiate, os.path.join(moddir, name)).returncode == 0
    # Evaluate through the aggregator: each import, applied to module arguments, yields the settings.
    expr = "map (m: import m { config = {}; lib = {}; pkgs = {}; }) (import %s/default.nix {}).imports" % moddir
    evaluated = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "-E", expr], capture_output=True, text=True, check=True
    )
    assert json.loads(evaluated.stdout) == [SSH]


def test_second_run_is_idempotent(run_module, moddir):
    run_module(nixos_module.main, _args(moddir, settings=SSH))
    failed, result = run_module(nixos_module.main, _args(moddir, settings=SSH))
    assert not failed and result["changed"] is False


def test_check_mode_writes_nothing_but_reports_change(run_module, moddir):
    failed, result = run_module(nixos_module.main, _args(moddir, settings=SSH), check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert not os.path.exists(moddir)
    assert result["diff"][0]["before"] == ""
    assert "openssh" in result["diff"][0]["after"]


def test_diff_shows_before_and_after(run_module, moddir):
    run_module(nixos_module.main, _args(moddir, settings=SSH))
    new = {"services": {"openssh": {"enable": False}}}
    failed, result = run_module(nixos_module.main, _args(moddir, settings=new), diff=True)
    assert not failed and result["changed"]
    assert "PermitRootLogin" in result["diff"][0]["before"]
    assert "PermitRootLogin" not in result["diff"][0]["after"]
    assert result["diff"][1]["before"] == result["diff"][1]["after"]


def test_unparsable_content_is_rejected_and_nothing_changes(run_module, moddir):
    run_module(nixos_module.main, _args(moddir, settings=SSH))
    before = sorted(os.listdir(moddir)), open(os.path.join(moddir, "ssh.nix")).read()
    failed, result = run_module(nixos_module.main, _args(moddir, content="{ services.openssh.enable = true "))
    assert failed
    assert result["msg"].startswith("%s/ssh.nix (new content) does not parse as Nix: error:" % moddir)
    assert "\n" not in result["msg"]
    assert (sorted(os.listdir(moddir)), open(os.path.join(moddir, "ssh.nix")).read()) == before


def test_unparsable_content_fails_in_check_mode_too(run_module, moddir):
    failed, result = run_module(nixos_module.main, _args(moddir, content="{ a = ; }"), check_mode=True)
    assert failed and "does not parse as Nix" in result["msg"]


def test_absent_removes_file_and_import(run_module, moddir):
    run_module(nixos_module.main, _args(moddir, settings=SSH))
    run_module(nixos_module.main, _args(moddir, name="monitoring", content="{ ... }: { }"))
    failed, result = run_module(nixos_module.main, _args(moddir, state="absent"))
    assert not failed and result["changed"]
    assert result["imports"] == ["monitoring.nix"]
    assert not os.path.exists(os.path.join(moddir, "ssh.nix"))
    assert "./ssh.nix" not in open(os.path.join(moddir, "default.nix")).read()
    failed, result = run_module(nixos_module.main, _args(moddir, state="absent"))
    assert not failed and result["changed"] is False


@pytest.mark.parametrize("name", ["default", "Upper", "../escape", "", "a" * 65, "with space"])
def test_bad_names_rejected(run_module, moddir, name):
    failed, result = run_module(nixos_module.main, _args(moddir, name=name, settings=SSH))
    assert failed and "invalid module name" in result["msg"]
    assert not os.path.exists(moddir)


def test_unrepresentable_settings_rejected(run_module, moddir):
    failed, result = run_module(nixos_module.main, _args(moddir, settings={"a": {"b": float("nan")}}))
    assert failed and "a.b" in result["msg"]


def test_settings_and_content_are_exclusive(run_module, moddir):
    failed, result = run_module(nixos_module.main, _args(moddir, settings=SSH, content="{ }"))
    assert failed and "mutually exclusive" in result["msg"]


def test_missing_nix_instantiate_is_a_clear_error(run_module, moddir, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    failed, result = run_module(nixos_module.main, _args(moddir, settings=SSH))
    assert failed and "nix-instantiate was not found" in result["msg"]


def test_raw_marker_is_written_verbatim(run_module, moddir, nix_instantiate):
    settings = {"services": {"prometheus": {"package": {"__nix_raw__": "pkgs.prometheus"}}}}
    failed, result = run_module(nixos_module.main, _args(moddir, name="prom", settings=settings))
    assert not failed
    assert "services.prometheus.package = pkgs.prometheus;" in result["content"]
