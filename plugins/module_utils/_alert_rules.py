# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus alert rules for the fleet, as plain data.

``alert_rules(settings)`` returns a rule-file document ``{groups: [...]}``
that the monitoring_server role writes as YAML (``promtool check rules``
reads it back). Thresholds and durations come from ``settings``; every key is
optional (see DEFAULTS) and unknown keys are errors, so a typo cannot silently
leave a default in place. ``for_override`` replaces every ``for:`` (the lab
and the promtool tests shorten alerts with it).

The old fleet's seven rules (HighCPUUsage, HighMemoryUsage, LowDiskSpace,
NixStoreSize, SystemdServiceFailed, HostDown, HighNetworkTraffic) are kept
with their thresholds; the others cover what that fleet missed: backups,
NixOS generations, reboots, certificates, exporters, clock and temperature.
No two rules fire for the same problem: SystemdServiceFailed covers
``.service`` units and SystemdUnitFailed every other unit type; ExporterDown
leaves the node job to HostDown and stays quiet while the host itself is
down (matched on the instance without its port); FilesystemPredictedFull
stays quiet once LowDiskSpace applies; the disk rules skip read-only mounts
such as NixOS's /nix/store bind mount, which would repeat its filesystem.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import math
import re
from collections.abc import Mapping

RUNBOOK_URL = "https://github.com/homelab/nixos/blob/main/docs/runbooks.md#"
SEVERITIES = ("critical", "warning")
DURATION_RE = re.compile(r"^[0-9]+[smhdwy]$")

# Numeric settings: name -> default. All must be > 0.
NUMBER_DEFAULTS = {
    "cpu_percent": 80,
    "memory_percent": 90,
    "disk_percent": 85,
    "nix_store_bytes": 50 * 10**9,
    "network_bytes_per_second": 100 * 10**6,
    "generation_max_age_days": 30,
    "backup_max_age_hours": 26,
    "cert_expiry_days": 14,
    "clock_skew_seconds": 0.05,
    "temperature_celsius": 90,
}
# Settings that are percentages: also at most 100.
PERCENT_SETTINGS = ("cpu_percent", "memory_percent", "disk_percent")
# Duration settings: name -> default (None: not set).
DURATION_DEFAULTS = {
    "host_down_for": "1m",
    "for_override": None,
}
DEFAULTS = dict(NUMBER_DEFAULTS, **DURATION_DEFAULTS)

# Filesystems that never fill up in a way worth an alert: memory-backed, read-only
# images, container layers, pseudo and FUSE filesystems, and shares of another
# host's disk (virtiofs/9p in MicroVMs: the host alerts about its own disk).
EXCLUDED_FSTYPES = (
    "tmpfs",
    "devtmpfs",
    "ramfs",
    "overlay",
    "squashfs",
    "iso9660",
    "nsfs",
    "autofs",
    "efivarfs",
    "fuse[.].*",
    "virtiofs",
    "9p",
)
# Interfaces whose traffic is counted again on a physical one.
EXCLUDED_NET_DEVICES = ("lo", "veth.*", "docker.*", "br-.*", "virbr.*")

# Fixed parts of the expressions, filled in for <name> like the settings.
_SELECTORS = {
    "fs": '{fstype!~"' + "|".join(EXCLUDED_FSTYPES) + '"}',
    "net": '{device!~"' + "|".join(EXCLUDED_NET_DEVICES) + '"}',
    "nix": '{mountpoint=~"/nix/store|/nix"}',
    # Copies the instance without its port into an `address` label, so that a
    # host's other exporters can be matched with its node job.
    "address": '"address", "$1", "instance", "(.+?)(:[0-9]+)?"',
}
_USED_PERCENT = "100 * (1 - node_filesystem_avail_bytes<fs> / node_filesystem_size_bytes<fs>)"
_READ_ONLY = "node_filesystem_readonly<fs> == 1"
_PLACEHOLDER = re.compile(r"<([a-z_]+)>")

