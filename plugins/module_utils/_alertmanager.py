# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alertmanager configuration for the homelab, built from a few settings.

``alertmanager_config(settings)`` returns the configuration as plain data
(the ``monitoring_server`` role writes it as YAML):

- one receiver, ``email``, mailing every alert through the SMTP smarthost;
- alerts grouped by ``group_by`` (seed: alertname, cluster, service);
- ``severity="critical"`` repeats every ``critical_repeat`` (5m),
  ``severity="warning"`` (and anything else) every ``warning_repeat`` (30m);
- a critical alert of a host inhibits that host's warnings: ``equal: [host]``,
  not ``[alertname, host]``. The criticals that matter here (HostDown above
  all) have a different alertname from the warnings they make meaningless
  (HighCPUUsage, LowDiskSpace, ... of the same host), so requiring an equal
  alertname would never inhibit anything across alerts. Alertmanager treats a
  label missing on both sides as equal, so the source also has to carry a
  non-empty ``host`` label: a critical without one silences nothing.

The SMTP password never enters the configuration: Alertmanager 0.25.0 (the
first release with it, changelog #3038; Debian 12 ships 0.25) reads it from
``smtp_auth_password_file``. ``smtp.auth_password`` (an inline password) is
refused, and neither password setting's value ever appears in an error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections.abc import Mapping

from ansible_collections.homelab.nixos.plugins.module_utils._prometheus_duration import duration_ms

RECEIVER = "email"
DEFAULTS = {
    "group_by": ["alertname", "cluster", "service"],
    "group_wait": "30s",
    "group_interval": "5m",
    "critical_repeat": "5m",
    "warning_repeat": "30m",
    "resolve_timeout": "5m",
    "send_resolved": True,
}
SETTINGS_KEYS = frozenset(("smtp", *DEFAULTS))
SMTP_KEYS = frozenset(
    ("smarthost", "from", "to", "auth_username", "auth_password_file", "auth_password", "require_tls")
)
# Settings whose values are (or may be, when misplaced) secrets: never echoed.
SECRET_KEYS = frozenset(("auth_password", "auth_password_file"))
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ADDRESS = r"[^@\s,<>\"]+@[^@\s,<>\"]+"
_MAILBOX = re.compile(r"^(?:%s|[^,<>\"]*<%s>)$" % (_ADDRESS, _ADDRESS))
_HOSTNAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$")


class AlertmanagerConfigError(ValueError):
    """The settings cannot make a valid configuration; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} Alertmanager setting problem{plural}:\n{listing}")


def _duration(settings, key, problems, allow_zero=False):
    value = settings.get(key, DEFAULTS[key])
    millis = duration_ms(value)
    if millis is None:
        problems.append(
            f"{key} must be a duration like '30s', '5m' or '1h30m' (units y w d h m s ms, largest first), got {value!r}"
        )
    elif millis == 0 and not allow_zero:
        problems.append(f"{key} must be longer than zero, got {value!r}")
    return value, millis


def _smarthost(value, problems):
    """``host:port`` (``[v6]:port`` for IPv6) with a port from 1 to 65535."""
    if not isinstance(value, str) or not value:
        problems.append(f"smtp.smarthost must be 'host:port', e.g. 'smtp.example.com:587', got {value!r}")
        return
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        host_ok = bool(host) and ":" in host and re.match(r"^[0-9a-fA-F:.]+$", host) is not None
    else:
        host, sep, port = value.rpartition(":")
        host_ok = _HOSTNAME.match(host) is not None
    port_ok = port.isdigit() and 1 <= int(port) <= 65535
    if not sep or not host_ok or not port_ok:
        problems.append(f"smtp.smarthost must be 'host:port', e.g. 'smtp.example.com:587', got {value!r}")


def _recipients(value, problems):
    """The ``to`` addresses as a list (a single string counts as one address)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        problems.append(f"smtp.to must name at least one recipient (a string or a list), got {value!r}")
        return []
    good = []
    for item in items:
        if isinstance(item, str) and _MAILBOX.match(item.strip()):
            good.append(item.strip())
        else:
            problems.append(f"smtp.to holds {item!r}, which is not an e-mail address")
    return good


def _unknown(mapping, known, where, problems):
    """Report unknown keys by name only: their values might be secrets."""
    extra = sorted((key for key in mapping if key not in known), key=str)
    if extra:
        names = ", ".join(repr(key) for key in extra)
        problems.append(f"{where} has unknown keys {names} (known: {', '.join(sorted(known))})")


def _smtp(smtp, problems):
    """The ``global`` SMTP settings of Alertmanager."""
    if not isinstance(smtp, Mapping):
        problems.append(f"smtp must be a mapping with smarthost, from and to, got {type(smtp).__name__}")
        return {}
    _unknown(smtp, SMTP_KEYS, "smtp", problems)
    _smarthost(smtp.get("smarthost"), problems)
    sender = smtp.get("from")
    if not isinstance(sender, str) or not _MAILBOX.match(sender.strip()):
        problems.append(f"smtp.from must be an e-mail address, got {sender!r}")
    require_tls = smtp.get("require_tls", True)
    if not isinstance(require_tls, bool):
        problems.append(f"smtp.require_tls must be true or false, got {require_tls!r}")
    result = {
        "smtp_smarthost": smtp.get("smarthost"),
        "smtp_from": sender.strip() if isinstance(sender, str) else sender,
        "smtp_require_tls": require_tls,
    }

    username = smtp.get("auth_username")
    password_file = smtp.get("auth_password_file")
    # Never format these two values into a message.
    if smtp.get("auth_password") is not None:
        if password_file is not None:
            problems.append(
                "smtp: the password is given in both forms, auth_password and auth_password_file; "
                "keep only auth_password_file"
            )
        else:
            problems.append(
                "smtp.auth_password is refused: it would put the password into alertmanager.yml; write it to a "
                "file with no_log (readable by Alertmanager) and give that file's path as auth_password_file"
            )
    if password_file is not None and (not isinstance(password_file, str) or not password_file.startswith("/")):
        problems.append(
            "smtp.auth_password_file must be the absolute path of the file that holds the password, "
            "not the password itself (its value is not shown)"
        )
    if username is not None and (not isinstance(username, str) or not username):
        problems.append(f"smtp.auth_username must be a non-empty string, got {username!r}")
    if username and password_file is None and smtp.get("auth_password") is None:
        problems.append("smtp.auth_username is set but auth_password_file is not")
    if password_file is not None and not username:
        problems.append("smtp.auth_password_file is set but auth_username is not")
    if username:
        result["smtp_auth_username"] = username
    if password_file is not None:
        result["smtp_auth_password_file"] = password_file
    return result


def _group_by(settings, problems):
    value = settings.get("group_by", DEFAULTS["group_by"])
    if value == ["..."]:
        return list(value)
    if not isinstance(value, (list, tuple)) or not value:
        problems.append(f"group_by must be a non-empty list of label names (or ['...']), got {value!r}")
        return []
    bad = [label for label in value if not isinstance(label, str) or not _LABEL.match(label)]
    if bad:
        problems.append(f"group_by holds {', '.join(repr(b) for b in bad)}, not label names")
    if len(set(map(str, value))) != len(value):
        problems.append(f"group_by repeats a label: {list(value)!r}")
    return list(value)


def alertmanager_config(settings):
    """The Alertmanager configuration (a dict) for ``settings``; AlertmanagerConfigError listing every problem."""
    if not isinstance(settings, Mapping):
        raise AlertmanagerConfigError([f"settings must be a mapping, got {type(settings).__name__}"])
    problems = []
    _unknown(settings, SETTINGS_KEYS, "settings", problems)
    if "smtp" not in settings:
        problems.append("settings.smtp is required (smarthost, from, to)")
        smtp = {}
    else:
        smtp = _smtp(settings["smtp"], problems)
    recipients = []
    if isinstance(settings.get("smtp"), Mapping):
        recipients = _recipients(settings["smtp"].get("to"), problems)
    group_by = _group_by(settings, problems)
    group_wait = _duration(settings, "group_wait", problems, allow_zero=True)[0]
    group_interval, interval_ms = _duration(settings, "group_interval", problems)
    resolve_timeout = _duration(settings, "resolve_timeout", problems)[0]
    repeats = {}
    for key in ("critical_repeat", "warning_repeat"):
        repeats[key], millis = _duration(settings, key, problems)
        if millis and interval_ms and millis < interval_ms:
            problems.append(
                f"{key} {repeats[key]} is shorter than group_interval {group_interval}: "
                "Alertmanager only sends at group_interval ticks"
            )
    send_resolved = settings.get("send_resolved", DEFAULTS["send_resolved"])
    if not isinstance(send_resolved, bool):
        problems.append(f"send_resolved must be true or false, got {send_resolved!r}")
    if problems:
        raise AlertmanagerConfigError(problems)

    glob = {"resolve_timeout": resolve_timeout}
    glob.update(smtp)
    return {
        "global": glob,
        "route": {
            "receiver": RECEIVER,
            "group_by": group_by,
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeats["warning_repeat"],
            "routes": [
                {
                    "matchers": ['severity="critical"'],
                    "receiver": RECEIVER,
                    "repeat_interval": repeats["critical_repeat"],
                },
                {
                    "matchers": ['severity="warning"'],
                    "receiver": RECEIVER,
                    "repeat_interval": repeats["warning_repeat"],
                },
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"', 'host=~".+"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["host"],
            }
        ],
        "receivers": [
            {
                "name": RECEIVER,
                "email_configs": [{"to": ", ".join(recipients), "send_resolved": send_resolved}],
            }
        ],
    }
