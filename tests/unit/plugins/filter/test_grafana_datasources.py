"""The grafana_datasources filter: Grafana's data source provisioning document."""

import copy

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_nice_yaml

from ansible_collections.homelab.nixos.plugins.filter.grafana_datasources import FilterModule
from ansible_collections.homelab.nixos.plugins.plugin_utils._grafana import (
    LOKI_UID,
    PROMETHEUS_UID,
    provisioning_problems,
)

grafana_datasources = FilterModule().filters()["grafana_datasources"]


def test_filter_is_registered():
    assert set(FilterModule().filters()) == {"grafana_datasources"}


def test_prometheus_only_by_default():
    doc = grafana_datasources("http://127.0.0.1:9090")
    assert doc == {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": "homelab-prometheus",
                "access": "proxy",
                "url": "http://127.0.0.1:9090",
                "isDefault": True,
                "editable": False,
                "jsonData": {"httpMethod": "POST", "prometheusType": "Prometheus", "timeInterval": "15s"},
            }
        ],
    }
    assert PROMETHEUS_UID == "homelab-prometheus"


def test_loki_only_when_asked():
    doc = grafana_datasources("http://dex5550:9090/", "http://dex5550:3100/")
    assert [(d["uid"], d["type"], d["url"], d["isDefault"]) for d in doc["datasources"]] == [
        ("homelab-prometheus", "prometheus", "http://dex5550:9090", True),
        ("homelab-loki", "loki", "http://dex5550:3100", False),
    ]
    assert LOKI_UID == "homelab-loki"


@pytest.mark.parametrize("loki_url", [None, ""])
def test_no_loki_for_null_or_empty_url(loki_url):
    doc = grafana_datasources("https://prometheus.example:9090", loki_url)
    assert [d["uid"] for d in doc["datasources"]] == ["homelab-prometheus"]


def test_exactly_one_default_and_read_only():
    doc = grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")
    assert [d["isDefault"] for d in doc["datasources"]].count(True) == 1
    assert all(d["editable"] is False and d["access"] == "proxy" for d in doc["datasources"])


def test_document_is_consistent_for_the_checker():
    doc = grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")
    assert provisioning_problems({}, doc) == []


def test_yaml_round_trip():
    doc = grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")
    assert yaml.safe_load(to_nice_yaml(doc)) == doc


def test_calls_do_not_share_state():
    first = grafana_datasources("http://127.0.0.1:9090")
    first["datasources"][0]["jsonData"]["timeInterval"] = "1h"
    second = grafana_datasources("http://127.0.0.1:9090")
    assert second["datasources"][0]["jsonData"]["timeInterval"] == "15s"
    assert copy.deepcopy(second) == second


def test_bad_urls_are_all_reported():
    with pytest.raises(AnsibleFilterError) as exc:
        grafana_datasources("ftp://127.0.0.1:9090", "dex5550:3100")
    message = str(exc.value)
    assert message.startswith("grafana_datasources: 2 problems:\n")
    assert "- prometheus_url must be an http(s) URL with a host, got 'ftp://127.0.0.1:9090'" in message
    assert "- loki_url must be an http(s) URL with a host, got 'dex5550:3100'" in message


@pytest.mark.parametrize("url", [None, "", 9090, "http://", "/prometheus"])
def test_prometheus_url_is_required(url):
    with pytest.raises(AnsibleFilterError, match="prometheus_url must be an http"):
        grafana_datasources(url)


def test_provisioning_problems_of_a_broken_document():
    doc = grafana_datasources("http://127.0.0.1:9090", "http://127.0.0.1:3100")
    doc["apiVersion"] = 2
    doc["datasources"][1]["isDefault"] = True
    doc["datasources"].append(dict(doc["datasources"][0]))
    doc["datasources"].append({"name": "Bad", "type": "prometheus", "uid": "has space"})
    problems = provisioning_problems({}, doc)
    assert problems == [
        "datasources: apiVersion must be 1, got 2",
        "datasource 'Prometheus': duplicate data source name",
        "datasource 'Prometheus': duplicate data source uid 'homelab-prometheus'",
        "datasource 'Bad': uid 'has space' may only hold letters, digits, '-' and '_'",
        "datasources: only one data source may be the default, got Prometheus, Loki, Prometheus",
    ]


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (None, "datasources: must be a provisioning document (a mapping), got NoneType"),
        ({"apiVersion": 1, "datasources": []}, "datasources: 'datasources' must be a non-empty list"),
        ({"apiVersion": 1, "datasources": ["x"]}, "datasources[0]: must be a mapping, got str"),
    ],
)
def test_provisioning_problems_of_malformed_documents(doc, problem):
    assert provisioning_problems({}, doc) == [problem]
