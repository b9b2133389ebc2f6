# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus scrape targets and firewall ports, derived from the inventory.

``scrape_configs(hostvars, hosts, settings)`` builds the ``scrape_configs``
list of the monitoring server from what the inventory says about each host
(docs/MONITORING_DESIGN.md): nothing is kept by hand, so no host can be
forgotten the way samsung was. ``target_warnings(hostvars, hosts)`` names
what the inventory promises but cannot be scraped (a GPU without a packaged
exporter, a media exporter without an API key).

``listen_ports(host_vars)`` merges every ``<role>_listen_ports`` variable of
one host into the list of ports the security role opens in the firewall.

Both report every problem of their input at once, like _features.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_duration import duration_ms

# Groups that describe what a host does; they make up its ``roles`` label.
ROLE_GROUPS = (
    "backup_targets",
    "build_host",
    "laptops",
    "log_server",
    "media",
    "monitoring_server",
    "servers",
    "vms",
    "workstations",
)
DEFAULT_SETTINGS = {
    "scrape_interval": "15s",
    "node_port": 9100,
    "blackbox_address": "127.0.0.1:9115",
    "web_services": [],
    "ssh_port": 22,
}
# (job and group name, exporter port, vendor for messages, gpu label value)
GPU_JOBS = (
    ("gpu_nvidia", 9400, "NVIDIA", "nvidia"),
    ("gpu_amd", 9401, "AMD", "amd"),
)
# Media exporters scraped on hosts of group ``media``: name -> default port.
MEDIA_EXPORTERS = {"tautulli": 9104, "nzbget": 9103}
MEDIA_GROUP = "media"
NIXOS_GROUP = "nixos"
BLACKBOX_PROBES = (
    ("blackbox_icmp", "icmp"),
    ("blackbox_ssh", "ssh_banner"),
)
LISTEN_PORTS_SUFFIX = "_listen_ports"
LISTEN_PORT_KEYS = ("name", "port", "proto", "allow_from")
PROTOCOLS = ("tcp", "udp")
ANY = "any"

_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))
# What Ansible accepts as a group name.
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


class TargetError(ValueError):
    """The fleet data or the settings cannot produce scrape configs; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} scrape target problem{plural}:\n{listing}")


class ListenPortsError(ValueError):
    """A host's ``*_listen_ports`` declarations are invalid; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} listen port problem{plural}:\n{listing}")


# --- small validators: return the clean value, or None after adding a problem ----------


def _port(value, what, problems):
    """``value`` as a port number 1-65535 (an int, or a string of digits)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{what} must be a port number (an integer 1-65535), got {type(value).__name__} {value!r}")
        return None
    if not 1 <= value <= 65535:
        problems.append(f"{what} must be a port number 1-65535, got {value}")
        return None
    return value


def _bool(value, what, problems):
    """``value`` as a boolean: true/false, or yes/no/on/off/1/0 as a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    problems.append(f"{what} must be true or false, got {value!r}")
    return None


def _did_you_mean(name, known):
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_keys(mapping, allowed, what, problems):
    for key in sorted(set(mapping) - set(allowed), key=str):
        problems.append(f"{what} has unknown key {key!r}{_did_you_mean(key, allowed)} (known: {', '.join(allowed)})")


def _duration(value, what, problems):
    if isinstance(value, str) and (duration_ms(value.strip()) or 0) > 0:
        return value.strip()
    problems.append(f"{what} must be a Prometheus duration such as '15s' or '1m30s', got {value!r}")
    return None


def _address(value, what, problems):
    """A host name or IP address to reach a host at; IPv6 addresses lose their brackets."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            pass
        if _HOSTNAME.fullmatch(text):
            return text
    problems.append(f"{what} must be a host name or an IP address, got {value!r}")
    return None


def _host_port(address, port):
    """``address:port``, with IPv6 addresses in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- settings ----------------------------------------------------------------------------


