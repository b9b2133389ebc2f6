# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana provisioning for the monitoring server: data sources, dashboards and a checker.

Controller-only. Dashboards are built in code with Grafana's own
``grafana-foundation-sdk`` (its builder API, serialised with its
``JSONEncoder``), never pasted JSON. The SDK import is guarded: this module
imports without it (ansible-test's sanity environments lack it) and
``require_sdk()`` raises ``GrafanaError`` naming the pip pin when a dashboard is
asked for. ``datasources_document()`` and ``provisioning_problems()`` work on
plain data and need no SDK.

Every series is selected by the ``host`` label (``HOST_LABEL``): the inventory
name of the host, which the scrape configuration attaches to each target and the
textfile metrics carry themselves (docs/MONITORING_DESIGN.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible_collections.homelab.nixos.plugins.module_utils._features import HOST_KINDS

try:
    from grafana_foundation_sdk.builders import common as sdk_common
    from grafana_foundation_sdk.builders import dashboard as sdk_dashboard
    from grafana_foundation_sdk.builders import prometheus as sdk_prometheus
    from grafana_foundation_sdk.builders import stat as sdk_stat
    from grafana_foundation_sdk.builders import table as sdk_table
    from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder as SdkJSONEncoder
    from grafana_foundation_sdk.models import common as sdk_common_models
    from grafana_foundation_sdk.models import dashboard as sdk_models
    from grafana_foundation_sdk.models import prometheus as sdk_prometheus_models
except ImportError as e:
    SDK_IMPORT_ERROR = e
else:
    SDK_IMPORT_ERROR = None

# The SDK release this code is written against: the newest one generated for Grafana 11.6. Its
# version carries a PEP 440 epoch, so only an exact pin is safe: an unpinned install takes the
# highest epoch, whichever Grafana version that release targets.
SDK_PIN = "grafana-foundation-sdk==1769699379!11.6.0"

PROMETHEUS_UID = "homelab-prometheus"
LOKI_UID = "homelab-loki"
HOST_LABEL = "host"
GPU_VENDORS = ("amd", "nvidia")
CPU_VENDORS = ("amd", "intel", "other")
MEDIA_ROLE = "media"
HOST_KEYS = ("name", "kind", "gpu", "cpu", "roles")

FLEET_UID = "homelab-fleet"
MEDIA_UID = "homelab-media"
BACKUPS_UID = "homelab-backups"
HOST_UID_PREFIX = "homelab-host-"
TAG = "homelab"

# Grafana refuses uids longer than this, or with other characters.
UID_MAX_LENGTH = 40
_UID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Data sources built into Grafana: a reference may name them without provisioning.
BUILTIN_DATASOURCE_UIDS = frozenset(("grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"))
# Panel types that show no query results and so need no targets.
PANEL_TYPES_WITHOUT_TARGETS = frozenset(("row", "text", "news", "dashlist", "annolist", "welcome"))

# Label matchers shared by the panels (PromQL, inside a selector).
_FS = 'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|autofs|fuse\\\\..*",mountpoint!~"/run.*"'
_NET = 'device!~"lo|veth.*|docker.*|br-.*|virbr.*|cni.*|flannel.*"'
_MEDIA_UNITS = 'name=~"(plex|plexmediaserver|tautulli|nzbget|sonarr|radarr|lidarr|prowlarr).*[.]service"'

UP_MAPPING = {"0": ("DOWN", "red"), "1": ("UP", "green")}
YES_NO_MAPPING = {"0": ("no", "green"), "1": ("yes", "orange")}
OK_FAILED_MAPPING = {"0": ("FAILED", "red"), "1": ("OK", "green")}


class GrafanaError(ValueError):
    """Input that cannot become Grafana provisioning; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} problem{plural}:\n{listing}")


def require_sdk():
    """Raise GrafanaError when grafana-foundation-sdk cannot be imported."""
    if SDK_IMPORT_ERROR is not None:
        raise GrafanaError(
            [f"grafana-foundation-sdk is required on the controller: pip install '{SDK_PIN}' ({SDK_IMPORT_ERROR})"]
        )


def uid_problem(uid, what="uid"):
    """Why ``uid`` is not a valid Grafana uid, or None when it is."""
    if not isinstance(uid, str) or not uid:
        return f"{what} must be a non-empty string, got {uid!r}"
    if len(uid) > UID_MAX_LENGTH:
        return f"{what} '{uid}' is longer than {UID_MAX_LENGTH} characters"
    if not _UID_RE.match(uid):
        return f"{what} '{uid}' may only hold letters, digits, '-' and '_'"
    return None


# --- data sources ---------------------------------------------------------------------------------


def _url_problem(url, what):
    if not isinstance(url, str) or not url:
        return f"{what} must be an http(s) URL, got {url!r}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{what} must be an http(s) URL with a host, got '{url}'"
    return None


def datasources_document(prometheus_url, loki_url=None):
    """Grafana's data source provisioning document.

    Prometheus (uid ``PROMETHEUS_UID``, the default) always; Loki (uid
    ``LOKI_UID``) only when ``loki_url`` is given (None or "" leave it out).
    """
    problems = [_url_problem(prometheus_url, "prometheus_url")]
    with_loki = loki_url not in (None, "")
    if with_loki:
        problems.append(_url_problem(loki_url, "loki_url"))
    problems = [p for p in problems if p]
    if problems:
        raise GrafanaError(problems)
    datasources = [
        {
            "name": "Prometheus",
            "type": "prometheus",
            "uid": PROMETHEUS_UID,
            "access": "proxy",
            "url": prometheus_url.rstrip("/"),
            "isDefault": True,
            "editable": False,
            "jsonData": {"httpMethod": "POST", "prometheusType": "Prometheus", "timeInterval": "15s"},
        }
    ]
    if with_loki:
        datasources.append(
            {
                "name": "Loki",
                "type": "loki",
                "uid": LOKI_UID,
                "access": "proxy",
                "url": loki_url.rstrip("/"),
                "isDefault": False,
                "editable": False,
                "jsonData": {"maxLines": 1000},
            }
        )
    return {"apiVersion": 1, "datasources": datasources}


# --- hosts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """One host as the dashboards see it."""

    name: str
    kind: str
    gpus: tuple
    cpu: str
    roles: tuple

    @property
    def slug(self):
        """The name made safe for a file name and a uid."""
        return re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def uid(self):
        """``homelab-host-<name>``; names too long for a uid are cut and given a hash suffix."""
        uid = HOST_UID_PREFIX + self.slug
        if len(uid) > UID_MAX_LENGTH:
            digest = hashlib.sha256(self.name.encode("utf-8")).hexdigest()[:8]
            uid = uid[: UID_MAX_LENGTH - 9] + "-" + digest
        return uid

    @property
    def filename(self):
        return f"host-{self.slug}.json"


def _names(value, what, problems):
    """A list of names from a list of strings or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    problems.append(f"{what} must be a list of names or a comma-separated string, got {value!r}")
    return []


def _parse_host(index, entry, problems):
    if not isinstance(entry, Mapping):
        problems.append(f"hosts[{index}] must be a mapping, got {type(entry).__name__}")
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"hosts[{index}] needs a name, got {name!r}")
        return None
    where = f"host '{name}'"
    extra = sorted((str(key) for key in entry if key not in HOST_KEYS), key=str)
    if extra:
        problems.append(f"{where} has unknown keys {', '.join(extra)} (known: {', '.join(HOST_KEYS)})")
    kind = entry.get("kind")
    if kind not in HOST_KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {', '.join(HOST_KINDS)}")
    gpus = _names(entry.get("gpu", "none"), f"{where}: gpu", problems)
    unknown = [g for g in gpus if g not in (*GPU_VENDORS, "none")]
    if unknown:
        problems.append(f"{where}: gpu {', '.join(unknown)} is not amd, nvidia or none")
    if "none" in gpus and len(set(gpus)) > 1:
        problems.append(f"{where}: gpu 'none' cannot be combined with a GPU vendor")
    cpu = entry.get("cpu", "other")
    if cpu not in CPU_VENDORS:
        problems.append(f"{where}: cpu {cpu!r} is not one of {', '.join(CPU_VENDORS)}")
    roles = _names(entry.get("roles"), f"{where}: roles", problems)
    return Host(
        name=name,
        kind=kind,
        gpus=tuple(vendor for vendor in GPU_VENDORS if vendor in gpus),
        cpu=cpu,
        roles=tuple(sorted(set(roles) - {"none"})),
    )


def parse_hosts(hosts):
    """The hosts as ``Host`` objects sorted by name; GrafanaError listing every problem otherwise.

    Each host is a mapping ``{name, kind, gpu, cpu, roles}``: ``gpu`` is amd,
    nvidia, none or a list / comma-separated string of vendors (default none),
    ``cpu`` amd, intel or other (default other), ``roles`` a list or a
    comma-separated string (default none; "none" as in the ``roles`` label is
    no role).
    """
    if not isinstance(hosts, (list, tuple)):
        raise GrafanaError([f"hosts must be a list of mappings, got {type(hosts).__name__}"])
    problems = []
    parsed = [host for host in (_parse_host(i, entry, problems) for i, entry in enumerate(hosts)) if host]
    by_uid = {}
    for host in parsed:
        by_uid.setdefault(host.uid, []).append(host.name)
    for uid, names in by_uid.items():
        if len(names) > 1:
            problems.append(f"hosts {', '.join(repr(n) for n in names)} would share the dashboard uid '{uid}'")
    if problems:
        raise GrafanaError(problems)
    return sorted(parsed, key=lambda host: host.name)


# --- building blocks ------------------------------------------------------------------------------


def _sel(*matchers):
    """A label selector on the dashboard's ``host`` variable plus ``matchers``."""
    return "{" + ",".join((f'{HOST_LABEL}=~"$host"', *matchers)) + "}"


def _q(expr, legend=None, *, instant=False, table=False):
    """A Prometheus query; the board sets its refId and data source."""
    query = sdk_prometheus.Dataquery().expr(expr)
    if legend:
        query.legend_format(legend)
    if instant:
        query.instant()
    if table:
        query.format(sdk_prometheus_models.PromQueryFormat.TABLE)
    return query


class _Board:
    """A dashboard that numbers its panels and points every panel and query at one data source."""

    def __init__(self, title, uid, datasource_uid, tags, description):
        self.ds = sdk_models.DataSourceRef(type_val="prometheus", uid=datasource_uid)
        self.next_id = 1
        self.builder = (
            sdk_dashboard.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG, *tags])
            .editable()
            .refresh("1m")
            .time("now-6h", "now")
            .timezone("browser")
            .tooltip(sdk_models.DashboardCursorSync.CROSSHAIR)
            .annotation(
                sdk_dashboard.AnnotationQuery()
                .name("Annotations & Alerts")
                .datasource(sdk_models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                .enable(True)
                .hide(True)
                .icon_color("rgba(0, 211, 255, 1)")
                .type("dashboard")
                .built_in(1)
            )
            .link(
                sdk_dashboard.DashboardLink("Homelab dashboards")
                .type(sdk_models.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .keep_time(True)
            )
        )

    def _take_id(self):
        panel_id = self.next_id
        self.next_id += 1
        return panel_id

    def variable(self, variable):
        self.builder.with_variable(variable)

    def row(self, title):
        self.builder.with_row(sdk_dashboard.Row(title).id(self._take_id()))

    def panel(self, panel, targets, *, width=12, height=8, description=None):
        panel.id(self._take_id()).datasource(self.ds).span(width).height(height)
        if description:
            panel.description(description)
        for index, target in enumerate(targets):
            panel.with_target(target.ref_id(chr(ord("A") + index)).datasource(self.ds))
        self.builder.with_panel(panel)

    def build(self):
        """The dashboard as plain JSON data (dicts, lists, strings, numbers, booleans)."""
        return json.loads(json.dumps(self.builder.build(), cls=SdkJSONEncoder))


def _thresholds(*steps):
    """Absolute thresholds from ``(color, value)`` pairs; the first is the base (value None)."""
    return (
        sdk_dashboard.ThresholdsConfig()
        .mode(sdk_models.ThresholdsMode.ABSOLUTE)
        .steps([sdk_models.Threshold(value=value, color=color) for color, value in steps])
    )


def _timeseries(title, unit, *, stacked=False, min_val=None, max_val=None, thresholds=None):
    panel = (
        sdk_timeseries.Panel()
        .title(title)
        .unit(unit)
        .line_width(1)
        .fill_opacity(30 if stacked else 10)
        .show_points(sdk_common_models.VisibilityMode.NEVER)
        .legend(
            sdk_common.VizLegendOptions()
            .display_mode(sdk_common_models.LegendDisplayMode.TABLE)
            .placement(sdk_common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(sdk_common.VizTooltipOptions().mode(sdk_common_models.TooltipDisplayMode.MULTI))
    )
    if stacked:
        panel.stacking(sdk_common.StackingConfig().mode(sdk_common_models.StackingMode.NORMAL))
    if min_val is not None:
        panel.min(min_val)
    if max_val is not None:
        panel.max(max_val)
    if thresholds:
        panel.thresholds(_thresholds(*thresholds)).thresholds_style(
            sdk_common.GraphThresholdsStyleConfig().mode(sdk_common_models.GraphThresholdsStyleMode.LINE)
        )
    return panel


def _stat(title, unit="none", *, thresholds=(("green", None),), mapping=None, no_value=None, names=False):
    panel = (
        sdk_stat.Panel()
        .title(title)
        .unit(unit)
        .color_mode(sdk_common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(sdk_common_models.BigValueGraphMode.NONE)
        .text_mode(
            sdk_common_models.BigValueTextMode.VALUE_AND_NAME if names else sdk_common_models.BigValueTextMode.AUTO
        )
        .reduce_options(sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(_thresholds(*thresholds))
    )
    if mapping:
        options = {
            value: sdk_models.ValueMappingResult(text=text, color=color, index=index)
            for index, (value, (text, color)) in enumerate(mapping.items())
        }
        panel.mappings([sdk_models.ValueMap(options=options)])
    if no_value:
        panel.no_value(no_value)
    return panel


def _table(title, unit="none"):
    """A table of an instant query's series, one row each, without the time column."""
    return (
        sdk_table.Panel()
        .title(title)
        .unit(unit)
        .with_transformation(
            sdk_models.DataTransformerConfig(
                id_val="organize", options={"excludeByName": {"Time": True, "__name__": True}}
            )
        )
    )


def _hwmon_temperatures(chip_name=None):
    """hwmon temperatures labelled with their chip's name, optionally only that chip's."""
    names = _sel(f'chip_name="{chip_name}"') if chip_name else _sel()
    return f"node_hwmon_temp_celsius{_sel()} * on(instance, chip) group_left(chip_name) node_hwmon_chip_names{names}"


def _host_choice(names):
    """A multi-value ``host`` variable listing the given inventory hosts, all selected by default.

    Listing the inventory (not ``label_values``) keeps a host that Prometheus
    never scraped on screen, as "not scraped".
    """
    return (
        sdk_dashboard.CustomVariable("host")
        .label("Host")
        .values(",".join(names))
        .multi(True)
        .include_all(True)
        .current(sdk_models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


# --- dashboards -----------------------------------------------------------------------------------


def fleet_dashboard(hosts, datasource_uid):
    """Fleet overview: up per host, firing alerts, CPU, memory, disk and network of every host."""
    board = _Board(
        "Homelab fleet overview",
        FLEET_UID,
        datasource_uid,
        ["fleet"],
        "Every inventory host: reachability, firing alerts, CPU, memory, disk and network.",
    )
    board.variable(_host_choice([host.name for host in hosts]))
    board.row("Hosts")
    board.panel(
        _stat("$host", mapping=UP_MAPPING, no_value="not scraped", thresholds=(("red", None), ("green", 1)))
        .repeat("host")
        .repeat_direction("h")
        .max_per_row(6),
        [_q(f"min(up{_sel()})", instant=True)],
        width=4,
        height=3,
        description="UP when every scrape target of the host answers; 'not scraped' when Prometheus has "
        "no target for it (the host is missing from the scrape configuration).",
    )
    board.row("Alerts")
    board.panel(
        _stat("Firing alerts", thresholds=(("green", None), ("red", 1))),
        [_q('count(ALERTS{alertstate="firing"}) or vector(0)', instant=True)],
        width=6,
        height=6,
        description="Alerts Prometheus is firing now, on every host.",
    )
    board.panel(
        _stat("Hosts needing a reboot", thresholds=(("green", None), ("orange", 1))),
        [_q(f"sum(homelab_nixos_reboot_required{_sel()}) or vector(0)", instant=True)],
        width=6,
        height=6,
        description="NixOS hosts whose running system differs from the booted one (homelab_nixos_reboot_required).",
    )
    board.panel(
        _table("Firing alerts"),
        [_q('ALERTS{alertstate="firing"}', instant=True, table=True)],
        width=12,
        height=6,
    )
    board.row("Resources")
    idle = _sel('mode="idle"')
    board.panel(
        _timeseries("CPU usage", "percent", min_val=0, max_val=100, thresholds=(("green", None), ("red", 80))),
        [
            _q(
                f"100 * (1 - avg by ({HOST_LABEL}) (rate(node_cpu_seconds_total{idle}[$__rate_interval])))",
                "{{host}}",
            )
        ],
    )
    board.panel(
        _timeseries("Memory usage", "percent", min_val=0, max_val=100, thresholds=(("green", None), ("red", 90))),
        [
            _q(
                f"100 * (1 - sum by ({HOST_LABEL}) (node_memory_MemAvailable_bytes{_sel()})"
                f" / sum by ({HOST_LABEL}) (node_memory_MemTotal_bytes{_sel()}))",
                "{{host}}",
            )
        ],
    )
    board.panel(
        _timeseries(
            "Fullest file system", "percent", min_val=0, max_val=100, thresholds=(("green", None), ("red", 85))
        ),
        [
            _q(
                f"100 * max by ({HOST_LABEL}) (1 - node_filesystem_avail_bytes{_sel(_FS)}"
                f" / node_filesystem_size_bytes{_sel(_FS)})",
                "{{host}}",
            )
        ],
    )
    board.panel(
        _timeseries("Network traffic (received up, sent down)", "Bps"),
        [
            _q(
                f"sum by ({HOST_LABEL}) (rate(node_network_receive_bytes_total{_sel(_NET)}[$__rate_interval]))",
                "{{host}} received",
            ),
            _q(
                f"-sum by ({HOST_LABEL}) (rate(node_network_transmit_bytes_total{_sel(_NET)}[$__rate_interval]))",
                "{{host}} sent",
            ),
        ],
    )
    return board.build()


def _status_panels(board):
    failed = _sel('state="failed"')
    board.row("Status")
    board.panel(
        _stat("Up", mapping=UP_MAPPING, no_value="not scraped", thresholds=(("red", None), ("green", 1))),
        [_q(f"min(up{_sel()})", instant=True)],
        width=4,
        height=4,
    )
    board.panel(
        _stat("Uptime", "dtdurations"),
        [_q(f"time() - node_boot_time_seconds{_sel()}", instant=True)],
        width=4,
        height=4,
    )
    board.panel(
        _stat("Failed systemd units", thresholds=(("green", None), ("red", 1))),
        [_q(f"count(node_systemd_unit_state{failed} == 1) or vector(0)", instant=True)],
        width=4,
        height=4,
    )
    board.panel(
        _stat("NixOS generation", no_value="n/a"),
        [_q(f"homelab_nixos_generation{_sel()}", instant=True)],
        width=4,
        height=4,
    )
    board.panel(
        _stat(
            "NixOS generation age",
            "dtdurations",
            no_value="n/a",
            thresholds=(("green", None), ("orange", 30 * 86400), ("red", 90 * 86400)),
        ),
        [_q(f"time() - homelab_nixos_generation_timestamp_seconds{_sel()}", instant=True)],
        width=4,
        height=4,
        description="Time since the current NixOS generation was built (homelab_nixos_generation_timestamp_seconds).",
    )
    board.panel(
        _stat("Reboot required", mapping=YES_NO_MAPPING, no_value="n/a", thresholds=(("green", None), ("orange", 1))),
        [_q(f"max(homelab_nixos_reboot_required{_sel()})", instant=True)],
        width=4,
        height=4,
        description="The booted kernel, initrd or kernel modules differ from the current generation.",
    )
    board.panel(
        _table("Failed systemd units"),
        [_q(f"node_systemd_unit_state{failed} == 1", instant=True, table=True)],
        width=24,
        height=5,
        description="From node exporter's systemd collector.",
    )


def _resource_panels(board):
    board.row("CPU and memory")
    not_idle = _sel('mode!="idle"')
    idle = _sel('mode="idle"')
    board.panel(
        _timeseries("CPU usage by mode", "percent", stacked=True, min_val=0, max_val=100),
        [
            _q(
                f"100 * sum by (mode) (rate(node_cpu_seconds_total{not_idle}[$__rate_interval]))"
                f" / scalar(count(node_cpu_seconds_total{idle}))",
                "{{mode}}",
            )
        ],
    )
    board.panel(
        _timeseries("Load average", "short", min_val=0),
        [
            _q(f"node_load1{_sel()}", "1 minute"),
            _q(f"node_load5{_sel()}", "5 minutes"),
            _q(f"node_load15{_sel()}", "15 minutes"),
            _q(f"count(node_cpu_seconds_total{idle})", "CPUs"),
        ],
    )
    board.panel(
        _timeseries("Memory", "bytes", stacked=True, min_val=0),
        [
            _q(f"node_memory_MemTotal_bytes{_sel()} - node_memory_MemAvailable_bytes{_sel()}", "used"),
            _q(
                f"node_memory_Cached_bytes{_sel()} + node_memory_Buffers_bytes{_sel()}",
                "cache and buffers",
            ),
            _q(f"node_memory_MemFree_bytes{_sel()}", "free"),
        ],
    )
    board.panel(
        _timeseries("Swap (including zram)", "bytes", min_val=0),
        [
            _q(f"node_memory_SwapTotal_bytes{_sel()} - node_memory_SwapFree_bytes{_sel()}", "used"),
            _q(f"node_memory_SwapTotal_bytes{_sel()}", "total"),
        ],
    )
    board.row("Disk and network")
    board.panel(
        _timeseries("File system usage", "percent", min_val=0, max_val=100, thresholds=(("green", None), ("red", 85))),
        [
            _q(
                f"100 * (1 - node_filesystem_avail_bytes{_sel(_FS)} / node_filesystem_size_bytes{_sel(_FS)})",
                "{{mountpoint}}",
            )
        ],
    )
    board.panel(
        _timeseries("Disk I/O (read up, written down)", "Bps"),
        [
            _q(f"rate(node_disk_read_bytes_total{_sel()}[$__rate_interval])", "{{device}} read"),
            _q(f"-rate(node_disk_written_bytes_total{_sel()}[$__rate_interval])", "{{device}} written"),
        ],
    )
    board.panel(
        _timeseries("Network traffic (received up, sent down)", "Bps"),
        [
            _q(f"rate(node_network_receive_bytes_total{_sel(_NET)}[$__rate_interval])", "{{device}} received"),
            _q(f"-rate(node_network_transmit_bytes_total{_sel(_NET)}[$__rate_interval])", "{{device}} sent"),
        ],
    )
    board.panel(
        _timeseries("Network errors and drops", "pps", min_val=0),
        [
            _q(
                f"rate(node_network_receive_errs_total{_sel(_NET)}[$__rate_interval])"
                f" + rate(node_network_transmit_errs_total{_sel(_NET)}[$__rate_interval])",
                "{{device}} errors",
            ),
            _q(
                f"rate(node_network_receive_drop_total{_sel(_NET)}[$__rate_interval])"
                f" + rate(node_network_transmit_drop_total{_sel(_NET)}[$__rate_interval])",
                "{{device}} drops",
            ),
        ],
    )
    board.row("Temperatures")
    board.panel(
        _timeseries("Temperatures", "celsius", thresholds=(("green", None), ("orange", 80), ("red", 95))),
        [_q(_hwmon_temperatures(), "{{chip_name}} {{sensor}}")],
        width=24,
        description="Every hwmon sensor (node_hwmon_temp_celsius), named by its chip.",
    )


def _amd_gpu_panels(board):
    board.row("AMD GPU")
    note = "From node exporter's drm collector (--collector.drm, amdgpu only)."
    board.panel(
        _timeseries("AMD GPU busy", "percent", min_val=0, max_val=100),
        [_q(f"node_drm_gpu_busy_percent{_sel()}", "{{card}}")],
        width=8,
        description=note,
    )
    board.panel(
        _timeseries("AMD GPU VRAM", "bytes", min_val=0),
        [
            _q(f"node_drm_memory_vram_used_bytes{_sel()}", "{{card}} used"),
            _q(f"node_drm_memory_vram_size_bytes{_sel()}", "{{card}} size"),
        ],
        width=8,
        description=note,
    )
    board.panel(
        _timeseries("AMD GPU temperature", "celsius", thresholds=(("green", None), ("orange", 90), ("red", 105))),
        [_q(_hwmon_temperatures("amdgpu"), "{{sensor}}")],
        width=8,
        description="The amdgpu hwmon sensors (edge, junction, memory).",
    )


def _nvidia_gpu_panels(board):
    board.row("NVIDIA GPU")
    note = "From nvidia_gpu_exporter (nvidia-smi)."
    board.panel(
        _timeseries("NVIDIA GPU utilisation", "percentunit", min_val=0, max_val=1),
        [_q(f"nvidia_smi_utilization_gpu_ratio{_sel()}", "{{uuid}}")],
        width=8,
        description=note,
    )
    board.panel(
        _timeseries("NVIDIA GPU memory", "bytes", min_val=0),
        [
            _q(f"nvidia_smi_memory_used_bytes{_sel()}", "{{uuid}} used"),
            _q(f"nvidia_smi_memory_total_bytes{_sel()}", "{{uuid}} total"),
        ],
        width=8,
        description=note,
    )
    board.panel(
        _timeseries("NVIDIA GPU temperature", "celsius", thresholds=(("green", None), ("orange", 80), ("red", 90))),
        [_q(f"nvidia_smi_temperature_gpu{_sel()}", "{{uuid}}")],
        width=8,
        description=note,
    )


def _intel_cpu_panels(board):
    board.row("Intel CPU")
    package = _sel('label=~"Package id [0-9]+"')
    board.panel(
        _timeseries("Intel package temperature", "celsius", thresholds=(("green", None), ("orange", 85), ("red", 95))),
        [
            _q(
                f"node_hwmon_temp_celsius{_sel()}"
                f" * on(instance, chip, sensor) group_left(label) node_hwmon_sensor_label{package}",
                "{{label}}",
            )
        ],
        width=6,
        description="coretemp's package sensor (node_hwmon_temp_celsius with node_hwmon_sensor_label).",
    )
    board.panel(
        _timeseries("Intel core temperatures", "celsius"),
        [_q(_hwmon_temperatures("coretemp"), "{{sensor}}")],
        width=6,
    )
    board.panel(
        _timeseries("CPU frequency (intel_pstate)", "hertz", min_val=0),
        [
            _q(f"avg(node_cpu_scaling_frequency_hertz{_sel()})", "average"),
            _q(f"max(node_cpu_scaling_frequency_hertz{_sel()})", "fastest core"),
        ],
        width=6,
        description="cpufreq scaling frequency as set by intel_pstate.",
    )
    board.panel(
        _timeseries("Package power and throttling", "watt", min_val=0),
        [
            _q(f"rate(node_rapl_package_joules_total{_sel()}[$__rate_interval])", "package {{index}} power"),
            _q(
                f"sum(rate(node_cpu_package_throttles_total{_sel()}[$__rate_interval]))",
                "package throttle events/s",
            ),
        ],
        width=6,
        description="RAPL package power, and thermal throttle events of the package.",
    )


def _amd_cpu_panels(board):
    board.row("AMD CPU")
    board.panel(
        _timeseries(
            "AMD CPU temperature (k10temp)", "celsius", thresholds=(("green", None), ("orange", 85), ("red", 95))
        ),
        [_q(_hwmon_temperatures("k10temp"), "{{sensor}}")],
        description="k10temp's Tctl and per-CCD sensors.",
    )
    board.panel(
        _timeseries("CPU frequency (amd_pstate)", "hertz", min_val=0),
        [
            _q(f"avg(node_cpu_scaling_frequency_hertz{_sel()})", "average"),
            _q(f"max(node_cpu_scaling_frequency_hertz{_sel()})", "fastest core"),
        ],
    )


def host_dashboard(host, datasource_uid):
    """One host's dashboard; hardware rows follow its GPU and CPU vendors."""
    tags = ["host", host.kind, *(f"gpu-{vendor}" for vendor in host.gpus), f"cpu-{host.cpu}"]
    board = _Board(
        f"Host {host.name}",
        host.uid,
        datasource_uid,
        tags,
        f"{host.name}: {host.kind}, GPU {', '.join(host.gpus) or 'none'}, CPU {host.cpu}, "
        f"roles {', '.join(host.roles) or 'none'}.",
    )
    board.variable(sdk_dashboard.ConstantVariable("host").label("Host").value(host.name))
    _status_panels(board)
    _resource_panels(board)
    if host.cpu == "intel":
        _intel_cpu_panels(board)
    if host.cpu == "amd":
        _amd_cpu_panels(board)
    if "amd" in host.gpus:
        _amd_gpu_panels(board)
    if "nvidia" in host.gpus:
        _nvidia_gpu_panels(board)
    return board.build()


def media_dashboard(hosts, datasource_uid):
    """Plex (through Tautulli) and NZBGet on the media hosts."""
    board = _Board(
        "Homelab media",
        MEDIA_UID,
        datasource_uid,
        ["media"],
        "Plex streams (through Tautulli), NZBGet downloads and the media services (homelab media exporter).",
    )
    board.variable(_host_choice([host.name for host in hosts]))
    board.row("Plex (Tautulli)")
    board.panel(
        _stat(
            "Tautulli reachable", mapping=UP_MAPPING, no_value="no exporter", thresholds=(("red", None), ("green", 1))
        ),
        [_q(f"tautulli_up{_sel()}", "{{host}}", instant=True)],
        width=6,
        height=6,
    )
    board.panel(
        _stat("Streams now", names=True),
        [_q(f"tautulli_streams{_sel()}", "{{host}}", instant=True)],
        width=6,
        height=6,
    )
    board.panel(
        _timeseries("Streams", "short", stacked=True, min_val=0),
        [
            _q(f"tautulli_streams_direct_play{_sel()}", "{{host}} direct play"),
            _q(f"tautulli_streams_direct_stream{_sel()}", "{{host}} direct stream"),
            _q(f"tautulli_streams_transcode{_sel()}", "{{host}} transcode"),
        ],
    )
    board.panel(
        _timeseries("Streaming bandwidth", "Bps", min_val=0),
        [
            _q("tautulli_bandwidth_bytes_per_second" + _sel('network="lan"'), "{{host}} LAN"),
            _q("tautulli_bandwidth_bytes_per_second" + _sel('network="wan"'), "{{host}} WAN"),
        ],
        width=24,
    )
    board.row("NZBGet")
    failure = _sel('status="failure"')
    board.panel(
        _timeseries("Download rate", "Bps", min_val=0),
        [
            _q(f"rate(nzbget_downloaded_bytes_total{_sel()}[$__rate_interval])", "{{host}} downloading"),
            _q(f"nzbget_download_limit_bytes_per_second{_sel()} > 0", "{{host}} limit"),
        ],
    )
    board.panel(
        _timeseries("Queue", "bytes", min_val=0),
        [
            _q(f"nzbget_queue_remaining_bytes{_sel()}", "{{host}} remaining"),
            _q(f"nzbget_disk_free_bytes{_sel()}", "{{host}} free disk"),
        ],
    )
    board.panel(
        _stat("Download paused", mapping=YES_NO_MAPPING, no_value="no exporter", names=True),
        [_q(f"nzbget_download_paused{_sel()}", "{{host}}", instant=True)],
        width=8,
        height=5,
    )
    board.panel(
        _stat("Post-processing jobs", names=True),
        [_q(f"nzbget_post_jobs{_sel()}", "{{host}}", instant=True)],
        width=8,
        height=5,
    )
    board.panel(
        _stat("Failed downloads (history)", names=True, thresholds=(("green", None), ("orange", 1))),
        [_q(f"sum by ({HOST_LABEL}) (nzbget_history_entries{failure})", "{{host}}", instant=True)],
        width=8,
        height=5,
    )
    board.row("Services")
    services = _sel(_MEDIA_UNITS, 'state="active"')
    board.panel(
        _table("Media services"),
        [_q(f"node_systemd_unit_state{services}", instant=True, table=True)],
        width=24,
        height=6,
        description="Plex, Tautulli, NZBGet and the *arr services (1 = active), from node exporter's systemd "
        "collector.",
    )
    return board.build()


def backups_dashboard(datasource_uid):
    """Backup freshness, verification, size and duration (homelab_backup_* textfile metrics)."""
    board = _Board(
        "Homelab backups",
        BACKUPS_UID,
        datasource_uid,
        ["backups"],
        "Every backup repository of every host: last success, verification, size and duration.",
    )
    board.variable(
        sdk_dashboard.QueryVariable("host")
        .label("Host")
        .datasource(board.ds)
        .query(f"label_values(homelab_backup_last_success_timestamp_seconds, {HOST_LABEL})")
        .refresh(sdk_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(sdk_models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(sdk_models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    board.row("Freshness")
    board.panel(
        _stat(
            "Time since the last successful backup",
            "dtdurations",
            names=True,
            no_value="no backups reported",
            thresholds=(("green", None), ("orange", 26 * 3600), ("red", 48 * 3600)),
        ),
        [
            _q(
                f"time() - homelab_backup_last_success_timestamp_seconds{_sel()}",
                "{{host}} {{repository}}",
                instant=True,
            )
        ],
        width=24,
        height=6,
        description="Orange after 26 hours, red after 48 hours without a successful backup.",
    )
    board.panel(
        _stat(
            "Last verification",
            mapping=OK_FAILED_MAPPING,
            names=True,
            no_value="never verified",
            thresholds=(("red", None), ("green", 1)),
        ),
        [_q(f"homelab_backup_last_verification_success{_sel()}", "{{host}} {{repository}}", instant=True)],
        width=24,
        height=6,
        description="Result of the last restore verification of each repository.",
    )
    board.row("Size and duration")
    board.panel(
        _timeseries("Backup size", "bytes", min_val=0),
        [_q(f"homelab_backup_size_bytes{_sel()}", "{{host}} {{repository}}")],
    )
    board.panel(
        _timeseries("Backup duration", "s", min_val=0),
        [_q(f"homelab_backup_duration_seconds{_sel()}", "{{host}} {{repository}}")],
    )
    return board.build()


def build_dashboards(hosts, datasource_uid=PROMETHEUS_UID):
    """Every dashboard of the fleet as ``{file name: dashboard JSON data}``.

    ``fleet-overview.json``, ``host-<name>.json`` per host, ``media.json`` when a
    host has the media role, and ``backups.json``. GrafanaError for bad input or a
    missing SDK.
    """
    require_sdk()
    problems = [p for p in (uid_problem(datasource_uid, "datasource_uid"),) if p]
    try:
        parsed = parse_hosts(hosts)
    except GrafanaError as e:
        raise GrafanaError(problems + e.problems) from None
    if not parsed:
        problems.append("hosts is empty: there is nothing to show")
    if problems:
        raise GrafanaError(problems)
    dashboards = {"fleet-overview.json": fleet_dashboard(parsed, datasource_uid)}
    for host in parsed:
        dashboards[host.filename] = host_dashboard(host, datasource_uid)
    media_hosts = [host for host in parsed if MEDIA_ROLE in host.roles]
    if media_hosts:
        dashboards["media.json"] = media_dashboard(media_hosts, datasource_uid)
    dashboards["backups.json"] = backups_dashboard(datasource_uid)
    return dashboards


# --- checking what will be provisioned ------------------------------------------------------------


def _provisioned(datasources_doc, problems):
    """``{uid: type}`` and ``{name: uid}`` of the provisioned data sources; problems of the document."""
    by_uid = {}
    by_name = {}
    if not isinstance(datasources_doc, Mapping):
        problems.append(
            f"datasources: must be a provisioning document (a mapping), got {type(datasources_doc).__name__}"
        )
        return by_uid, by_name
    if datasources_doc.get("apiVersion") != 1:
        problems.append(f"datasources: apiVersion must be 1, got {datasources_doc.get('apiVersion')!r}")
    entries = datasources_doc.get("datasources")
    if not isinstance(entries, list) or not entries:
        problems.append("datasources: 'datasources' must be a non-empty list")
        return by_uid, by_name
    defaults = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"datasources[{index}]: must be a mapping, got {type(entry).__name__}")
            continue
        name = entry.get("name")
        where = f"datasource '{name}'" if isinstance(name, str) and name else f"datasources[{index}]"
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: needs a name")
        elif name in by_name:
            problems.append(f"{where}: duplicate data source name")
        if not isinstance(entry.get("type"), str) or not entry.get("type"):
            problems.append(f"{where}: needs a type")
        uid = entry.get("uid")
        problem = uid_problem(uid, "uid")
        if problem:
            problems.append(f"{where}: {problem}")
        elif uid in by_uid:
            problems.append(f"{where}: duplicate data source uid '{uid}'")
        else:
            by_uid[uid] = entry.get("type")
        if isinstance(name, str) and name and name not in by_name:
            by_name[name] = uid
        if entry.get("isDefault"):
            defaults.append(str(name))
    if len(defaults) > 1:
        problems.append(f"datasources: only one data source may be the default, got {', '.join(defaults)}")
    return by_uid, by_name


def _ref_problem(ref, by_uid, by_name, variables):
    """Why the data source reference ``ref`` does not resolve, or None (None refs use the default)."""
    if ref is None:
        return None
    if isinstance(ref, str):
        if ref.startswith("$"):
            return _variable_ref_problem(ref, variables)
        if ref in by_name or ref in by_uid or ref in BUILTIN_DATASOURCE_UIDS:
            return None
        return f"references data source '{ref}', which is not provisioned"
    if not isinstance(ref, Mapping):
        return f"has a data source reference that is neither a mapping nor a name: {ref!r}"
    uid = ref.get("uid")
    if not isinstance(uid, str) or not uid:
        return f"has a data source reference without a uid: {dict(ref)!r}"
    if uid in BUILTIN_DATASOURCE_UIDS:
        return None
    if uid.startswith("$"):
        return _variable_ref_problem(uid, variables)
    if uid not in by_uid:
        known = ", ".join(sorted(by_uid)) or "none"
        return f"references data source uid '{uid}', which is not provisioned (provisioned: {known})"
    kind = ref.get("type")
    if kind is not None and by_uid[uid] is not None and kind != by_uid[uid]:
        return f"references data source uid '{uid}' as type '{kind}', but it is a '{by_uid[uid]}' data source"
    return None


@dataclass(frozen=True)
class _Refs:
    """What a dashboard's data source references may resolve to."""

    by_uid: dict
    by_name: dict
    variables: dict

    def problem(self, ref):
        return _ref_problem(ref, self.by_uid, self.by_name, self.variables)


def _variable_ref_problem(ref, variables):
    name = ref.strip("${}").split(":")[0]
    variable = variables.get(name)
    if not isinstance(variable, Mapping) or variable.get("type") != "datasource":
        return f"references data source variable '{ref}', but the dashboard has no data source variable '{name}'"
    return None


def _walk_panels(panels):
    """Every panel, including those inside collapsed rows."""
    for panel in panels if isinstance(panels, list) else ():
        yield panel
        if isinstance(panel, Mapping) and panel.get("type") == "row":
            yield from _walk_panels(panel.get("panels"))


def _panel_name(panel, index):
    return f"panel {panel.get('title')!r} (id {panel.get('id', index)})"


def _panel_problems(panel, index, refs, seen_ids):
    if not isinstance(panel, Mapping):
        return [f"panel #{index} must be a mapping, got {type(panel).__name__}"]
    problems = []
    where = _panel_name(panel, index)
    panel_id = panel.get("id")
    if panel_id is not None:
        if panel_id in seen_ids:
            problems.append(f"{where} shares its id with another panel")
        seen_ids.add(panel_id)
    problem = refs.problem(panel.get("datasource"))
    if problem:
        problems.append(f"{where} {problem}")
    targets = panel.get("targets")
    needs_targets = panel.get("type") not in PANEL_TYPES_WITHOUT_TARGETS and "libraryPanel" not in panel
    if needs_targets and (not isinstance(targets, list) or not targets):
        problems.append(f"{where} has no targets")
        return problems
    for number, target in enumerate(targets or ()):
        ref_id = target.get("refId") if isinstance(target, Mapping) else None
        name = f"{where} target {ref_id or number}"
        if not isinstance(target, Mapping):
            problems.append(f"{name} must be a mapping")
            continue
        problem = refs.problem(target.get("datasource"))
        if problem:
            problems.append(f"{name} {problem}")
        if "expr" in target and not (isinstance(target["expr"], str) and target["expr"].strip()):
            problems.append(f"{name} has an empty query")
    return problems


def _dashboard_problems(board, by_uid, by_name):
    problems = []
    templating = board.get("templating")
    listed = templating.get("list") if isinstance(templating, Mapping) else None
    variables = {v.get("name"): v for v in listed or () if isinstance(v, Mapping)}
    refs = _Refs(by_uid, by_name, variables)
    for name, variable in variables.items():
        problem = refs.problem(variable.get("datasource"))
        if problem:
            problems.append(f"variable '{name}' {problem}")
    annotations = board.get("annotations")
    for annotation in (annotations.get("list") if isinstance(annotations, Mapping) else None) or ():
        if isinstance(annotation, Mapping):
            problem = refs.problem(annotation.get("datasource"))
            if problem:
                problems.append(f"annotation {annotation.get('name')!r} {problem}")
    seen_ids = set()
    for index, panel in enumerate(_walk_panels(board.get("panels"))):
        problems.extend(_panel_problems(panel, index, refs, seen_ids))
    return problems


def provisioning_problems(dashboards, datasources_doc):
    """Everything that would break provisioning, as a list of strings (empty when all is well).

    ``dashboards`` maps file names to dashboard JSON data (what ``build_dashboards``
    returns); ``datasources_doc`` is the data source provisioning document. Finds
    data that is not JSON, invalid or duplicate dashboard uids, duplicate titles,
    panels, targets, variables or annotations that reference a data source uid
    that is not provisioned (or with the wrong type), panels without targets,
    empty queries, duplicate panel ids, and problems of the data source document
    itself (duplicate uids or names, more than one default).
    """
    problems = []
    by_uid, by_name = _provisioned(datasources_doc, problems)
    if not isinstance(dashboards, Mapping):
        problems.append(f"dashboards: must map file names to dashboards, got {type(dashboards).__name__}")
        return problems
    files_by_uid = {}
    files_by_title = {}
    for filename in sorted(dashboards, key=str):
        board = dashboards[filename]
        if not isinstance(filename, str) or not filename.endswith(".json") or "/" in filename:
            problems.append(f"{filename!r}: the file name must be a plain '<name>.json'")
        try:
            json.dumps(board, allow_nan=False)
        except (TypeError, ValueError) as e:
            problems.append(f"{filename}: not JSON serialisable: {e}")
            continue
        if not isinstance(board, Mapping):
            problems.append(f"{filename}: a dashboard must be a mapping, got {type(board).__name__}")
            continue
        problem = uid_problem(board.get("uid"), "dashboard uid")
        if problem:
            problems.append(f"{filename}: {problem}")
        else:
            files_by_uid.setdefault(board["uid"], []).append(str(filename))
        title = board.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{filename}: the dashboard needs a title")
        else:
            files_by_title.setdefault(title, []).append(str(filename))
        problems.extend(f"{filename}: {p}" for p in _dashboard_problems(board, by_uid, by_name))
    for uid, files in files_by_uid.items():
        if len(files) > 1:
            problems.append(f"duplicate dashboard uid '{uid}' in {', '.join(files)}")
    for title, files in files_by_title.items():
        if len(files) > 1:
            problems.append(f"duplicate dashboard title '{title}' in {', '.join(files)}")
    return problems
