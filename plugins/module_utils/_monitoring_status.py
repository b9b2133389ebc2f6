# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the monitoring server sees: scrape targets, Alertmanagers and alerts.

``collect(get_json, prometheus_url, alertmanager_url)`` reads three APIs

- Prometheus ``/api/v1/targets?state=active`` (``data.activeTargets``),
- Prometheus ``/api/v1/alertmanagers`` (``data.activeAlertmanagers``),
- Alertmanager ``/api/v2/alerts`` (a list of alerts),

through ``get_json(url)`` (parsed JSON, or MonitoringStatusError naming the
URL), and returns targets, alerts, alertmanagers, a summary and a fixed-width
text table. ``JsonGetter`` is the HTTP ``get_json`` the module uses; it takes
the opener (``open_url``) as an argument, so nothing here needs a network.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from http.client import HTTPException
from urllib.error import HTTPError, URLError

TARGETS_PATH = "/api/v1/targets?state=active"
ALERTMANAGERS_PATH = "/api/v1/alertmanagers"
ALERTS_PATH = "/api/v2/alerts"
SEVERITY_ORDER = ("critical", "warning", "info")
# Longest "last error" shown in the table; the full text is in ``targets``.
ERROR_WIDTH = 72


class MonitoringStatusError(Exception):
    """An API could not be read or answered something unexpected; the message names the URL."""


def _api_url(base, path):
    return base.rstrip("/") + path


def _reason(error):
    reason = getattr(error, "reason", None) or error
    return " ".join(str(reason).split()) or type(error).__name__


class JsonGetter:
    """``get_json(url)`` over HTTP with an ``open_url``-like ``opener``.

    Every failure becomes a MonitoringStatusError whose message names the URL.
    ``errors`` adds exception classes of the opener to treat as unreachable
    (the module passes ansible.module_utils.urls' ConnectionError).
    """

    def __init__(self, opener, timeout=10, validate_certs=True, use_proxy=True, errors=()):
        self.opener = opener
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.use_proxy = use_proxy
        self.errors = tuple(errors)

    def __call__(self, url):
        try:
            response = self.opener(
                url,
                method="GET",
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                use_proxy=self.use_proxy,
            )
            try:
                body = response.read()
            finally:
                response.close()
        except HTTPError as e:
            raise MonitoringStatusError("%s answered HTTP %s %s" % (url, e.code, _reason(e))) from e
        except (URLError, HTTPException, OSError, *self.errors) as e:
            raise MonitoringStatusError("cannot reach %s: %s" % (url, _reason(e))) from e
        try:
            return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        except ValueError as e:
            raise MonitoringStatusError("%s did not answer JSON: %s" % (url, e)) from e


def _prometheus_data(payload, url, key):
    """``payload.data[key]`` of a Prometheus API answer (a list)."""
    if not isinstance(payload, dict):
        raise MonitoringStatusError("%s answered %s, not a Prometheus API object" % (url, type(payload).__name__))
    if payload.get("status") != "success":
        raise MonitoringStatusError(
            "%s answered status %r: %s" % (url, payload.get("status"), payload.get("error") or "no error given")
        )
    data = payload.get("data")
    items = data.get(key) if isinstance(data, dict) else None
    if items is None:
        items = []
    if not isinstance(items, list):
        raise MonitoringStatusError("%s: data.%s is %s, not a list" % (url, key, type(items).__name__))
    return items


def _text(value):
    return value if isinstance(value, str) else ("" if value is None else str(value))


def host_of_instance(instance):
    """``p620`` from ``p620:9100``, ``::1`` from ``[::1]:9100``; other instances (URLs) unchanged."""
    match = re.match(r"^\[([^\]]+)\]:\d+$", instance) or re.match(r"^([^:/\[\]]+):\d+$", instance)
    return match.group(1) if match else instance


def parse_targets(payload, url="Prometheus targets"):
    """The active scrape targets, sorted by host, job and instance."""
    targets = []
    for item in _prometheus_data(payload, url, "activeTargets"):
        if not isinstance(item, dict):
            continue
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        instance = _text(labels.get("instance"))
        targets.append(
            {
                "job": _text(labels.get("job") or item.get("scrapePool")),
                "instance": instance,
                "host": _text(labels.get("host")) or host_of_instance(instance),
                "health": _text(item.get("health")) or "unknown",
                "last_error": _text(item.get("lastError")),
                "last_scrape": _text(item.get("lastScrape")),
                "scrape_url": _text(item.get("scrapeUrl")),
            }
        )
    return sorted(targets, key=lambda t: (t["host"], t["job"], t["instance"]))


def parse_alertmanagers(payload, url="Prometheus alertmanagers"):
    """The Alertmanagers Prometheus sends alerts to, sorted by URL."""
    found = []
    for item in _prometheus_data(payload, url, "activeAlertmanagers"):
        if isinstance(item, dict) and item.get("url"):
            found.append({"url": _text(item["url"])})
    return sorted(found, key=lambda a: a["url"])


