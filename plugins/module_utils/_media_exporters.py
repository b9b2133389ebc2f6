# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NixOS systemd services for the media exporters this collection ships.

Each exporter (roles/monitoring_exporters/files/homelab_media_exporter.py) is
one ``systemd.services.homelab-<name>-exporter`` running the script with
Python from nixpkgs. Its secret is the systemd credential ``secret`` loaded
from a root-only file, so it never enters the Nix store, a command line or
the environment.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from ansible_collections.homelab.nixos.plugins.module_utils._nix import raw

NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class MediaExporterError(ValueError):
    """An exporter description that cannot become a unit."""


def unit_name(name):
    """The systemd unit (without .service) of exporter ``name``."""
    return f"homelab-{name}-exporter"


def _exporter(entry, index):
    if not isinstance(entry, Mapping):
        raise MediaExporterError(f"exporter {index} must be a mapping, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise MediaExporterError(f"exporter {index}: name must match {NAME_RE.pattern}, got {name!r}")
    args = entry.get("args", [])
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise MediaExporterError(f"exporter {name}: args must be a list")
    return name, str(entry.get("title") or name), [str(arg) for arg in args]


def nixos_units(exporters, script, secrets_dir, service_config=None):
    """{unit name: systemd.services entry} for ``exporters`` [{name, title, args}]."""
    if not isinstance(script, str) or not script.startswith("/"):
        raise MediaExporterError(f"script must be an absolute path, got {script!r}")
    if not isinstance(secrets_dir, str) or not secrets_dir.startswith("/"):
        raise MediaExporterError(f"secrets_dir must be an absolute path, got {secrets_dir!r}")
    if service_config is not None and not isinstance(service_config, Mapping):
        raise MediaExporterError("service_config must be a mapping")
    units = {}
    for index, entry in enumerate(exporters or []):
        name, title, args = _exporter(entry, index)
        unit = unit_name(name)
        if unit in units:
            raise MediaExporterError(f"exporter {name} is listed twice")
        units[unit] = {
            "description": f"Prometheus exporter for {title} (homelab.nixos)",
            "wantedBy": ["multi-user.target"],
            "after": ["network-online.target"],
            "wants": ["network-online.target"],
            "path": [raw("pkgs.python3")],
            "script": "exec python3 " + shlex.join([script, *args]),
            "serviceConfig": dict(service_config or {}, LoadCredential=f"secret:{secrets_dir}/{unit}"),
        }
    return units
