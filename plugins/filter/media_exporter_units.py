# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: media_exporter_units
short_description: NixOS systemd services for the collection's media exporters
version_added: 0.1.0
description:
  - Turns the media exporters enabled on a host (Tautulli, NZBGet) into C(systemd.services) entries for a NixOS
    module, one C(homelab-<name>-exporter) per exporter, running the exporter script with C(pkgs.python3).
  - The exporter's secret is the systemd credential C(secret), loaded with C(LoadCredential) from
    C(<secrets_dir>/homelab-<name>-exporter), a root-only file; it never enters the Nix store, a command line or the
    environment.
options:
  _input:
    description: The enabled exporters, each C({name, title, args}); C(args) are the script's arguments.
    type: list
    elements: dict
    required: true
  script:
    description: Absolute path of the exporter script on the host.
    type: str
    required: true
  secrets_dir:
    description: Absolute directory holding the root-only secret files.
    type: str
    required: true
  service_config:
    description: Extra C(serviceConfig) settings (hardening) for every exporter.
    type: dict
    default: {}
author: homelab.nixos maintainers (@homelab-nixos)
"""

EXAMPLES = r"""
- name: Media exporter units for the NixOS module
  ansible.builtin.set_fact:
    media_units: >-
      {{ [{'name': 'tautulli', 'title': 'Tautulli', 'args': ['--service', 'tautulli']}]
         | homelab.nixos.media_exporter_units('/etc/homelab/homelab_media_exporter.py', '/var/lib/homelab/secrets',
                                              {'DynamicUser': true}) }}
  # {homelab-tautulli-exporter: {script: "exec python3 /etc/homelab/... --service tautulli",
  #   serviceConfig: {DynamicUser: true,
  #                   LoadCredential: "secret:/var/lib/homelab/secrets/homelab-tautulli-exporter"}, ...}}
"""

RETURN = r"""
_value:
  description: Unit name to its C(systemd.services) settings (to_nix data).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.module_utils._media_exporters import MediaExporterError, nixos_units


def media_exporter_units_filter(exporters, script, secrets_dir, service_config=None):
    """The NixOS systemd services of the enabled media exporters."""
    try:
        return nixos_units(exporters, script, secrets_dir, service_config)
    except MediaExporterError as e:
        raise AnsibleFilterError(f"media_exporter_units: {e}") from e


class FilterModule:
    """The media_exporter_units filter."""

    def filters(self):
        return {"media_exporter_units": media_exporter_units_filter}
