# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of the nixos_module module: one managed Nix file plus an aggregator.

The aggregator ``default.nix`` imports every ``*.nix`` file of the managed
directory, so a host (``/etc/nixos/homelab/``) or a flake checkout
(``hosts/<host>/homelab/``) only needs ``imports = [ ./homelab ];`` once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

AGGREGATOR = "default.nix"
MODULE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

DEFAULT_HEADER = "Managed by Ansible (homelab.nixos). Local changes will be overwritten."


class ModuleFileError(ValueError):
    """Bad input or a file Nix cannot parse."""


def check_name(name):
    """Module names become file names: keep them boring."""
    if not isinstance(name, str) or not MODULE_NAME.fullmatch(name) or name == "default":
        raise ModuleFileError(
            "invalid module name %r: use 1-64 of [a-z0-9_-], starting with a letter or digit, not 'default'" % (name,)
        )
    return name


def module_files(directory, extra=None, missing=None):
    """Sorted names of the module files the aggregator must import.

    ``extra`` is a file about to be created, ``missing`` one about to be
    removed, so the aggregator can be computed before anything is written.
    """
    names = set()
    if os.path.isdir(directory):
        for entry in os.listdir(directory):
            if entry.endswith(".nix") and entry != AGGREGATOR and not entry.startswith("."):
                names.add(entry)
    if extra:
        names.add(extra)
    if missing:
        names.discard(missing)
    return sorted(names)


def render_aggregator(files, header=DEFAULT_HEADER):
    """The ``default.nix`` that imports every managed module."""
    lines = ["# " + line for line in header.splitlines()]
    lines.append("# Imports every module in this directory; regenerated on each change.")
    lines.append("{ ... }:")
    lines.append("{")
    if files:
        lines.append("  imports = [")
        lines.extend("    ./%s" % name for name in files)
        lines.append("  ];")
    else:
        lines.append("  imports = [ ];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_text(path):
    """File content, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def parse_error_summary(stderr):
    """One line out of nix-instantiate's error output."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    message = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "unknown error")
    where = next((line for line in lines if line.startswith("at ")), "")
    return ("%s (%s)" % (message, where)) if where else message
