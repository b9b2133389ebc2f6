"""Unit tests of the Alertmanager configuration builder and its filter."""

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.nixos.plugins.filter.alertmanager_config import FilterModule
from ansible_collections.homelab.nixos.plugins.module_utils._alertmanager import (
    AlertmanagerConfigError,
    alertmanager_config,
    duration_ms,
)

SECRET = "hunter2-Sup3r-s3cret"
SMTP = {
    "smarthost": "smtp.example.com:587",
    "from": "alertmanager@example.com",
    "to": ["admin@example.com", "oncall@example.com"],
    "auth_username": "alertmanager@example.com",
    "auth_password_file": "/var/lib/alertmanager/smtp-password",
}


def _settings(**kw):
    settings = {"smtp": copy.deepcopy(SMTP)}
    settings.update(kw)
    return settings


def _smtp(**kw):
    smtp = copy.deepcopy(SMTP)
    for key, value in kw.items():
        if value is None:
            smtp.pop(key, None)
        else:
            smtp[key] = value
    return {"smtp": smtp}


def _problems(settings):
    with pytest.raises(AlertmanagerConfigError) as exc:
        alertmanager_config(settings)
    return exc.value.problems


# --- success -----------------------------------------------------------------


def test_defaults_follow_the_seed_facts():
    config = alertmanager_config(_settings())
    route = config["route"]
    assert route["receiver"] == "email"
    assert route["group_by"] == ["alertname", "cluster", "service"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "30m")
    by_severity = {r["matchers"][0]: r for r in route["routes"]}
    assert by_severity['severity="critical"']["repeat_interval"] == "5m"
    assert by_severity['severity="warning"']["repeat_interval"] == "30m"
    assert all(r["receiver"] == "email" for r in route["routes"])
    assert config["global"]["resolve_timeout"] == "5m"


def test_smtp_goes_to_global_with_the_password_file_only():
    config = alertmanager_config(_settings())
    assert config["global"] == {
        "resolve_timeout": "5m",
        "smtp_smarthost": "smtp.example.com:587",
        "smtp_from": "alertmanager@example.com",
        "smtp_require_tls": True,
        "smtp_auth_username": "alertmanager@example.com",
        "smtp_auth_password_file": "/var/lib/alertmanager/smtp-password",
    }
    assert "smtp_auth_password" not in config["global"]


def test_one_email_receiver_with_all_recipients():
    config = alertmanager_config(_settings())
    assert config["receivers"] == [
        {
            "name": "email",
            "email_configs": [{"to": "admin@example.com, oncall@example.com", "send_resolved": True}],
        }
    ]


def test_single_recipient_string_and_display_names():
    config = alertmanager_config(_smtp(to="admin@example.com", **{"from": "Homelab <am@example.com>"}))
    assert config["receivers"][0]["email_configs"][0]["to"] == "admin@example.com"
    assert config["global"]["smtp_from"] == "Homelab <am@example.com>"


def test_critical_inhibits_warnings_of_the_same_host():
    (rule,) = alertmanager_config(_settings())["inhibit_rules"]
    assert rule["equal"] == ["host"]
    assert 'severity="critical"' in rule["source_matchers"]
    # A critical without a host label must not silence every host-less warning.
    assert 'host=~".+"' in rule["source_matchers"]
    assert rule["target_matchers"] == ['severity="warning"']


def test_no_auth_and_no_tls():
    config = alertmanager_config(_smtp(auth_username=None, auth_password_file=None, require_tls=False))
    assert config["global"]["smtp_require_tls"] is False
    assert not [k for k in config["global"] if k.startswith("smtp_auth")]


