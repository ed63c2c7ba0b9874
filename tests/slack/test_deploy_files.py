"""deploy/: the Grafana dashboard and the alerting rules query metrics /metrics has."""

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.slack.conftest import Harness
from tests.slack.test_alerts_e2e import push_event, send_webhook

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bmirrorbot_[a-z_]+\b")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["panels"]
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_files() -> list[dict]:
    return [yaml.safe_load((DEPLOY / "alerting-rules.yml").read_text())]


def rule_queries() -> list[str]:
    return [rule["expr"] for doc in rule_files() for g in doc["groups"] for rule in g["rules"]]


def balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.fixture
def harness(webhook_harness: Harness) -> Harness:
    return webhook_harness


def test_every_metric_the_dashboard_and_rules_query_is_on_metrics(linked: Harness):
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    send_webhook(linked, push_event(linked))
    linked.wait(lambda: linked.metric("mirrorbot_mirror_up", host="github.example.org") == 1)
    text = httpx.get(f"{linked.server.url}/metrics").text
    families = list(text_string_to_metric_families(text))
    # A family is served even before it has a sample (no mirror has succeeded yet).
    served = {family.name for family in families} | {
        sample.name for family in families for sample in family.samples
    }
    queried = {
        name for expr in dashboard_queries() + rule_queries() for name in METRIC.findall(expr)
    }
    assert queried, "the dashboard queries no mirrorbot metric"
    assert queried <= served, f"not on /metrics: {sorted(queried - served)}"


def test_the_alerting_rules_are_a_prometheus_rule_file():
    for doc in rule_files():
        assert set(doc) == {"groups"}
        names = [group["name"] for group in doc["groups"]]
        assert len(names) == len(set(names)), "group names must be unique"
        rules = [rule for group in doc["groups"] for rule in group["rules"]]
        assert len(rules) >= 2
        for rule in rules:
            assert set(rule) <= RULE_KEYS, set(rule) - RULE_KEYS
            assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and balanced(rule["expr"])
            assert DURATION.match(rule.get("for", "0s"))
            for value in {**rule.get("labels", {}), **rule.get("annotations", {})}.values():
                assert isinstance(value, str)


def test_the_dashboard_queries_are_well_formed():
    for expr in dashboard_queries():
        assert balanced(expr), expr