def _severity_rank(severity):
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def parse_alerts(payload, url="Alertmanager alerts"):
    """Alertmanager's alerts, most severe first, then oldest first."""
    if not isinstance(payload, list):
        raise MonitoringStatusError("%s answered %s, not a list of alerts" % (url, type(payload).__name__))
    alerts = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        annotations = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        instance = _text(labels.get("instance"))
        alerts.append(
            {
                "alertname": _text(labels.get("alertname")),
                "host": _text(labels.get("host")) or (host_of_instance(instance) if instance else ""),
                "severity": _text(labels.get("severity")),
                "state": _text(status.get("state")) or "unknown",
                "starts_at": _text(item.get("startsAt")),
                "summary": _text(annotations.get("summary")),
                "labels": dict(labels),
            }
        )
    return sorted(alerts, key=lambda a: (_severity_rank(a["severity"]), a["starts_at"], a["alertname"], a["host"]))


def summarize(targets, alerts, alertmanagers):
    """Counts for a quick look; ``alerts_firing`` counts active (not silenced or inhibited) alerts."""
    return {
        "targets_up": sum(1 for t in targets if t["health"] == "up"),
        "targets_down": sum(1 for t in targets if t["health"] == "down"),
        "targets_unknown": sum(1 for t in targets if t["health"] not in ("up", "down")),
        "alerts_firing": sum(1 for a in alerts if a["state"] == "active"),
        "alerts_suppressed": sum(1 for a in alerts if a["state"] == "suppressed"),
        "alertmanagers_active": len(alertmanagers),
    }


def _one_line(text, width=None):
    text = " ".join(text.split())
    if width is not None and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def _short_time(stamp):
    """``2024-05-01T10:00:00Z`` from ``2024-05-01T10:00:00.123456789Z`` (fractions of seconds dropped)."""
    return re.sub(r"(T\d\d:\d\d:\d\d)\.\d+", r"\1", stamp)


def format_table(headers, rows):
    """Lines of a fixed-width table: header, rule, rows; columns joined by `` | ``, empty last cells left out."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells):
        cells = list(cells)
        while cells and not cells[-1]:
            cells.pop()
        return " | ".join(cell.ljust(widths[index]) for index, cell in enumerate(cells)).rstrip()

    return [line(headers), "-+-".join("-" * width for width in widths)] + [line(row) for row in rows]


def render_table(targets, alerts, alertmanagers, summary=None):
    """The status as a list of text lines: targets, then Alertmanagers, then alerts."""
    summary = summary or summarize(targets, alerts, alertmanagers)
    lines = [
        "TARGETS: %d up, %d down, %d unknown"
        % (summary["targets_up"], summary["targets_down"], summary["targets_unknown"])
    ]
    if targets:
        rows = [[t["host"], t["job"], t["health"], _one_line(t["last_error"], ERROR_WIDTH)] for t in targets]
        lines.extend(format_table(["HOST", "JOB", "HEALTH", "LAST ERROR"], rows))
    else:
        lines.append("no active targets")
    lines.append("")
    if alertmanagers:
        lines.append("ALERTMANAGERS: " + ", ".join(a["url"] for a in alertmanagers))
    else:
        lines.append("ALERTMANAGERS: none - Prometheus sends its alerts nowhere")
    lines.append("")
    lines.append("ALERTS: %d firing, %d suppressed" % (summary["alerts_firing"], summary["alerts_suppressed"]))
    if alerts:
        rows = [[a["alertname"], a["host"], a["severity"], a["state"], _short_time(a["starts_at"])] for a in alerts]
        lines.extend(format_table(["ALERT", "HOST", "SEVERITY", "STATE", "SINCE"], rows))
    else:
        lines.append("no alerts")
    return lines


def status_warnings(summary):
    """Things the operator should act on even when every API answered."""
    found = []
    if not summary["alertmanagers_active"]:
        found.append("Prometheus has no active Alertmanager: its alerts reach nobody (check its alerting config)")
    return found


def collect(get_json, prometheus_url, alertmanager_url):
    """Read the three APIs and return targets, alerts, alertmanagers, summary, table and warnings."""
    targets_url = _api_url(prometheus_url, TARGETS_PATH)
    alertmanagers_url = _api_url(prometheus_url, ALERTMANAGERS_PATH)
    alerts_url = _api_url(alertmanager_url, ALERTS_PATH)
    targets = parse_targets(get_json(targets_url), targets_url)
    alertmanagers = parse_alertmanagers(get_json(alertmanagers_url), alertmanagers_url)
    alerts = parse_alerts(get_json(alerts_url), alerts_url)
    summary = summarize(targets, alerts, alertmanagers)
    return {
        "targets": targets,
        "alerts": alerts,
        "alertmanagers": alertmanagers,
        "summary": summary,
        "table": render_table(targets, alerts, alertmanagers, summary),
        "warnings": status_warnings(summary),
    }
