"""monitoring_status against real HTTP servers on 127.0.0.1 serving fixture
API answers of Prometheus and Alertmanager (http.server in a thread)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.homelab.nixos.plugins.modules import monitoring_status

TARGETS = {
    "status": "success",
    "data": {
        "activeTargets": [
            {
                "labels": {"instance": "p620:9100", "job": "node", "host": "p620"},
                "scrapePool": "node",
                "scrapeUrl": "http://p620:9100/metrics",
                "lastError": "",
                "lastScrape": "2024-05-01T10:00:01.5Z",
                "health": "up",
            },
            {
                "labels": {"instance": "p510:9100", "job": "node", "host": "p510"},
                "scrapePool": "node",
                "scrapeUrl": "http://p510:9100/metrics",
                "lastError": "connect: connection refused",
                "lastScrape": "2024-05-01T10:00:02.5Z",
                "health": "down",
            },
        ],
        "droppedTargets": [],
    },
}
ALERTMANAGERS = {
    "status": "success",
    "data": {"activeAlertmanagers": [{"url": "http://127.0.0.1:9093/api/v2/alerts"}], "droppedAlertmanagers": []},
}
ALERTS = [
    {
        "labels": {"alertname": "HostDown", "host": "p510", "severity": "critical", "instance": "p510:9100"},
        "annotations": {"summary": "p510 is down"},
        "startsAt": "2024-05-01T09:58:00.000Z",
        "endsAt": "2024-05-01T10:08:00.000Z",
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "receivers": [{"name": "email"}],
        "fingerprint": "1",
    },
    {
        "labels": {"alertname": "HighCPUUsage", "host": "p510", "severity": "warning"},
        "annotations": {},
        "startsAt": "2024-05-01T09:50:00.000Z",
        "endsAt": "2024-05-01T10:08:00.000Z",
        "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": ["1"]},
        "receivers": [{"name": "email"}],
        "fingerprint": "2",
    },
]


class FixtureHandler(BaseHTTPRequestHandler):
    """Answers GET from the server's ``routes``: path (with query) -> (status, body)."""

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Accept")))
        if self.server.delay:
            time.sleep(self.server.delay)
        status, body = self.server.routes.get(self.path, (404, {"error": "not found"}))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, format, *args):
        pass


def _serve(routes):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
    server.daemon_threads = True
    server.routes = routes
    server.requests = []
    server.delay = 0
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def servers():
    """(prometheus, alertmanager): two fixture servers on random ports."""
    prometheus, prometheus_thread = _serve(
        {"/api/v1/targets?state=active": (200, TARGETS), "/api/v1/alertmanagers": (200, ALERTMANAGERS)}
    )
    alertmanager, alertmanager_thread = _serve({"/api/v2/alerts": (200, ALERTS)})
    yield prometheus, alertmanager
    for server, thread in ((prometheus, prometheus_thread), (alertmanager, alertmanager_thread)):
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _args(prometheus, alertmanager, **kw):
    args = {"prometheus_url": prometheus.url, "alertmanager_url": alertmanager.url + "/"}
    args.update(kw)
    return args


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_targets_alerts_and_table(run_module, servers, warnings, check_mode):
    prometheus, alertmanager = servers
    failed, result = run_module(monitoring_status.main, _args(prometheus, alertmanager), check_mode=check_mode)
    assert not failed, result
    assert result["changed"] is False
    assert [(t["host"], t["health"]) for t in result["targets"]] == [("p510", "down"), ("p620", "up")]
    assert result["targets"][0]["last_error"] == "connect: connection refused"
    assert [(a["alertname"], a["state"]) for a in result["alerts"]] == [
        ("HostDown", "active"),
        ("HighCPUUsage", "suppressed"),
    ]
    assert result["alertmanagers"] == [{"url": "http://127.0.0.1:9093/api/v2/alerts"}]
    assert result["summary"] == {
        "targets_up": 1,
        "targets_down": 1,
        "targets_unknown": 0,
        "alerts_firing": 1,
        "alerts_suppressed": 1,
        "alertmanagers_active": 1,
    }
    assert result["table"] == [
        "TARGETS: 1 up, 1 down, 0 unknown",
        "HOST | JOB  | HEALTH | LAST ERROR",
        "-----+------+--------+----------------------------",
        "p510 | node | down   | connect: connection refused",
        "p620 | node | up",
        "",
        "ALERTMANAGERS: http://127.0.0.1:9093/api/v2/alerts",
        "",
        "ALERTS: 1 firing, 1 suppressed",
        "ALERT        | HOST | SEVERITY | STATE      | SINCE",
        "-------------+------+----------+------------+---------------------",
        "HostDown     | p510 | critical | active     | 2024-05-01T09:58:00Z",
        "HighCPUUsage | p510 | warning  | suppressed | 2024-05-01T09:50:00Z",
    ]
    assert "warnings" not in result
    assert warnings == []
    assert prometheus.requests == [
        ("/api/v1/targets?state=active", "application/json"),
        ("/api/v1/alertmanagers", "application/json"),
    ]
    assert alertmanager.requests == [("/api/v2/alerts", "application/json")]


