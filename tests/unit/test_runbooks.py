"""Every alert's runbook_url points at a section of docs/runbooks.md."""

import os
import re

from ansible_collections.homelab.nixos.plugins.module_utils._alert_rules import RUNBOOK_URL, alert_names, alert_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNBOOKS = os.path.join(ROOT, "docs", "runbooks.md")


def _github_anchor(heading):
    """The fragment GitHub gives a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_section():
    with open(RUNBOOKS, encoding="utf-8") as f:
        headings = [line[3:] for line in f.read().splitlines() if line.startswith("## ")]
    anchors = {_github_anchor(heading) for heading in headings}
    document = alert_rules()
    urls = [rule["annotations"]["runbook_url"] for group in document["groups"] for rule in group["rules"]]
    assert len(urls) == len(alert_names(document))
    for url in urls:
        assert url.startswith(RUNBOOK_URL)
        assert url[len(RUNBOOK_URL) :] in anchors, f"{url}: no such section in docs/runbooks.md"


def test_runbooks_follow_the_rule_order():
    with open(RUNBOOKS, encoding="utf-8") as f:
        headings = [line[3:].strip() for line in f.read().splitlines() if line.startswith("## ")]
    alerts = alert_names(alert_rules())
    assert [h for h in headings if h in alerts] == alerts