def _http_url(url):
    """Whether ``url`` is an http:// or https:// URL with a host (and a valid port, if any)."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _web_services(value, problems):
    what = "settings.web_services"
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
        problems.append(f"{what} must be a list of {{name, url}} mappings, got {type(value).__name__}")
        return []
    services = []
    seen = set()
    for index, entry in enumerate(value):
        where = f"{what}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be a mapping with name and url, got {entry!r}")
            continue
        _unknown_keys(entry, ("name", "url"), where, problems)
        name = entry.get("name")
        url = entry.get("url")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}.name must be a non-empty string, got {name!r}")
            name = None
        elif name in seen:
            problems.append(f"{where}: web service name '{name}' is used twice")
        else:
            seen.add(name)
        if not _http_url(url):
            label = f" ({name})" if name else ""
            problems.append(f"{where}.url{label} must be an http:// or https:// URL with a host, got {url!r}")
            url = None
        if name and url:
            services.append({"name": str(name), "url": str(url)})
    return services


def _blackbox_address(value, problems):
    what = "settings.blackbox_address"
    if isinstance(value, str) and ":" in value:
        host, port = value.strip().rsplit(":", 1)
        inner = []
        address = _address(host, what, inner) if host else None
        number = _port(port, what, inner) if address else None
        if address and number:
            return _host_port(address, number)
    problems.append(f"{what} must be 'host:port' of the blackbox exporter, such as '127.0.0.1:9115', got {value!r}")
    return None


def _settings(settings, problems):
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        problems.append(f"settings must be a mapping, got {type(settings).__name__}")
        return None
    _unknown_keys(settings, tuple(DEFAULT_SETTINGS), "settings", problems)
    merged = dict(DEFAULT_SETTINGS)
    merged.update((key, value) for key, value in settings.items() if key in DEFAULT_SETTINGS)
    return {
        "scrape_interval": _duration(merged["scrape_interval"], "settings.scrape_interval", problems),
        "node_port": _port(merged["node_port"], "settings.node_port", problems),
        "ssh_port": _port(merged["ssh_port"], "settings.ssh_port", problems),
        "blackbox_address": _blackbox_address(merged["blackbox_address"], problems),
        "web_services": _web_services(merged["web_services"], problems),
    }


# --- hosts -------------------------------------------------------------------------------


def _host_names(hostvars, hosts, problems):
    """The sorted, distinct host names to consider; unknown ones are problems."""
    if not isinstance(hostvars, Mapping):
        problems.append(f"hostvars must be a mapping of host name to variables, got {type(hostvars).__name__}")
        return []
    if isinstance(hosts, (str, Mapping)) or not isinstance(hosts, (list, tuple, set, frozenset)):
        problems.append(f"hosts must be a list of host names, such as groups['all'], got {type(hosts).__name__}")
        return []
    names = set()
    unknown = set()
    for name in hosts:
        if not isinstance(name, str) or not name:
            problems.append(f"hosts holds {name!r}, which is not a host name")
        elif name not in hostvars:
            unknown.add(str(name))
        else:
            names.add(str(name))
    if unknown:
        listing = ", ".join(f"'{name}'" for name in sorted(unknown))
        problems.append(f"unknown host{'s' if len(unknown) > 1 else ''} {listing}: not in hostvars")
    return sorted(names)


def _media(value, host, problems):
    """{exporter name: (port, api_key_set)} from ``monitoring_exporters_media``."""
    what = f"{host}: monitoring_exporters_media"
    media = {name: (port, False) for name, port in MEDIA_EXPORTERS.items()}
    if value is None:
        return media
    if not isinstance(value, Mapping):
        problems.append(f"{what} must be a mapping of exporter name to settings, got {type(value).__name__}")
        return media
    _unknown_keys(value, tuple(MEDIA_EXPORTERS), what, problems)
    for name, default_port in MEDIA_EXPORTERS.items():
        entry = value.get(name)
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{what}.{name} must be a mapping with port and api_key_set, got {entry!r}")
            continue
        port = _port(entry.get("port", default_port), f"{what}.{name}.port", problems)
        api_key_set = _bool(entry.get("api_key_set", False), f"{what}.{name}.api_key_set", problems)
        media[name] = (port, bool(api_key_set))
    return media


def _host(name, host_vars, default_node_port, problems):
    """What the scrape configs need to know about one host."""
    if not isinstance(host_vars, Mapping):
        problems.append(f"{name}: hostvars must be a mapping, got {type(host_vars).__name__}")
        return None
    group_names = host_vars.get("group_names", [])
    if group_names is None:
        group_names = []
    if isinstance(group_names, str) or not isinstance(group_names, (list, tuple, set, frozenset)):
        problems.append(f"{name}: group_names must be a list of group names, got {group_names!r}")
        group_names = []
    groups = set()
    for group in group_names:
        if isinstance(group, str):
            groups.add(str(group))
        else:
            problems.append(f"{name}: group_names holds {group!r}, which is not a group name")
    kind = host_vars.get("base_host_kind")
    if kind is None or kind == "":
        kind = "unknown"
    elif not isinstance(kind, str):
        problems.append(f"{name}: base_host_kind must be a string, got {kind!r}")
    gpus = [
        label for group, _port_number, _vendor, label in sorted(GPU_JOBS, key=lambda job: job[3]) if group in groups
    ]
    roles = sorted(groups & set(ROLE_GROUPS))
    labels = {
        "host": name,
        "kind": str(kind),
        "gpu": ",".join(gpus) or "none",
        "roles": ",".join(roles) or "none",
        "nixos": "true" if NIXOS_GROUP in groups else "false",
    }
    return {
        "name": name,
        "groups": groups,
        "address": _address(host_vars.get("ansible_host", name), f"{name}: ansible_host", problems),
        "labels": labels,
        "exporters": _bool(
            host_vars.get("monitoring_exporters_enabled", True), f"{name}: monitoring_exporters_enabled", problems
        ),
        "node_port": _port(
            host_vars.get("monitoring_exporters_node_port", default_node_port),
            f"{name}: monitoring_exporters_node_port",
            problems,
        ),
        "gpu_exporter": _bool(
            host_vars.get("monitoring_exporters_gpu_exporter", False),
            f"{name}: monitoring_exporters_gpu_exporter",
            problems,
        ),
        "media": _media(host_vars.get("monitoring_exporters_media"), name, problems),
    }


def _fleet(hostvars, hosts, settings, problems):
    names = _host_names(hostvars, hosts, problems)
    default_node_port = settings["node_port"] if settings and settings["node_port"] else DEFAULT_SETTINGS["node_port"]
    fleet = [_host(name, hostvars[name], default_node_port, problems) for name in names]
    return [host for host in fleet if host is not None]


# --- scrape configs ----------------------------------------------------------------------


def _job(name, settings, static_configs, **extra):
    job = {"job_name": name, "scrape_interval": settings["scrape_interval"]}
    job.update(extra)
    job["static_configs"] = static_configs
    return job


def _target(host, port=None):
    address = host["address"] if port is None else _host_port(host["address"], port)
    return {"targets": [address], "labels": dict(host["labels"])}


def _blackbox(name, module, settings, static_configs):
    return _job(
        name,
        settings,
        static_configs,
        metrics_path="/probe",
        params={"module": [module]},
        relabel_configs=[
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": settings["blackbox_address"]},
        ],
    )


def scrape_configs(hostvars, hosts, settings=None):
    """The Prometheus ``scrape_configs`` for ``hosts``, as plain lists and dicts.

    Jobs, in this order, each left out when it has no targets:
    ``node`` (every host with exporters enabled), ``gpu_nvidia`` and
    ``gpu_amd`` (GPU group members whose exporter is packaged), ``tautulli``
    and ``nzbget`` (media hosts whose exporter has an API key),
    ``blackbox_http`` (``settings.web_services``), ``blackbox_icmp`` and
    ``blackbox_ssh`` (every host). Per-host targets carry the labels host,
    kind, gpu, roles and nixos. TargetError lists every problem of the input.
    """
    problems = []
    clean = _settings(settings, problems)
    fleet = _fleet(hostvars, hosts, clean, problems)
    if problems:
        raise TargetError(problems)

    exporting = [host for host in fleet if host["exporters"]]
    jobs = [_job("node", clean, [_target(host, host["node_port"]) for host in exporting])]
    for group, port, _vendor, _label in GPU_JOBS:
        targets = [_target(host, port) for host in exporting if group in host["groups"] and host["gpu_exporter"]]
        jobs.append(_job(group, clean, targets))
    for name in MEDIA_EXPORTERS:
        targets = [
            _target(host, host["media"][name][0])
            for host in exporting
            if MEDIA_GROUP in host["groups"] and host["media"][name][1]
        ]
        jobs.append(_job(name, clean, targets))
    web = [{"targets": [service["url"]], "labels": {"service": service["name"]}} for service in clean["web_services"]]
    jobs.append(_blackbox("blackbox_http", "http_2xx", clean, web))
    jobs.append(_blackbox("blackbox_icmp", "icmp", clean, [_target(host) for host in fleet]))
    jobs.append(_blackbox("blackbox_ssh", "ssh_banner", clean, [_target(host, clean["ssh_port"]) for host in fleet]))
    return [job for job in jobs if job["static_configs"]]


def target_warnings(hostvars, hosts):
    """What the inventory promises but Prometheus will not scrape, one sentence per gap.

    Hosts with exporters turned off (probed by blackbox only), GPU group
    members without a packaged GPU exporter, media hosts whose exporter has no
    API key, and media API keys on hosts outside group media. TargetError
    for invalid input.
    """
    problems = []
    fleet = _fleet(hostvars, hosts, None, problems)
    if problems:
        raise TargetError(problems)
    warnings = []
    for host in fleet:
        name = host["name"]
        if not host["exporters"]:
            warnings.append(
                f"{name} has monitoring_exporters_enabled false: only the blackbox probes (ping, SSH) watch it"
            )
            continue
        for group, _port_number, vendor, _label in GPU_JOBS:
            if group in host["groups"] and not host["gpu_exporter"]:
                warnings.append(
                    f"{name} is in {group} but no {vendor} GPU exporter is packaged for its platform"
                    " (monitoring_exporters_gpu_exporter is not true): its GPU is not scraped"
                )
        for exporter, (_port_number, api_key_set) in host["media"].items():
            if MEDIA_GROUP in host["groups"] and not api_key_set:
                warnings.append(
                    f"{name} is in {MEDIA_GROUP} but its {exporter} exporter has no API key"
                    f" (monitoring_exporters_media.{exporter}.api_key_set is not true): {exporter} is not scraped"
                )
            elif MEDIA_GROUP not in host["groups"] and api_key_set:
                warnings.append(
                    f"{name} sets monitoring_exporters_media.{exporter}.api_key_set but is not in group"
                    f" {MEDIA_GROUP}: {exporter} is not scraped"
                )
    return warnings


# --- listen ports ------------------------------------------------------------------------


def _network(text):
    """(the normalised CIDR of ``text``, None) or (None, why it is not one)."""
    try:
        return str(ipaddress.ip_network(text, strict=True)), None
    except ValueError as e:
        return None, str(e)


def _allow_from(value, what, problems):
    """The sorted, distinct sources of an entry: 'any', CIDRs (normalised) and group names."""
    if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
        problems.append(f"{what} must be a list of group names, CIDRs or 'any', got {value!r}")
        return None
    if not value:
        problems.append(f"{what} is empty: list who may connect (group names, CIDRs or 'any') or drop the entry")
        return None
    sources = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{what} holds {item!r}, which is not a group name, a CIDR or 'any'")
            continue
        text = item.strip()
        if text == ANY:
            sources.add(ANY)
            continue
        network, reason = _network(text)
        if network:
            sources.add(network)
        elif _GROUP_NAME.fullmatch(text):
            sources.add(text)
        elif text[:1].isdigit() or ":" in text or "/" in text:
            problems.append(f"{what} holds {item!r}, which is not a valid IP address or CIDR ({reason})")
        else:
            problems.append(f"{what} holds {item!r}, which is not a group name, a CIDR or 'any'")
    return sources


def _merge_sources(sources):
    """Sorted sources; 'any' alone when present, since it covers the rest."""
    return [ANY] if ANY in sources else sorted(sources)


def listen_ports(host_vars):
    """Every ``*_listen_ports`` declaration of one host, merged and sorted by port and protocol.

    Each variable holds a list of ``{name, port, proto, allow_from}``.
    Identical declarations count once ('any' covers everything else); the
    same port and protocol with different sources, or under two names, is a
    conflict. ListenPortsError lists every problem.
    """
    if not isinstance(host_vars, Mapping):
        raise ListenPortsError([f"host variables must be a mapping, got {type(host_vars).__name__}"])
    problems = []
    # (port, proto) -> {name: (set of sources, [variables])}
    declared = {}
    variables = sorted(key for key in host_vars if isinstance(key, str) and key.endswith(LISTEN_PORTS_SUFFIX))
    for variable in variables:
        entries = host_vars[variable]
        if entries is None:
            continue
        if isinstance(entries, (str, Mapping)) or not isinstance(entries, (list, tuple)):
            problems.append(f"{variable} must be a list of {{name, port, proto, allow_from}}, got {entries!r}")
            continue
        for index, entry in enumerate(entries):
            what = f"{variable}[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{what} must be a mapping with {', '.join(LISTEN_PORT_KEYS)}, got {entry!r}")
                continue
            _unknown_keys(entry, LISTEN_PORT_KEYS, what, problems)
            missing = [key for key in LISTEN_PORT_KEYS if key not in entry]
            if missing:
                problems.append(f"{what} lacks {', '.join(missing)}")
                continue
            name = entry["name"]
            if not isinstance(name, str) or not name.strip():
                problems.append(f"{what}.name must be a non-empty string, got {name!r}")
                name = None
            port = _port(entry["port"], f"{what}.port", problems)
            proto = entry["proto"]
            if proto not in PROTOCOLS:
                problems.append(f"{what}.proto must be one of {', '.join(PROTOCOLS)}, got {proto!r}")
                proto = None
            sources = _allow_from(entry["allow_from"], f"{what}.allow_from", problems)
            if name is None or port is None or proto is None or sources is None:
                continue
            by_name = declared.setdefault((port, str(proto)), {})
            # Each distinct set of sources, with the variables that declare it.
            by_sources = by_name.setdefault(str(name), {})
            variables = by_sources.setdefault(tuple(_merge_sources(sources)), [])
            if variable not in variables:
                variables.append(variable)

    merged = []
    for (port, proto), by_name in sorted(declared.items()):
        if len(by_name) > 1:
            claims = " and ".join(
                f"'{name}' ({', '.join(v for variables in by_name[name].values() for v in variables)})"
                for name in sorted(by_name)
            )
            problems.append(f"port {port}/{proto} is declared twice, as {claims}: one port, one service")
            continue
        name, by_sources = next(iter(by_name.items()))
        if len(by_sources) > 1:
            claims = "; ".join(
                f"{', '.join(variables)} allows {', '.join(sources)}"
                for sources, variables in sorted(by_sources.items())
            )
            problems.append(
                f"port {port}/{proto} ({name}) is declared twice with different sources ({claims}):"
                " declare it once, with every source"
            )
            continue
        merged.append({"name": name, "port": port, "proto": proto, "allow_from": list(next(iter(by_sources)))})
    if problems:
        raise ListenPortsError(problems)
    return merged