# (group, alert, severity, for, expr, summary, description). <name> is replaced by
# the setting `name` (numbers as PromQL reads them; <name_si> with an SI prefix),
# by one of _SELECTORS, or in annotations <for> by the rule's effective `for`.
RULES = (
    (
        "homelab-host",
        "HostDown",
        "critical",
        "<host_down_for>",
        'up{job="node"} == 0',
        "Host {{ $labels.instance }} is down",
        "The node exporter on {{ $labels.instance }} has not answered Prometheus for <for>:"
        " the host is off, unreachable or its exporter stopped.",
    ),
    (
        "homelab-host",
        "ExporterDown",
        "warning",
        "5m",
        'max without (address) (label_replace(up{job!="node"} == 0, <address>)'
        ' unless on (address) label_replace(up{job="node"} == 0, <address>))',
        "Exporter {{ $labels.job }} on {{ $labels.instance }} is down",
        "Prometheus cannot scrape job {{ $labels.job }} at {{ $labels.instance }} although the host answers"
        " (a host that is down is reported by HostDown alone).",
    ),
    (
        "homelab-host",
        "HighCPUUsage",
        "warning",
        "5m",
        '100 * (1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{mode="idle"}[5m]))) > <cpu_percent>',
        "High CPU usage on {{ $labels.instance }}",
        'CPU usage on {{ $labels.instance }} is {{ $value | printf "%.1f" }}%, above <cpu_percent>% for <for>.',
    ),
    (
        "homelab-host",
        "HighMemoryUsage",
        "warning",
        "5m",
        "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > <memory_percent>",
        "High memory usage on {{ $labels.instance }}",
        'Memory usage on {{ $labels.instance }} is {{ $value | printf "%.1f" }}%, above <memory_percent>% for <for>.',
    ),
    (
        "homelab-host",
        "LowDiskSpace",
        "warning",
        "10m",
        "(" + _USED_PERCENT + " > <disk_percent>) unless " + _READ_ONLY,
        "Low disk space on {{ $labels.instance }} {{ $labels.mountpoint }}",
        "Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} is"
        ' {{ $value | printf "%.1f" }}% full, above <disk_percent>% for <for>.',
    ),
    (
        "homelab-host",
        "FilesystemPredictedFull",
        "warning",
        "1h",
        "(predict_linear(node_filesystem_avail_bytes<fs>[6h], 24 * 3600) < 0 and "
        + _USED_PERCENT
        + " <= <disk_percent>) unless "
        + _READ_ONLY,
        "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} will fill up within 24 hours",
        "At the rate of the last 6 hours, filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on"
        " {{ $labels.instance }} runs out of space within 24 hours. It is not above <disk_percent>% yet"
        " (from there on LowDiskSpace reports it).",
    ),
    (
        "homelab-host",
        "HighNetworkTraffic",
        "warning",
        "10m",
        "label_replace(rate(node_network_receive_bytes_total<net>[5m]) > <network_bytes_per_second>,"
        ' "direction", "receive", "", "")'
        " or label_replace(rate(node_network_transmit_bytes_total<net>[5m]) > <network_bytes_per_second>,"
        ' "direction", "transmit", "", "")',
        "High network traffic on {{ $labels.instance }} {{ $labels.device }}",
        "{{ $labels.device }} on {{ $labels.instance }} ({{ $labels.direction }}) carries {{ $value | humanize }}B/s,"
        " above <network_bytes_per_second_si>B/s for <for>.",
    ),
    (
        "homelab-host",
        "SystemdServiceFailed",
        "warning",
        "5m",
        'node_systemd_unit_state{state="failed", name=~".+[.]service"} == 1',
        "Service {{ $labels.name }} failed on {{ $labels.instance }}",
        "The systemd service {{ $labels.name }} on {{ $labels.instance }} is in the failed state"
        " (systemctl status {{ $labels.name }}; journalctl -u {{ $labels.name }}).",
    ),
    (
        "homelab-host",
        "SystemdUnitFailed",
        "warning",
        "5m",
        'node_systemd_unit_state{state="failed", name!~".+[.]service"} == 1',
        "Unit {{ $labels.name }} failed on {{ $labels.instance }}",
        "The systemd unit {{ $labels.name }} (a timer, mount, socket or other unit that is not a service) on"
        " {{ $labels.instance }} is in the failed state (systemctl status {{ $labels.name }}).",
    ),
    (
        "homelab-host",
        "ClockSkew",
        "warning",
        "10m",
        'label_replace(abs(node_timex_offset_seconds) > <clock_skew_seconds>, "reason", "offset", "", "")'
        ' or label_replace(node_timex_sync_status == 0, "reason", "unsynchronised", "", "")',
        "Clock problem on {{ $labels.instance }} ({{ $labels.reason }})",
        '{{ if eq $labels.reason "offset" }}The clock of {{ $labels.instance }} is off by {{ $value }}s, more than'
        " <clock_skew_seconds>s{{ else }}NTP does not synchronise the clock of {{ $labels.instance }}{{ end }},"
        " for <for>.",
    ),
    (
        "homelab-host",
        "HighTemperature",
        "warning",
        "5m",
        "node_hwmon_temp_celsius > <temperature_celsius>",
        "High temperature on {{ $labels.instance }}",
        "Sensor {{ $labels.chip }} {{ $labels.sensor }} on {{ $labels.instance }} reads {{ $value }}°C,"
        " above <temperature_celsius>°C for <for>.",
    ),
    (
        "homelab-nixos",
        "NixStoreSize",
        "warning",
        "1h",
        "max without (mountpoint) (node_filesystem_size_bytes<nix> - node_filesystem_free_bytes<nix>)"
        " > <nix_store_bytes>",
        "Nix store on {{ $labels.instance }} is large",
        "The filesystem holding /nix/store on {{ $labels.instance }} uses {{ $value | humanize }}B, above"
        " <nix_store_bytes_si>B for <for>: collect garbage (nix-collect-garbage --delete-older-than 14d).",
    ),
    (
        "homelab-nixos",
        "NixosGenerationTooOld",
        "warning",
        "1h",
        "(time() - homelab_nixos_generation_timestamp_seconds) / 86400 > <generation_max_age_days>",
        "NixOS generation on {{ $labels.instance }} is old",
        'The current NixOS generation of {{ $labels.instance }} is {{ $value | printf "%.0f" }} days old,'
        " more than <generation_max_age_days> days: the host has not been deployed for a while.",
    ),
    (
        "homelab-nixos",
        "RebootRequired",
        "warning",
        "1d",
        "homelab_nixos_reboot_required == 1",
        "{{ $labels.instance }} needs a reboot",
        "{{ $labels.instance }} has run a kernel, initrd or kernel modules other than its current NixOS"
        " generation's for <for>: reboot it to finish the switch.",
    ),
    (
        "homelab-backup",
        "BackupTooOld",
        "critical",
        "10m",
        "(time() - homelab_backup_last_success_timestamp_seconds) / 3600 > <backup_max_age_hours>",
        "Backup of {{ $labels.instance }} to {{ $labels.repository }} is too old",
        "The last successful backup of {{ $labels.instance }} to {{ $labels.repository }} is"
        ' {{ $value | printf "%.1f" }} hours old, more than <backup_max_age_hours> hours.',
    ),
    (
        "homelab-backup",
        "BackupVerificationFailed",
        "critical",
        "5m",
        "homelab_backup_last_verification_success == 0",
        "Backup verification failed for {{ $labels.instance }} ({{ $labels.repository }})",
        "The last verification of the backup repository {{ $labels.repository }} of {{ $labels.instance }}"
        " failed: the backups may not be restorable.",
    ),
    (
        "homelab-probes",
        "WebServiceDown",
        "warning",
        "5m",
        'probe_success{job="blackbox_http"} == 0',
        "Web service {{ $labels.service }} ({{ $labels.instance }}) is down",
        "The blackbox exporter has not had a successful HTTP answer from {{ $labels.instance }} for <for>"
        " (probe_http_status_code and probe_failed_due_to_regex tell why).",
    ),
    (
        "homelab-probes",
        "ProbeFailed",
        "warning",
        "5m",
        'max without (address) (label_replace(probe_success{job=~"blackbox_(icmp|ssh)"} == 0, <address>)'
        ' unless on (address) label_replace(up{job="node"} == 0, <address>))',
        "{{ $labels.job }} probe of {{ $labels.instance }} fails",
        "The blackbox exporter's {{ $labels.job }} probe of {{ $labels.instance }} has failed for <for> although"
        " its node exporter answers: ping or SSH is blocked or broken (a host that is down is reported by"
        " HostDown alone).",
    ),
    (
        "homelab-probes",
        "TLSCertificateExpiring",
        "warning",
        "1h",
        "(probe_ssl_earliest_cert_expiry - time()) / 86400 < <cert_expiry_days>",
        "TLS certificate of {{ $labels.instance }} expires soon",
        'The TLS certificate served by {{ $labels.instance }} expires in {{ $value | printf "%.1f" }} days'
        " (less than <cert_expiry_days> days).",
    ),
)
GROUP_NAMES = tuple(dict.fromkeys(rule[0] for rule in RULES))


