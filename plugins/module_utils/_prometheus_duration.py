# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus' duration syntax (prometheus/common model.ParseDuration), shared
by the scrape-config and Alertmanager generators."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Units largest first: y w d h m s ms.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_MS = (365 * 86400000, 7 * 86400000, 86400000, 3600000, 60000, 1000, 1)


def duration_ms(value):
    """Milliseconds of a Prometheus duration string (``"1h30m"``, ``"0"``); None when malformed."""
    if not isinstance(value, str):
        return None
    if value == "0":
        return 0
    match = _DURATION.match(value)
    if not value or not match:
        return None
    return sum(int(part) * _UNIT_MS[index] for index, part in enumerate(match.groups()) if part)
