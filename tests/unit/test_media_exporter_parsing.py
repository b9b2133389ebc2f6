"""The media exporter's parsing and exposition (roles/monitoring_exporters/files/homelab_media_exporter.py)."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location(
    "homelab_media_exporter", os.path.join(ROOT, "roles", "monitoring_exporters", "files", "homelab_media_exporter.py")
)
exporter = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(exporter)


def _activity(result="success", **data):
    return {"response": {"result": result, "message": None if result == "success" else "Invalid apikey", "data": data}}


def test_tautulli_counts_and_bandwidth_in_bytes():
    samples = dict(
        ((name, tuple(sorted(labels.items()))), value)
        for name, labels, value in exporter.tautulli_samples(
            _activity(stream_count="2", stream_count_transcode=1, lan_bandwidth=8000, wan_bandwidth="0")
        )
    )
    assert samples[("tautulli_streams", ())] == 2
    assert samples[("tautulli_streams_transcode", ())] == 1
    assert samples[("tautulli_streams_direct_play", ())] == 0
    assert samples[("tautulli_bandwidth_bytes_per_second", (("network", "lan"),))] == 1_000_000
    assert samples[("tautulli_bandwidth_bytes_per_second", (("network", "wan"),))] == 0


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_activity("error"), "Invalid apikey"),
        ({"unexpected": True}, "no success result"),
        ([], "no success result"),
        (_activity(stream_count="many"), "stream_count is not a number"),
    ],
)
def test_tautulli_errors(answer, message):
    with pytest.raises(exporter.UpstreamError, match=message):
        exporter.tautulli_samples(answer)


def test_nzbget_joins_64_bit_halves_and_counts_history():
    status = {"DownloadedSizeLo": 7, "DownloadedSizeHi": 2, "FreeDiskSpaceLo": 0, "FreeDiskSpaceHi": 1}
    history = [{"Status": "SUCCESS/ALL"}, {"Status": "WARNING/SCRIPT"}, {"Status": "DELETED/MANUAL"}, {"Status": "?"}]
    samples = {(name, labels.get("status")): value for name, labels, value in exporter.nzbget_samples(status, history)}
    assert samples[("nzbget_downloaded_bytes_total", None)] == 2 * 2**32 + 7
    assert samples[("nzbget_disk_free_bytes", None)] == 2**32
    assert samples[("nzbget_download_paused", None)] == 0
    history_counts = [samples[("nzbget_history_entries", s)] for s in ("success", "failure", "warning", "deleted")]
    assert history_counts == [1, 0, 1, 1]


def test_nzbget_unexpected_shape():
    with pytest.raises(exporter.UpstreamError, match="unexpected shape"):
        exporter.nzbget_samples([], [])


def test_render_declares_each_metric_once_and_escapes_labels():
    text = exporter.render(
        [
            ("nzbget_history_entries", {"status": 'a"b\\c'}, 1.0),
            ("nzbget_history_entries", {"status": "x"}, 2.0),
            ("nzbget_up", {}, 1.0),
        ]
    )
    assert text.count("# TYPE nzbget_history_entries gauge") == 1
    assert 'nzbget_history_entries{status="a\\"b\\\\c"} 1.0' in text
    assert text.endswith("nzbget_up 1.0\n")


def test_an_empty_credential_is_refused(tmp_path):
    (tmp_path / "secret").write_text("\n")
    with pytest.raises(SystemExit, match="empty"):
        exporter.read_secret(str(tmp_path))
    with pytest.raises(SystemExit, match="CREDENTIALS_DIRECTORY"):
        exporter.read_secret(None)
