"""Prometheus exporter for Tautulli (Plex) and NZBGet, standard library only.

    python3 homelab_media_exporter.py --service tautulli --listen 0.0.0.0:9104 --url http://127.0.0.1:8181
    python3 homelab_media_exporter.py --service nzbget --listen 0.0.0.0:9103 --url http://127.0.0.1:6789 \
        --username nzbget

Neither service has an exporter packaged by Debian or nixpkgs, so the
monitoring_exporters role ships this one. Every scrape of /metrics asks the
service's API once (Tautulli ``get_activity``; NZBGet JSON-RPC ``status`` and
``history``) and answers with the metrics the homelab's media dashboard reads
(names that pass ``promtool check metrics``; sizes in bytes). When the service does
not answer, or refuses the key, ``<service>_up`` is 0 and the reason goes to
the journal, without the key.

The API key (Tautulli) or control password (NZBGet) comes from the systemd
credential ``secret`` (``LoadCredential=secret:<root-only file>``), read from
``$CREDENTIALS_DIRECTORY/secret``: never from the command line or the
environment, so it shows neither in the process list nor in ``systemctl show``.
"""

import argparse
import base64
import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT_SECONDS = 5
# NZBGet history statuses ("SUCCESS/ALL", "FAILURE/PAR", ...) by their first word.
NZBGET_HISTORY_STATUSES = ("success", "failure", "warning", "deleted")


class UpstreamError(Exception):
    """The service did not answer as expected; the message never contains the secret."""


def _number(value, what):
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise UpstreamError(f"{what} is not a number: {value!r}") from e


def _fetch_json(request, service):
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        raise UpstreamError(f"{service} answered HTTP {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UpstreamError(f"{service} is unreachable: {reason}") from e
    try:
        return json.loads(body)
    except ValueError as e:
        raise UpstreamError(f"{service} answered something that is not JSON") from e


def tautulli_samples(activity):
    """Samples [(name, labels, value)] from a Tautulli ``get_activity`` answer."""
    response = activity.get("response") if isinstance(activity, dict) else None
    if not isinstance(response, dict) or response.get("result") != "success":
        message = response.get("message") if isinstance(response, dict) else None
        raise UpstreamError(f"Tautulli refused get_activity: {message or 'no success result'}")
    data = response.get("data") or {}
    streams = (
        ("tautulli_streams", "stream_count"),
        ("tautulli_streams_direct_play", "stream_count_direct_play"),
        ("tautulli_streams_direct_stream", "stream_count_direct_stream"),
        ("tautulli_streams_transcode", "stream_count_transcode"),
    )
    samples = [(name, {}, _number(data.get(field, 0), field)) for name, field in streams]
    # Tautulli reports kbit/s; Prometheus' base unit is bytes per second.
    samples += [
        ("tautulli_bandwidth_bytes_per_second", {"network": network}, _number(data.get(field, 0), field) * 125)
        for network, field in (("lan", "lan_bandwidth"), ("wan", "wan_bandwidth"))
    ]
    return samples


def _nzbget_bytes(status, stem):
    """NZBGet reports 64-bit sizes as two 32-bit halves ``<stem>Lo`` and ``<stem>Hi``."""
    return _number(status.get(f"{stem}Hi", 0), f"{stem}Hi") * 2**32 + _number(status.get(f"{stem}Lo", 0), f"{stem}Lo")


def nzbget_samples(status, history):
    """Samples from NZBGet's JSON-RPC ``status`` and ``history`` results."""
    if not isinstance(status, dict) or not isinstance(history, list):
        raise UpstreamError("NZBGet answered status/history in an unexpected shape")
    samples = [
        ("nzbget_downloaded_bytes_total", {}, _nzbget_bytes(status, "DownloadedSize")),
        ("nzbget_queue_remaining_bytes", {}, _nzbget_bytes(status, "RemainingSize")),
        ("nzbget_disk_free_bytes", {}, _nzbget_bytes(status, "FreeDiskSpace")),
        ("nzbget_download_rate_bytes_per_second", {}, _number(status.get("DownloadRate", 0), "DownloadRate")),
        ("nzbget_download_limit_bytes_per_second", {}, _number(status.get("DownloadLimit", 0), "DownloadLimit")),
        ("nzbget_download_paused", {}, 1.0 if status.get("DownloadPaused") else 0.0),
        ("nzbget_post_jobs", {}, _number(status.get("PostJobCount", 0), "PostJobCount")),
        ("nzbget_uptime_seconds", {}, _number(status.get("UpTimeSec", 0), "UpTimeSec")),
    ]
    counts = dict.fromkeys(NZBGET_HISTORY_STATUSES, 0)
    for item in history:
        word = str(item.get("Status", "") if isinstance(item, dict) else "").split("/", 1)[0].lower()
        if word in counts:
            counts[word] += 1
    samples += [("nzbget_history_entries", {"status": word}, float(n)) for word, n in counts.items()]
    return samples


HELP = {
    "tautulli_up": ("gauge", "1 when Tautulli answered the last scrape with the configured API key"),
    "tautulli_streams": ("gauge", "Plex streams now"),
    "tautulli_streams_direct_play": ("gauge", "Plex streams played directly"),
    "tautulli_streams_direct_stream": ("gauge", "Plex streams direct-streamed"),
    "tautulli_streams_transcode": ("gauge", "Plex streams transcoded"),
    "tautulli_bandwidth_bytes_per_second": ("gauge", "Plex streaming bandwidth by network (lan, wan)"),
    "nzbget_up": ("gauge", "1 when NZBGet answered the last scrape with the configured password"),
    "nzbget_downloaded_bytes_total": ("counter", "Bytes NZBGet downloaded since it started"),
    "nzbget_queue_remaining_bytes": ("gauge", "Bytes left to download in the queue"),
    "nzbget_disk_free_bytes": ("gauge", "Free space on NZBGet's destination disk"),
    "nzbget_download_rate_bytes_per_second": ("gauge", "Current download rate"),
    "nzbget_download_limit_bytes_per_second": ("gauge", "Download speed limit (0: none)"),
    "nzbget_download_paused": ("gauge", "1 when downloading is paused"),
    "nzbget_post_jobs": ("gauge", "Jobs waiting for or in post-processing"),
    "nzbget_uptime_seconds": ("gauge", "Seconds since NZBGet started"),
    "nzbget_history_entries": ("gauge", "History entries by status"),
    "homelab_media_exporter_scrape_duration_seconds": ("gauge", "Time the last API call took"),
}


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples):
    """Prometheus text exposition format (0.0.4) for samples [(name, labels, value)]."""
    lines = []
    seen = set()
    for name, labels, value in samples:
        if name not in seen:
            seen.add(name)
            kind, text = HELP[name]
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
        number = "NaN" if math.isnan(value) else repr(float(value))
        lines.append(f"{name}{{{label_text}}} {number}" if label_text else f"{name} {number}")
    return "\n".join(lines) + "\n"


