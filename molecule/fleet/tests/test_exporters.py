"""monitoring_exporters as site.yml leaves it on a lab host (pytest-testinfra)."""


def test_node_exporter_serves_systemd_and_textfile_metrics(host):
    assert host.service("prometheus-node-exporter").is_running
    assert host.socket("tcp://0.0.0.0:9100").is_listening or host.socket("tcp://:::9100").is_listening
    metrics = host.check_output("curl -sf http://127.0.0.1:9100/metrics")
    assert "node_systemd_unit_state" in metrics
    assert "node_textfile_scrape_error 0" in metrics


def test_exporter_arguments_are_managed(host):
    conf = host.file("/etc/default/prometheus-node-exporter").content_string
    assert "--collector.systemd" in conf and "--collector.textfile.directory=" in conf
