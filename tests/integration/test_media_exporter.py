"""The media exporter (roles/monitoring_exporters/files/homelab_media_exporter.py)
run as a real process against the Tautulli/NZBGet TEST DOUBLE in
tests/doubles/media_api_double.py, its output linted by the real promtool.

The double stands in for services that cannot be installed here: these tests
prove the exporter's API calls, parsing, exposition format and secret
handling, not compatibility with a particular Tautulli or NZBGet release.
"""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location(
    "media_api_double", os.path.join(ROOT, "tests", "doubles", "media_api_double.py")
)
double = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(double)
EXPORTER = os.path.join(ROOT, "roles", "monitoring_exporters", "files", "homelab_media_exporter.py")
API_KEY = "tautulli-test-key-3f9a"
PASSWORD = "nzbget-test-password-81c2"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream():
    servers = []
    addresses = {}
    for name, handler in (("tautulli", double.tautulli_handler(API_KEY)), ("nzbget", double.nzbget_handler(PASSWORD))):
        address = f"127.0.0.1:{_free_port()}"
        server, _thread = double._serve(address, handler)
        servers.append(server)
        addresses[name] = f"http://{address}"
    yield addresses
    for server in servers:
        server.shutdown()


def _scrape(port, deadline=10):
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def _samples(text):
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@pytest.fixture
def run_exporter(tmp_path):
    processes = []

    def run(service, url, secret):
        credentials = tmp_path / f"credentials-{service}"
        credentials.mkdir()
        (credentials / "secret").write_text(secret + "\n")
        port = _free_port()
        env = {"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(credentials), "LC_ALL": "C.UTF-8"}
        process = subprocess.Popen(
            [sys.executable, EXPORTER, "--service", service, "--listen", f"127.0.0.1:{port}", "--url", url],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process, port

    yield run
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _promtool_lint(text):
    promtool = shutil.which("promtool")
    if not promtool:
        if os.environ.get("HOMELAB_ALLOW_NO_PROMTOOL") == "1":
            pytest.skip("promtool not installed")
        pytest.fail("promtool not found (scripts/setup-controller.sh unpacks it into .cache/tools)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_tautulli_metrics_from_the_api(upstream, run_exporter):
    _process, port = run_exporter("tautulli", upstream["tautulli"], API_KEY)
    text = _scrape(port)
    values = _samples(text)
    assert values["tautulli_up"] == 1
    assert values["tautulli_streams"] == 3
    assert values["tautulli_streams_transcode"] == 1
    assert values['tautulli_bandwidth_bytes_per_second{network="lan"}'] == 12000 * 125
    assert values['tautulli_bandwidth_bytes_per_second{network="wan"}'] == 4000 * 125
    _promtool_lint(text)


def test_nzbget_metrics_from_the_api(upstream, run_exporter):
    _process, port = run_exporter("nzbget", upstream["nzbget"], PASSWORD)
    text = _scrape(port)
    values = _samples(text)
    assert values["nzbget_up"] == 1
    assert values["nzbget_downloaded_bytes_total"] == 2**32 + 5
    assert values["nzbget_disk_free_bytes"] == 100 * 2**32
    assert values["nzbget_post_jobs"] == 2
    assert values['nzbget_history_entries{status="success"}'] == 2
    assert values['nzbget_history_entries{status="failure"}'] == 1
    assert values['nzbget_history_entries{status="deleted"}'] == 0
    _promtool_lint(text)


@pytest.mark.parametrize("service", ["tautulli", "nzbget"])
def test_a_wrong_secret_is_down_and_never_logged(upstream, run_exporter, service):
    wrong = f"wrong-{service}-secret-5d1e"
    process, port = run_exporter(service, upstream[service], wrong)
    values = _samples(_scrape(port))
    assert values[f"{service}_up"] == 0
    assert not any(name.startswith(f"{service}_") and name != f"{service}_up" for name in values)
    process.terminate()
    _stdout, stderr = process.communicate(timeout=10)
    assert "scrape failed" in stderr
    assert wrong not in stderr


def test_an_unreachable_service_is_down(run_exporter):
    _process, port = run_exporter("tautulli", f"http://127.0.0.1:{_free_port()}", API_KEY)
    assert _samples(_scrape(port))["tautulli_up"] == 0


def test_no_credential_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, EXPORTER, "--service", "tautulli", "--listen", "127.0.0.1:0", "--url", "http://127.0.0.1:1"],
        env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "cannot read the credential 'secret'" in result.stderr