class Collector:
    """Asks one service's API and turns the answer into samples."""

    def __init__(self, service, url, secret, username=None):
        self.service = service
        self.url = url.rstrip("/")
        self.secret = secret
        self.username = username

    def _tautulli(self):
        query = urllib.parse.urlencode({"apikey": self.secret, "cmd": "get_activity"})
        return tautulli_samples(_fetch_json(f"{self.url}/api/v2?{query}", "Tautulli"))

    def _nzbget_call(self, method, params):
        body = json.dumps({"method": method, "params": params, "id": 1}).encode()
        token = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/jsonrpc",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        )
        answer = _fetch_json(request, "NZBGet")
        if not isinstance(answer, dict) or "result" not in answer:
            raise UpstreamError(f"NZBGet refused {method}: {answer.get('error') if isinstance(answer, dict) else ''}")
        return answer["result"]

    def _nzbget(self):
        return nzbget_samples(self._nzbget_call("status", []), self._nzbget_call("history", [False]))

    def collect(self):
        started = time.monotonic()
        try:
            samples = self._tautulli() if self.service == "tautulli" else self._nzbget()
            up = 1.0
        except UpstreamError as e:
            print(f"scrape failed: {e}", file=sys.stderr, flush=True)
            samples, up = [], 0.0
        duration = time.monotonic() - started
        return [
            (f"{self.service}_up", {}, up),
            *samples,
            ("homelab_media_exporter_scrape_duration_seconds", {"service": self.service}, duration),
        ]


def make_handler(collector):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?", 1)[0] == "/metrics":
                body = render(collector.collect()).encode()
                content_type = "text/plain; version=0.0.4; charset=utf-8"
                code = 200
            elif self.path == "/":
                body = b'<html><body><a href="/metrics">metrics</a></body></html>\n'
                content_type, code = "text/html", 200
            else:
                body, content_type, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            # One line per scrape would flood the journal.
            return

    return Handler


def read_secret(directory):
    """The credential ``secret`` from systemd's credentials directory."""
    if not directory:
        raise SystemExit("no $CREDENTIALS_DIRECTORY: run under systemd with LoadCredential=secret:<file>")
    try:
        with open(os.path.join(directory, "secret"), encoding="utf-8") as f:
            secret = f.read().strip()
    except OSError as e:
        raise SystemExit(f"cannot read the credential 'secret': {e.strerror}") from e
    if not secret:
        raise SystemExit("the credential 'secret' is empty")
    return secret


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Prometheus exporter for Tautulli and NZBGet")
    parser.add_argument("--service", choices=("tautulli", "nzbget"), required=True)
    parser.add_argument("--listen", required=True, help="address:port to serve /metrics on")
    parser.add_argument("--url", required=True, help="base URL of the service's web interface")
    parser.add_argument("--username", default="nzbget", help="NZBGet ControlUsername")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    host, _sep, port = args.listen.rpartition(":")
    secret = read_secret(os.environ.get("CREDENTIALS_DIRECTORY"))
    collector = Collector(args.service, args.url, secret, args.username)
    server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), make_handler(collector))
    print(f"{args.service} exporter on {args.listen}, asking {args.url}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
