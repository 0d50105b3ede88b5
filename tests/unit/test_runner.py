"""The running bot: config reload (a good and a broken file, SIGHUP) and the metrics endpoint, scraped over HTTP."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Config, MetricsConfig, SlackConfig, load_config
from bot.pipeline import Services
from bot.runner import Runner, file_stamp
from bot.state import Ledger, now_utc
from tests.contract.fake_slack import FakeSlack
from tests.fake_mail import FakeMailProvider
from tests.fakes import Clock, FakeAuditSink, KeywordClassifier, raw_mail
from tests.httpfake import FakeServer

ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    """A config file on disk, and services built from it over one in-memory mailbox (as a restart would find)."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "config.yaml"
        self.data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        self.data["state_dir"] = str(tmp_path / "state")
        self.data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
        self.data["notify"]["console"] = True
        self.save()
        self.mail: FakeMailProvider | None = None
        self.built: list[Config] = []

    def save(self) -> None:
        self.path.write_text(yaml.safe_dump(self.data), encoding="utf-8")

    def build(self, cfg: Config) -> Services:
        from bot.adapters.console import ConsoleNotifier

        self.built.append(cfg)
        if self.mail is None:
            self.mail = FakeMailProvider(processed_label=cfg.labels.processed)
        return Services(cfg=cfg, mail=self.mail, classifier=KeywordClassifier(),
                        ledger=Ledger(cfg.state_dir / "ledger.sqlite3"), audit_sinks=[FakeAuditSink()],
                        notifiers=[ConsoleNotifier()])


def lead(n: int) -> bytes:
    return raw_mail(f"Quote {n} [lead:en:0.95]", sender=f"Buyer {n} <b{n}@prospect.example>")