def test_overrides():
    config = alertmanager_config(
        _settings(
            group_by=["alertname", "host"],
            group_wait="0s",
            group_interval="1m",
            critical_repeat="2m",
            warning_repeat="1h30m",
            resolve_timeout="10m",
            send_resolved=False,
        )
    )
    route = config["route"]
    assert route["group_by"] == ["alertname", "host"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("0s", "1m", "1h30m")
    assert [r["repeat_interval"] for r in route["routes"]] == ["2m", "1h30m"]
    assert config["global"]["resolve_timeout"] == "10m"
    assert config["receivers"][0]["email_configs"][0]["send_resolved"] is False


def test_group_by_all_labels():
    assert alertmanager_config(_settings(group_by=["..."]))["route"]["group_by"] == ["..."]


def test_ipv6_smarthost():
    assert alertmanager_config(_smtp(smarthost="[2001:db8::1]:25"))["global"]["smtp_smarthost"] == "[2001:db8::1]:25"


@pytest.mark.parametrize(
    ("text", "millis"),
    [("0", 0), ("0s", 0), ("30s", 30000), ("5m", 300000), ("1h30m", 5400000), ("1d", 86400000), ("250ms", 250)],
)
def test_duration_ms(text, millis):
    assert duration_ms(text) == millis


@pytest.mark.parametrize("text", ["", "5", "5x", "30m1h", "1.5h", " 5m", "-5m", 5, None])
def test_duration_ms_rejects(text):
    assert duration_ms(text) is None


def test_filter_plugin_returns_the_config():
    flt = FilterModule().filters()["alertmanager_config"]
    assert flt(_settings()) == alertmanager_config(_settings())


# --- failures ------------------------------------------------------------------


@pytest.mark.parametrize("to", [[], "", None, ["not-an-address"], ["a@example.com, b@example.com"]])
def test_recipients_are_required(to):
    problems = _problems(_smtp(to=to))
    assert any(p.startswith("smtp.to") for p in problems), problems


@pytest.mark.parametrize(
    "smarthost", ["smtp.example.com", "smtp.example.com:", ":587", "smtp.example.com:0", "host:99999", "a b:25", 587]
)
def test_malformed_smarthost(smarthost):
    problems = _problems(_smtp(smarthost=smarthost))
    assert any(p.startswith("smtp.smarthost must be 'host:port'") for p in problems), problems


@pytest.mark.parametrize(
    "key", ["group_wait", "group_interval", "critical_repeat", "warning_repeat", "resolve_timeout"]
)
def test_malformed_durations(key):
    problems = _problems(_settings(**{key: "5 minutes"}))
    assert problems == [
        f"{key} must be a duration like '30s', '5m' or '1h30m' (units y w d h m s ms, largest first), got '5 minutes'"
    ]


@pytest.mark.parametrize("key", ["group_interval", "critical_repeat", "warning_repeat", "resolve_timeout"])
def test_zero_durations(key):
    assert f"{key} must be longer than zero, got '0s'" in _problems(_settings(**{key: "0s"}))


def test_repeat_shorter_than_group_interval():
    problems = _problems(_settings(critical_repeat="1m"))
    assert problems == [
        "critical_repeat 1m is shorter than group_interval 5m: Alertmanager only sends at group_interval ticks"
    ]


def test_every_problem_at_once():
    settings = _smtp(smarthost="nohost", to=[])
    settings.update(group_wait="soon", colour="red")
    problems = _problems(settings)
    assert len(problems) == 4, problems
    message = str(AlertmanagerConfigError(problems))
    assert message.startswith("4 Alertmanager setting problems:\n- ")


def test_missing_smtp_and_wrong_types():
    assert _problems({}) == ["settings.smtp is required (smarthost, from, to)"]
    assert _problems([]) == ["settings must be a mapping, got list"]
    assert _problems({"smtp": "smtp.example.com:25"}) == ["smtp must be a mapping with smarthost, from and to, got str"]


def test_bad_sender_group_by_and_booleans():
    settings = _smtp(require_tls="yes", **{"from": "alertmanager"})
    settings.update(group_by=["alertname", "bad-label", "alertname"], send_resolved="no")
    problems = _problems(settings)
    assert "smtp.from must be an e-mail address, got 'alertmanager'" in problems
    assert "smtp.require_tls must be true or false, got 'yes'" in problems
    assert "group_by holds 'bad-label', not label names" in problems
    assert any(p.startswith("group_by repeats a label") for p in problems)
    assert "send_resolved must be true or false, got 'no'" in problems
    assert _problems(_settings(group_by=[])) == [
        "group_by must be a non-empty list of label names (or ['...']), got []"
    ]


def test_username_and_password_file_go_together():
    assert _problems(_smtp(auth_password_file=None)) == ["smtp.auth_username is set but auth_password_file is not"]
    assert _problems(_smtp(auth_username=None)) == ["smtp.auth_password_file is set but auth_username is not"]


# --- the password never leaks ----------------------------------------------------


def test_inline_password_is_refused_without_showing_it():
    problems = _problems(_smtp(auth_password_file=None, auth_password=SECRET))
    assert len(problems) == 1
    assert problems[0].startswith("smtp.auth_password is refused")
    assert SECRET not in problems[0]


def test_password_in_both_forms_is_refused_without_showing_it():
    problems = _problems(_smtp(auth_password=SECRET))
    assert problems == [
        "smtp: the password is given in both forms, auth_password and auth_password_file; keep only auth_password_file"
    ]


def test_password_given_as_the_file_is_not_echoed():
    # A password pasted into auth_password_file (not an absolute path) must not be shown.
    problems = _problems(_smtp(auth_password_file=SECRET))
    assert problems == [
        "smtp.auth_password_file must be the absolute path of the file that holds the password, "
        "not the password itself (its value is not shown)"
    ]


def test_password_under_an_unknown_key_is_not_echoed():
    problems = _problems(_smtp(password=SECRET))
    assert len(problems) == 1
    assert "'password'" in problems[0]
    assert SECRET not in problems[0]


def test_filter_error_names_the_filter_and_hides_the_password():
    flt = FilterModule().filters()["alertmanager_config"]
    with pytest.raises(AnsibleFilterError) as exc:
        flt(_smtp(auth_password=SECRET, smarthost="bad", to=[]))
    message = str(exc.value)
    assert message.startswith("alertmanager_config: 3 Alertmanager setting problems:")
    assert SECRET not in message
    assert isinstance(exc.value.__cause__, AlertmanagerConfigError)