class AlertRulesError(ValueError):
    """Invalid alert settings; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} alert setting problem{plural}:\n{listing}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def settings_problems(settings):
    """Everything wrong with ``settings``, as a list of strings (empty when they are valid)."""
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        return [f"settings must be a mapping, got {type(settings).__name__}"]
    problems = []
    for key in sorted(settings, key=str):
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), sorted(DEFAULTS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown setting {key!r}{hint}; known: {', '.join(sorted(DEFAULTS))}")
    for key in NUMBER_DEFAULTS:
        if key not in settings:
            continue
        value = settings[key]
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            problems.append(f"{key} must be a number > 0, got {value!r}")
        elif key in PERCENT_SETTINGS and value > 100:
            problems.append(f"{key} is a percentage and must be at most 100, got {value!r}")
    for key in DURATION_DEFAULTS:
        if key not in settings:
            continue
        value = settings[key]
        if value is None and key == "for_override":
            continue
        if not isinstance(value, str) or not DURATION_RE.fullmatch(value):
            problems.append(f"{key} must be a Prometheus duration like 30s, 5m or 1h (^[0-9]+[smhdwy]$), got {value!r}")
    return problems


def resolve_settings(settings):
    """DEFAULTS updated with ``settings``; AlertRulesError listing every problem otherwise."""
    problems = settings_problems(settings)
    if problems:
        raise AlertRulesError(problems)
    resolved = dict(DEFAULTS)
    resolved.update(settings or {})
    return resolved


def promql_number(value):
    """A number as PromQL reads it: integral values without a fraction (50000000000, not 5e+10)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def si_number(value):
    """``value`` with an SI prefix as Prometheus' humanize writes it: 50G, 12.5M, 0.05."""
    prefixes = ("", "k", "M", "G", "T", "P", "E")
    index = 0
    while abs(value) >= 1000 and index < len(prefixes) - 1:
        value /= 1000
        index += 1
    return ("%.3f" % value).rstrip("0").rstrip(".") + prefixes[index]