def test_warns_when_prometheus_has_no_alertmanager(run_module, servers, warnings):
    prometheus, alertmanager = servers
    prometheus.routes["/api/v1/alertmanagers"] = (200, {"status": "success", "data": {"activeAlertmanagers": []}})
    failed, result = run_module(monitoring_status.main, _args(prometheus, alertmanager))
    assert not failed, result
    assert result["summary"]["alertmanagers_active"] == 0
    assert "ALERTMANAGERS: none - Prometheus sends its alerts nowhere" in result["table"]
    assert warnings == ["Prometheus has no active Alertmanager: its alerts reach nobody (check its alerting config)"]


def test_unreachable_alertmanager_fails_naming_the_url(run_module, servers):
    prometheus = servers[0]
    url = "http://127.0.0.1:%d" % _free_port()
    failed, result = run_module(monitoring_status.main, {"prometheus_url": prometheus.url, "alertmanager_url": url})
    assert failed
    assert result["msg"].startswith("cannot reach %s/api/v2/alerts: " % url)
    assert "refused" in result["msg"].lower()


def test_unreachable_prometheus_fails_naming_the_url(run_module):
    url = "http://127.0.0.1:%d" % _free_port()
    failed, result = run_module(monitoring_status.main, {"prometheus_url": url, "alertmanager_url": url})
    assert failed
    assert result["msg"].startswith("cannot reach %s/api/v1/targets?state=active: " % url)


def test_http_error_fails_naming_the_url(run_module, servers):
    prometheus, alertmanager = servers
    alertmanager.routes["/api/v2/alerts"] = (503, {"error": "not ready"})
    failed, result = run_module(monitoring_status.main, _args(prometheus, alertmanager))
    assert failed
    assert result["msg"] == "%s/api/v2/alerts answered HTTP 503 Service Unavailable" % alertmanager.url


def test_wrong_server_fails_clearly(run_module, servers):
    alertmanager = servers[1]
    # Alertmanager's URL given for Prometheus: its answers are not Prometheus API objects.
    alertmanager.routes["/api/v1/targets?state=active"] = (200, b"<html>Alertmanager</html>")
    failed, result = run_module(
        monitoring_status.main, {"prometheus_url": alertmanager.url, "alertmanager_url": alertmanager.url}
    )
    assert failed
    assert result["msg"].startswith("%s/api/v1/targets?state=active did not answer JSON: " % alertmanager.url)


def test_prometheus_api_error_fails(run_module, servers):
    prometheus, alertmanager = servers
    prometheus.routes["/api/v1/alertmanagers"] = (200, {"status": "error", "error": "internal"})
    failed, result = run_module(monitoring_status.main, _args(prometheus, alertmanager))
    assert failed
    assert result["msg"] == "%s/api/v1/alertmanagers answered status 'error': internal" % prometheus.url


def test_timeout_fails_naming_the_url(run_module, servers):
    prometheus, alertmanager = servers
    prometheus.delay = 2
    failed, result = run_module(monitoring_status.main, _args(prometheus, alertmanager, timeout=1))
    assert failed
    assert result["msg"].startswith("cannot reach %s/api/v1/targets?state=active: " % prometheus.url)
    assert "timed out" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        (
            {"prometheus_url": "127.0.0.1:9090"},
            "prometheus_url must be an http:// or https:// URL, got '127.0.0.1:9090'",
        ),
    ],
)
def test_bad_parameters(run_module, args, message):
    failed, result = run_module(monitoring_status.main, args)
    assert failed
    assert result["msg"] == message
