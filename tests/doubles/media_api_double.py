"""TEST DOUBLE: a fake Tautulli and NZBGet API for the media exporter tests.

Neither Tautulli nor NZBGet can be installed on this machine (no package, no
registry), so the exporter is tested against this stand-in. It answers only
the calls the exporter makes (Tautulli ``/api/v2?cmd=get_activity``, NZBGet
``/jsonrpc`` ``status`` and ``history``), with the fixed figures in ACTIVITY,
STATUS and HISTORY, and it refuses a wrong API key or password the way the
real services do. Passing against it proves the exporter's parsing and
deployment, not compatibility with every Tautulli or NZBGet release.

    python3 media_api_double.py --tautulli 127.0.0.1:8181 --nzbget 127.0.0.1:6789 \
        --secret-file /path/with/key-and-password
(the file holds two lines: the Tautulli API key, then the NZBGet password)
"""

import argparse
import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACTIVITY = {
    "stream_count": "3",
    "stream_count_direct_play": 1,
    "stream_count_direct_stream": 1,
    "stream_count_transcode": 1,
    "total_bandwidth": 16000,
    "lan_bandwidth": 12000,
    "wan_bandwidth": 4000,
    "sessions": [],
}
STATUS = {
    "DownloadedSizeLo": 5,
    "DownloadedSizeHi": 1,
    "RemainingSizeLo": 1048576,
    "RemainingSizeHi": 0,
    "FreeDiskSpaceLo": 0,
    "FreeDiskSpaceHi": 100,
    "DownloadRate": 2500000,
    "DownloadLimit": 0,
    "DownloadPaused": False,
    "PostJobCount": 2,
    "UpTimeSec": 3600,
}
HISTORY = [{"Status": "SUCCESS/ALL"}, {"Status": "SUCCESS/UNPACK"}, {"Status": "FAILURE/PAR"}]


def _send(handler, code, document):
    body = json.dumps(document).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def tautulli_handler(api_key):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path != "/api/v2":
                return _send(self, 404, {})
            if query.get("apikey") != [api_key]:
                return _send(self, 200, {"response": {"result": "error", "message": "Invalid apikey", "data": {}}})
            if query.get("cmd") != ["get_activity"]:
                return _send(self, 200, {"response": {"result": "error", "message": "Unknown command", "data": {}}})
            return _send(self, 200, {"response": {"result": "success", "message": None, "data": ACTIVITY}})

        def log_message(self, format, *args):
            return

    return Handler


def nzbget_handler(password):
    expected = "Basic " + base64.b64encode(f"nzbget:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/jsonrpc":
                return _send(self, 404, {})
            if self.headers.get("Authorization") != expected:
                return _send(self, 401, {})
            call = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            results = {"status": STATUS, "history": HISTORY}
            if call.get("method") not in results:
                return _send(self, 200, {"version": "1.1", "error": {"name": "JSONRPCError", "code": 1}})
            return _send(self, 200, {"version": "1.1", "id": call.get("id"), "result": results[call["method"]]})

        def log_message(self, format, *args):
            return

    return Handler


def _serve(address, handler):
    host, _sep, port = address.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tautulli", required=True)
    parser.add_argument("--nzbget", required=True)
    parser.add_argument("--secret-file", required=True)
    args = parser.parse_args()
    with open(args.secret_file, encoding="utf-8") as f:
        api_key, password = f.read().split("\n")[:2]
    _serve(args.tautulli, tautulli_handler(api_key))
    _server, thread = _serve(args.nzbget, nzbget_handler(password))
    thread.join()


if __name__ == "__main__":
    main()