def _filler(resolved):
    values = dict(_SELECTORS)
    for key, value in resolved.items():
        if _is_number(value):
            values[key] = promql_number(value)
            values[key + "_si"] = si_number(value)
        elif isinstance(value, str):
            values[key] = value

    def fill(text, **extra):
        found = dict(values, **extra)
        return _PLACEHOLDER.sub(lambda match: found.get(match.group(1), match.group(0)), text)

    return fill


def alert_rules(settings=None):
    """The rule-file document ``{groups: [{name, rules}]}``; AlertRulesError listing every bad setting."""
    resolved = resolve_settings(settings)
    fill = _filler(resolved)
    groups = {name: [] for name in GROUP_NAMES}
    for group, name, severity, default_for, expr, summary, description in RULES:
        duration = resolved["for_override"] or fill(default_for)
        groups[group].append(
            {
                "alert": name,
                "expr": fill(expr),
                "for": duration,
                "labels": {"severity": severity},
                "annotations": {
                    "summary": fill(summary, **{"for": duration}),
                    "description": fill(description, **{"for": duration}),
                    "runbook_url": RUNBOOK_URL + name.lower(),
                },
            }
        )
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]}


def alert_names(document):
    """Every alert name of a rule-file document, in order."""
    return [rule["alert"] for group in document["groups"] for rule in group["rules"]]