def test_an_edited_config_takes_effect_at_the_next_cycle_and_the_rotation_stays_fair(tmp_path: Path,
                                                                                   caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    dep = Deployment(tmp_path)
    runner = Runner(load_config(dep.path), build=dep.build)
    assert dep.mail is not None
    for n in range(3):
        dep.mail.add(lead(n))
    runner.cycle()
    assert [m["email"] for m in dep.data["routing"]["pools"]["inside_sales"]["members"]] == [
        "alice@acme-pumps.example", "bob@acme-pumps.example", "carla@acme-pumps.example"]
    dep.data["routing"]["pools"]["inside_sales"]["members"].pop(1)  # Bob leaves the team
    dep.data["routing"]["pools"]["inside_sales"]["members"].append({"name": "Dora New",
                                                                   "email": "dora@acme-pumps.example"})
    dep.save()
    for n in range(3, 6):
        dep.mail.add(lead(n))
    report = runner.cycle()
    assert "config reloaded from" in caplog.text
    assert [m.person.email for m in runner.cfg.routing.pools["inside_sales"].members] == [
        "alice@acme-pumps.example", "carla@acme-pumps.example", "dora@acme-pumps.example"]
    # One lead each: Bob gets none any more, Dora joins at the back of the queue.
    assert report.assigned == {"alice@acme-pumps.example": 1, "carla@acme-pumps.example": 1,
                               "dora@acme-pumps.example": 1}
    assert len(dep.built) == 2
    runner.cycle()
    assert len(dep.built) == 2  # an unchanged file is not read again


def test_a_broken_config_keeps_the_running_one_and_alerts_with_every_problem(tmp_path: Path, caplog: Any) -> None:
    dep = Deployment(tmp_path)
    runner = Runner(load_config(dep.path), build=dep.build)
    assert dep.mail is not None
    before = runner.cfg
    dep.data["poll"]["interval_seconds"] = "often"
    dep.data["routing"]["default_pool"] = "nowhere"
    dep.save()
    dep.mail.add(lead(1))
    report = runner.cycle()
    assert report.processed == 1  # the bot carries on with what it had
    assert runner.cfg is before and len(dep.built) == 1
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT:")]
    assert len(alerts) == 1 and "was changed but is invalid" in alerts[0]
    assert "poll.interval_seconds" in alerts[0] and "routing.default_pool" in alerts[0] and "2 problem(s)" in alerts[0]
    runner.cycle()
    assert len([r for r in caplog.records if r.getMessage().startswith("ALERT:")]) == 1  # said once per edit
    dep.data["poll"]["interval_seconds"] = 30
    dep.data["routing"]["default_pool"] = "inside_sales"
    dep.save()
    runner.cycle()
    assert runner.cfg.poll.interval_seconds == 30 and runner.interval() == 30.0
    recovered = [r.getMessage() for r in caplog.records if "config.yaml is valid again" in r.getMessage()]
    assert len(recovered) == 1


def test_sighup_rereads_the_file(tmp_path: Path) -> None:
    dep = Deployment(tmp_path)
    runner = Runner(load_config(dep.path), build=dep.build)
    dep.data["classify"]["threshold"] = 0.8
    dep.save()
    runner.stamp = file_stamp(dep.path)  # as if the edit kept size and mtime (a coarse clock, a copied file)
    assert not runner.reload_if_changed() and runner.cfg.classify.threshold == 0.7
    runner.reload_requested.set()  # what SIGHUP does
    assert runner.reload_if_changed() and runner.cfg.classify.threshold == 0.8
    assert not runner.reload_requested.is_set()


def test_a_stuck_poller_is_one_log_line_and_an_alert_through_the_running_slack_notifier(tmp_path: Path,
                                                                                    caplog: Any) -> None:
    """The alert goes out through the notifiers the bot runs with (here Slack, though the file has it off), and the
    log line says where it went."""
    from bot.adapters.console import ConsoleNotifier
    from bot.adapters.slack import SlackNotifier

    dep = Deployment(tmp_path)
    with FakeServer() as srv:
        slack = FakeSlack(srv, channels={"C0ALERTS"})
        slack_cfg = SlackConfig(enabled=True, token="xoxb-test-token", base_url=srv.url + "/api/",
                                fallback_channel="C0ALERTS", timeout_seconds=5)

        def build(cfg: Config) -> Services:
            services = dep.build(cfg)
            services.notifiers = [ConsoleNotifier(), SlackNotifier(slack_cfg, {}, sleep=lambda s: None)]
            return services

        clock = Clock(now_utc())
        runner = Runner(load_config(dep.path), build=build, clock=clock)
        assert dep.mail is not None
        dep.mail.fail_next("list_new", ConnectionError("mail.example: connection refused"), times=4)
        for _ in range(4):  # the fourth failing interval passes alerts.stuck_after_intervals (3)
            clock.now += timedelta(seconds=runner.interval())
            with pytest.raises(ConnectionError):
                runner.cycle()
        clock.now += timedelta(seconds=runner.interval())
        runner.cycle()
        alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT:")]
        posted = [p.text for p in slack.in_channel("C0ALERTS")]
    assert len(alerts) == 2 and len(posted) == 2
    assert "no poll cycle has succeeded" in alerts[0] and "connection refused" in alerts[0]
    assert alerts[0].endswith("(the team was alerted in Slack channel C0ALERTS)")
    assert "no poll cycle has succeeded" in posted[0] and "poll cycles succeed again" in posted[1]
    assert alerts[1].startswith("ALERT: recovered after")


def scrape(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # a real HTTP client, over a socket
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_the_metrics_endpoint_serves_prometheus_metrics_and_healthz(tmp_path: Path) -> None:
    from bot.metrics import start

    dep = Deployment(tmp_path)
    dep.data["metrics"] = {"enabled": True, "address": "127.0.0.1", "port": 9464}
    dep.save()
    runner = Runner(load_config(dep.path), build=dep.build)
    assert dep.mail is not None
    server = start(MetricsConfig(True, "127.0.0.1", 0), runner.monitor.health)  # port 0: any free port
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert server.server_address[0] == "127.0.0.1"
        assert scrape(base + "/healthz") == (503, "unhealthy: no cycle has completed yet\n")
        _, before = scrape(base + "/metrics")
        for n in range(2):
            dep.mail.add(lead(n))
        dep.mail.add(raw_mail("Low confidence [lead:en:0.3]"))
        runner.services.audit_sinks[0].down = True  # type: ignore[attr-defined]  # the audit rows wait in the outbox
        runner.cycle()
        status, text = scrape(base + "/metrics")
        assert status == 200
        leads = 'triage_messages_total{action="draft+assign",category="lead"}'
        assert sample(text, leads) - sample(before, leads) == 2
        review = 'triage_messages_total{action="review",category="lead"}'
        assert sample(text, review) - sample(before, review) == 1
        assert sample(text, "triage_drafts_total") - sample(before, "triage_drafts_total") == 2
        cycles = 'triage_cycles_total{outcome="ok"}'
        assert sample(text, cycles) - sample(before, cycles) == 1
        assert sample(text, "triage_last_success_timestamp_seconds") > 0
        assert 'triage_outbox_depth{sink="audit:fake"} 3.0' in text
        assert sample(text, 'triage_errors_total{service="audit:fake"}') >= 1
        for name in ("triage_cycle_duration_seconds_bucket", "triage_review_rate", "triage_llm_calls_total",
                     "triage_llm_tokens_total", "triage_llm_cost_usd_total", "triage_retries_total",
                     "triage_errors_total", "triage_gmail_quota_units_total", "triage_healthy 1.0"):
            assert name in text, name
        status, line = scrape(base + "/healthz")
        assert status == 200 and line.startswith("healthy: last cycle")
    finally:
        server.shutdown()
        server.server_close()
