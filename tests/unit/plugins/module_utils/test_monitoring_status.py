"""Unit tests of the monitoring status parsing, table and HTTP error handling."""

import io
import json
import re
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._monitoring_status import (
    JsonGetter,
    MonitoringStatusError,
    collect,
    format_table,
    host_of_instance,
    parse_alertmanagers,
    parse_alerts,
    parse_targets,
    render_table,
    summarize,
)

PROM = "http://127.0.0.1:9090"
AM = "http://127.0.0.1:9093"


def _target(job, instance, health="up", *, host=None, error="", scrape="2024-05-01T10:00:01.123456789Z"):
    labels = {"instance": instance, "job": job}
    if host:
        labels["host"] = host
    return {
        "discoveredLabels": {"__address__": instance},
        "labels": labels,
        "scrapePool": job,
        "scrapeUrl": f"http://{instance}/metrics",
        "globalUrl": f"http://{instance}/metrics",
        "lastError": error,
        "lastScrape": scrape,
        "lastScrapeDuration": 0.012,
        "health": health,
        "scrapeInterval": "15s",
        "scrapeTimeout": "10s",
    }


TARGETS = {
    "status": "success",
    "data": {
        "activeTargets": [
            _target("node", "p620:9100", host="p620"),
            _target(
                "node",
                "p510:9100",
                health="down",
                host="p510",
                error='Get "http://p510:9100/metrics": dial tcp 192.168.1.127:9100: connect: connection refused',
            ),
            _target("nzbget", "p510:9103", host="p510"),
            _target("node", "dex5550:9100", host="dex5550"),
            _target("node", "samsung:9100", health="unknown", scrape="0001-01-01T00:00:00Z"),
        ],
        "droppedTargets": [{"discoveredLabels": {"__address__": "ignored:1"}}],
    },
}
ALERTMANAGERS = {
    "status": "success",
    "data": {
        "activeAlertmanagers": [{"url": "http://127.0.0.1:9093/api/v2/alerts"}],
        "droppedAlertmanagers": [],
    },
}


def _alert(name, severity, host=None, state="active", starts="2024-05-01T09:58:00.000Z", **labels):
    labels.update(alertname=name, severity=severity)
    if host:
        labels["host"] = host
    return {
        "annotations": {"summary": f"{name} on {host}"},
        "endsAt": "2024-05-01T10:08:00.000Z",
        "fingerprint": "0123456789abcdef",
        "receivers": [{"name": "email"}],
        "startsAt": starts,
        "status": {"inhibitedBy": [], "silencedBy": [], "state": state},
        "updatedAt": "2024-05-01T10:03:00.000Z",
        "generatorURL": "http://dex5550:9090/graph",
        "labels": labels,
    }


ALERTS = [
    _alert("HighCPUUsage", "warning", host="p510", state="suppressed", starts="2024-05-01T09:50:00.000Z"),
    _alert("LowDiskSpace", "warning", host="p620", starts="2024-05-01T08:00:00.000Z"),
    _alert("HostDown", "critical", host="p510"),
    _alert("Watchdog", "none"),
]
ROUTES = {
    PROM + "/api/v1/targets?state=active": TARGETS,
    PROM + "/api/v1/alertmanagers": ALERTMANAGERS,
    AM + "/api/v2/alerts": ALERTS,
}


class FakeGetter:
    """Test double for JsonGetter: answers from a dict of URL -> parsed JSON, records the URLs asked."""

    def __init__(self, routes):
        self.routes = routes
        self.asked = []

    def __call__(self, url):
        self.asked.append(url)
        if url not in self.routes:
            raise MonitoringStatusError("cannot reach %s: test double has no answer" % url)
        return self.routes[url]


# --- parsing -------------------------------------------------------------------


def test_parse_targets_sorted_with_host_fallback():
    targets = parse_targets(TARGETS)
    assert [(t["host"], t["job"], t["health"]) for t in targets] == [
        ("dex5550", "node", "up"),
        ("p510", "node", "down"),
        ("p510", "nzbget", "up"),
        ("p620", "node", "up"),
        ("samsung", "node", "unknown"),
    ]
    down = targets[1]
    assert down == {
        "job": "node",
        "instance": "p510:9100",
        "host": "p510",
        "health": "down",
        "last_error": TARGETS["data"]["activeTargets"][1]["lastError"],
        "last_scrape": "2024-05-01T10:00:01.123456789Z",
        "scrape_url": "http://p510:9100/metrics",
    }


