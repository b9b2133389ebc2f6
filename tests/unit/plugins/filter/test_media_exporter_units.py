"""The media_exporter_units filter: NixOS systemd services of the media exporters."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.filter.media_exporter_units import FilterModule
from ansible_collections.homelab.nixos.plugins.module_utils._nix import to_nix

media_exporter_units = FilterModule().filters()["media_exporter_units"]
SCRIPT = "/etc/homelab/homelab_media_exporter.py"
SECRETS = "/var/lib/homelab/secrets"
TAUTULLI = {"name": "tautulli", "title": "Tautulli (Plex)", "args": ["--service", "tautulli", "--url", "http://x:8181"]}
NZBGET = {"name": "nzbget", "title": "NZBGet", "args": ["--service", "nzbget", "--username", "it's me"]}


def test_one_service_per_exporter_with_its_credential():
    units = media_exporter_units([TAUTULLI, NZBGET], SCRIPT, SECRETS, {"DynamicUser": True})
    assert sorted(units) == ["homelab-nzbget-exporter", "homelab-tautulli-exporter"]
    tautulli = units["homelab-tautulli-exporter"]
    assert tautulli["serviceConfig"] == {
        "DynamicUser": True,
        "LoadCredential": "secret:/var/lib/homelab/secrets/homelab-tautulli-exporter",
    }
    assert tautulli["script"] == f"exec python3 {SCRIPT} --service tautulli --url http://x:8181"
    assert tautulli["path"] == [{"__nix_raw__": "pkgs.python3"}]
    assert tautulli["wantedBy"] == ["multi-user.target"]
    assert tautulli["description"] == "Prometheus exporter for Tautulli (Plex) (homelab.nixos)"


def test_arguments_are_shell_quoted():
    script = media_exporter_units([NZBGET], SCRIPT, SECRETS)["homelab-nzbget-exporter"]["script"]
    assert script.endswith("--username 'it'\"'\"'s me'")


def test_no_exporters_no_units():
    assert media_exporter_units([], SCRIPT, SECRETS) == {}


def test_units_render_as_nix():
    text = to_nix(media_exporter_units([TAUTULLI], SCRIPT, SECRETS, {"DynamicUser": True}))
    assert "pkgs.python3" in text and '"pkgs.python3"' not in text


@pytest.mark.parametrize(
    ("exporters", "script", "secrets", "message"),
    [
        ([TAUTULLI], "relative.py", SECRETS, "script must be an absolute path"),
        ([TAUTULLI], SCRIPT, "secrets", "secrets_dir must be an absolute path"),
        ([{"name": "Bad Name"}], SCRIPT, SECRETS, "name must match"),
        ([{"name": "x", "args": "--service x"}], SCRIPT, SECRETS, "args must be a list"),
        ([TAUTULLI, TAUTULLI], SCRIPT, SECRETS, "listed twice"),
        (["tautulli"], SCRIPT, SECRETS, "must be a mapping"),
    ],
)
def test_bad_input_is_a_clear_error(exporters, script, secrets, message):
    with pytest.raises(AnsibleFilterError, match=message):
        media_exporter_units(exporters, script, secrets)
