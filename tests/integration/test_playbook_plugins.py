"""The collection resolves from a plain checkout and its filters work inside
real ansible-playbook runs (no installation, Galaxy never contacted)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def _playbook(tmp_path, tasks):
    play = [{"name": "test", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    return str(path)


def _run(path, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json")
    env["ANSIBLE_FACT_CACHING"] = "memory"
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", path, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _results(proc):
    data = json.loads(proc.stdout[proc.stdout.index("{") :])
    return [t["hosts"]["localhost"] for play in data["plays"] for t in play["tasks"]]


def test_to_nix_and_nix_raw_in_a_playbook(tmp_path):
    tasks = [
        {
            "name": "render",
            "ansible.builtin.set_fact": {
                "out": "{{ {'services': {'prometheus': {'enable': true, 'package': 'pkgs.prometheus' "
                "| homelab.nixos.nix_raw}}, 'x': '${evil}'} | homelab.nixos.to_nix }}"
            },
        },
        {"name": "show", "ansible.builtin.debug": {"var": "out"}},
    ]
    proc = _run(_playbook(tmp_path, tasks))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = _results(proc)[1]["out"]
    assert out == (
        '{\n  services.prometheus = {\n    enable = true;\n    package = pkgs.prometheus;\n  };\n  x = "\\${evil}";\n}'
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("{{ {'a': 1.0 / 0 if false else ('nan' | float)} | homelab.nixos.to_nix }}", "to_nix: nan at a"),
        ("{{ '' | homelab.nixos.nix_raw }}", "nix_raw: a raw Nix expression must be a non-empty string"),
    ],
)
def test_filter_errors_are_clear(tmp_path, expression, message):
    proc = _run(_playbook(tmp_path, [{"name": "bad", "ansible.builtin.debug": {"msg": expression}}]))
    assert proc.returncode != 0
    assert message in proc.stdout