def test_parse_targets_tolerates_sparse_entries():
    payload = {"status": "success", "data": {"activeTargets": [{"labels": {"instance": "x:1"}}, "junk", {}]}}
    targets = parse_targets(payload)
    assert [(t["host"], t["job"], t["health"]) for t in targets] == [("", "", "unknown"), ("x", "", "unknown")]
    assert parse_targets({"status": "success", "data": {}}) == []


@pytest.mark.parametrize(
    ("instance", "host"),
    [
        ("p620:9100", "p620"),
        ("[::1]:9100", "::1"),
        ("192.168.1.2:9100", "192.168.1.2"),
        ("https://x.org", "https://x.org"),
    ],
)
def test_host_of_instance(instance, host):
    assert host_of_instance(instance) == host


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "URL answered list, not a Prometheus API object"),
        ({"status": "error", "errorType": "bad_data", "error": "boom"}, "URL answered status 'error': boom"),
        ({"status": "success", "data": {"activeTargets": {}}}, "URL: data.activeTargets is dict, not a list"),
    ],
)
def test_parse_targets_rejects_unexpected_answers(payload, message):
    with pytest.raises(MonitoringStatusError, match="^" + re.escape(message) + "$"):
        parse_targets(payload, "URL")


def test_parse_alertmanagers():
    assert parse_alertmanagers(ALERTMANAGERS) == [{"url": "http://127.0.0.1:9093/api/v2/alerts"}]
    payload = {"status": "success", "data": {"activeAlertmanagers": [{"url": "b"}, {"url": "a"}, {}]}}
    assert parse_alertmanagers(payload) == [{"url": "a"}, {"url": "b"}]


def test_parse_alerts_most_severe_then_oldest_first():
    alerts = parse_alerts(ALERTS)
    assert [(a["alertname"], a["host"], a["severity"], a["state"]) for a in alerts] == [
        ("HostDown", "p510", "critical", "active"),
        ("LowDiskSpace", "p620", "warning", "active"),
        ("HighCPUUsage", "p510", "warning", "suppressed"),
        ("Watchdog", "", "none", "active"),
    ]
    assert alerts[0]["starts_at"] == "2024-05-01T09:58:00.000Z"
    assert alerts[0]["summary"] == "HostDown on p510"
    assert alerts[0]["labels"] == {"alertname": "HostDown", "severity": "critical", "host": "p510"}


def test_parse_alerts_host_from_instance_and_rejects_non_lists():
    (alert,) = parse_alerts([{"labels": {"alertname": "X", "instance": "p620:9100"}}])
    assert (alert["host"], alert["state"], alert["severity"]) == ("p620", "unknown", "")
    with pytest.raises(MonitoringStatusError, match=r"^URL answered dict, not a list of alerts$"):
        parse_alerts({"status": "success"}, "URL")


def test_summarize():
    summary = summarize(parse_targets(TARGETS), parse_alerts(ALERTS), parse_alertmanagers(ALERTMANAGERS))
    assert summary == {
        "targets_up": 3,
        "targets_down": 1,
        "targets_unknown": 1,
        "alerts_firing": 3,
        "alerts_suppressed": 1,
        "alertmanagers_active": 1,
    }


# --- table ---------------------------------------------------------------------


def test_format_table_aligns_columns_without_trailing_blanks():
    assert format_table(["A", "BB"], [["xxx", ""], ["y", "z"]]) == ["A   | BB", "----+---", "xxx", "y   | z"]


def test_render_table():
    table = render_table(parse_targets(TARGETS), parse_alerts(ALERTS), parse_alertmanagers(ALERTMANAGERS))
    error = TARGETS["data"]["activeTargets"][1]["lastError"]
    assert table == [
        "TARGETS: 3 up, 1 down, 1 unknown",
        "HOST    | JOB    | HEALTH  | LAST ERROR",
        "--------+--------+---------+-" + "-" * 72,
        "dex5550 | node   | up",
        "p510    | node   | down    | " + error[:69] + "...",
        "p510    | nzbget | up",
        "p620    | node   | up",
        "samsung | node   | unknown",
        "",
        "ALERTMANAGERS: http://127.0.0.1:9093/api/v2/alerts",
        "",
        "ALERTS: 3 firing, 1 suppressed",
        "ALERT        | HOST | SEVERITY | STATE      | SINCE",
        "-------------+------+----------+------------+---------------------",
        "HostDown     | p510 | critical | active     | 2024-05-01T09:58:00Z",
        "LowDiskSpace | p620 | warning  | active     | 2024-05-01T08:00:00Z",
        "HighCPUUsage | p510 | warning  | suppressed | 2024-05-01T09:50:00Z",
        "Watchdog     |      | none     | active     | 2024-05-01T09:58:00Z",
    ]
    assert len(error) > 72


def test_render_table_empty_and_multiline_errors():
    targets = parse_targets(
        {"status": "success", "data": {"activeTargets": [_target("node", "a:1", "down", error="line one\nline two")]}}
    )
    table = render_table(targets, [], [])
    assert table == [
        "TARGETS: 0 up, 1 down, 0 unknown",
        "HOST | JOB  | HEALTH | LAST ERROR",
        "-----+------+--------+------------------",
        "a    | node | down   | line one line two",
        "",
        "ALERTMANAGERS: none - Prometheus sends its alerts nowhere",
        "",
        "ALERTS: 0 firing, 0 suppressed",
        "no alerts",
    ]
    assert render_table([], [], [])[1] == "no active targets"


# --- collect -------------------------------------------------------------------


def test_collect_reads_the_three_apis():
    getter = FakeGetter(ROUTES)
    result = collect(getter, PROM + "/", AM)
    assert getter.asked == list(ROUTES)
    assert set(result) == {"targets", "alerts", "alertmanagers", "summary", "table", "warnings"}
    assert result["summary"]["targets_down"] == 1
    assert result["table"][0] == "TARGETS: 3 up, 1 down, 1 unknown"
    assert result["warnings"] == []


def test_collect_warns_without_alertmanagers():
    routes = dict(ROUTES)
    routes[PROM + "/api/v1/alertmanagers"] = {"status": "success", "data": {"activeAlertmanagers": []}}
    result = collect(FakeGetter(routes), PROM, AM)
    assert result["warnings"] == [
        "Prometheus has no active Alertmanager: its alerts reach nobody (check its alerting config)"
    ]


def test_collect_fails_naming_the_url():
    routes = dict(ROUTES)
    del routes[AM + "/api/v2/alerts"]
    with pytest.raises(MonitoringStatusError, match=re.escape("http://127.0.0.1:9093/api/v2/alerts")):
        collect(FakeGetter(routes), PROM, AM)


# --- JsonGetter ----------------------------------------------------------------


class FakeResponse(io.BytesIO):
    """Test double for an HTTP response: a readable, closable body."""


class FakeOpener:
    """Test double for open_url: returns ``body`` or raises ``error``; records the call."""

    def __init__(self, body=b"{}", error=None):
        self.body = body
        self.error = error
        self.calls = []

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if self.error is not None:
            raise self.error
        return FakeResponse(self.body)


class FakeConnectionError(Exception):
    """Test double for ansible.module_utils.urls.ConnectionError."""


def test_json_getter_passes_options_and_parses():
    opener = FakeOpener(json.dumps(ALERTS).encode())
    getter = JsonGetter(opener, timeout=3, validate_certs=False, use_proxy=False)
    assert getter("http://x/api") == ALERTS
    assert opener.calls == [
        (
            "http://x/api",
            {
                "method": "GET",
                "headers": {"Accept": "application/json"},
                "timeout": 3,
                "validate_certs": False,
                "use_proxy": False,
            },
        )
    ]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (URLError(ConnectionRefusedError(111, "Connection refused")), "cannot reach U: [Errno 111] Connection refused"),
        (HTTPError("U", 503, "Service Unavailable", {}, None), "U answered HTTP 503 Service Unavailable"),
        (TimeoutError("timed out"), "cannot reach U: timed out"),
        (FakeConnectionError("proxy said no"), "cannot reach U: proxy said no"),
    ],
)
def test_json_getter_errors_name_the_url(error, message):
    getter = JsonGetter(FakeOpener(error=error), errors=(FakeConnectionError,))
    with pytest.raises(MonitoringStatusError) as exc:
        getter("U")
    assert str(exc.value) == message


def test_json_getter_rejects_non_json():
    with pytest.raises(MonitoringStatusError, match=r"^U did not answer JSON: "):
        JsonGetter(FakeOpener(b"<html>"))("U")
