"""Liveness and alerts: the heartbeat, the health verdict, the monitor around each cycle, alerts, sd_notify."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import health
from bot.alerts import Alerter, conditions
from bot.monitor import Monitor, summary
from bot.pipeline import CycleReport
from bot.progress import Progress
from bot.state import Ledger, iso, now_utc
from tests.fakes import Clock, make_config

INTERVAL = 60


def setup(tmp_path: Path, **alerts: Any) -> tuple[Any, Ledger, Clock, list[str], Monitor]:
    cfg = make_config(tmp_path, {"poll": {"interval_seconds": INTERVAL}, "alerts": alerts})
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3")
    clock = Clock(now_utc())  # the ledger stamps rows with the real time: keep the fake clock near it
    sent: list[str] = []
    return cfg, ledger, clock, sent, Monitor(cfg, ledger, sent.append, clock=clock)


def failing_poll() -> CycleReport:
    raise ConnectionError("imap.example: connection refused")


def test_a_poll_that_keeps_failing_raises_one_alert_repeated_hourly_and_one_recovered(tmp_path: Path) -> None:
    cfg, ledger, clock, sent, monitor = setup(tmp_path)
    for _ in range(3):  # three intervals of failures: not stuck yet (stuck_after_intervals: 3)
        clock.now += timedelta(seconds=INTERVAL)
        with pytest.raises(ConnectionError):
            monitor.cycle(failing_poll)
    assert sent == []
    clock.now += timedelta(seconds=INTERVAL)
    with pytest.raises(ConnectionError):
        monitor.cycle(failing_poll)
    assert len(sent) == 1 and "no poll cycle has succeeded since the bot started" in sent[0]
    assert "connection refused" in sent[0]  # the last error, for whoever reads the alert
    for _ in range(59):  # the rest of the hour: still failing, no repeat
        clock.now += timedelta(seconds=INTERVAL)
        with pytest.raises(ConnectionError):
            monitor.cycle(failing_poll)
    assert len(sent) == 1
    clock.now += timedelta(seconds=INTERVAL)
    with pytest.raises(ConnectionError):
        monitor.cycle(failing_poll)
    assert len(sent) == 2 and sent[1].startswith("still: ")
    clock.now += timedelta(seconds=INTERVAL)
    monitor.cycle(lambda: CycleReport(listed=3, processed=3))
    assert len(sent) == 3 and sent[2].startswith("recovered after") and "poll cycles succeed again" in sent[2]
    for _ in range(5):
        clock.now += timedelta(seconds=INTERVAL)
        monitor.cycle(lambda: CycleReport())
    assert len(sent) == 3  # one recovered message, not one per cycle


def test_a_restart_neither_repeats_an_alert_early_nor_forgets_it(tmp_path: Path) -> None:
    cfg, ledger, clock, sent, monitor = setup(tmp_path)
    monitor.cycle(lambda: CycleReport())
    clock.now += timedelta(seconds=5 * INTERVAL)
    with pytest.raises(ConnectionError):
        monitor.cycle(failing_poll)
    assert len(sent) == 1 and f"since {iso(clock.now - timedelta(seconds=5 * INTERVAL))}" in sent[0]
    restarted = Monitor(cfg, ledger, sent.append, clock=clock)  # a new process, the same ledger
    clock.now += timedelta(seconds=INTERVAL)
    with pytest.raises(ConnectionError):
        restarted.cycle(failing_poll)
    assert len(sent) == 1
    restarted.cycle(lambda: CycleReport())
    assert len(sent) == 2 and sent[1].startswith("recovered")


def test_sink_failing_llm_budget_and_review_pile_up_are_alerted(tmp_path: Path) -> None:
    cfg, ledger, clock, sent, monitor = setup(tmp_path, sink_failing_minutes=30, review_pile_up=3)
    cfg = make_config(tmp_path, {"poll": {"interval_seconds": INTERVAL},
                                 "alerts": {"sink_failing_minutes": 30, "review_pile_up": 3},
                                 "classify": {"llm": {"enabled": True, "daily_budget_usd": 0.5}}})
    hb = health.beat(cfg, ledger, clock.now, "ok")
    from bot.models import Classification, Usage

    with ledger.transaction():
        for i in range(3):
            c = Classification("lead", 0.4, "en", "llm", usage=Usage(1, 100, 10, 0.2))
            ledger.save_decision(f"m{i}", f"t{i}", f"<m{i}@x>", iso(clock.now), c, "lead", True, "", {})
            ledger.set_status(f"m{i}", "done")
            ledger.enqueue(f"m{i}", "audit:sheets")
    item = ledger.pending_outbox("audit:sheets", 10)[0]
    ledger.outbox_failed([item.id], "SinkUnavailable: sheets is down")
    assert "sink:audit:sheets" not in conditions(cfg, ledger, hb, clock.now, clock.now)  # failing, not for long
    later = clock.now + timedelta(minutes=31)
    found = conditions(cfg, ledger, hb, clock.now, later)
    assert "audit:sheets has been failing for 31 min: 3 item(s) wait" in found["sink:audit:sheets"]
    assert "LLM budget for today is spent ($0.60 of $0.50)" in found["llm_budget"]
    assert "3 messages went to review in the last 24 hours" in found["review"]


def test_an_alert_that_cannot_be_sent_does_not_stop_the_daemon(tmp_path: Path, caplog: Any) -> None:
    cfg, ledger, clock, _, _ = setup(tmp_path)

    def broken(text: str) -> None:
        raise ConnectionError("slack down")

    Alerter(ledger, broken, timedelta(hours=1), clock).update({"stuck": "stuck"})
    assert "could not send an alert: ConnectionError" in caplog.text


def write_heartbeat(cfg: Any, last_success_ago: timedelta) -> None:
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3")
    health.beat(cfg, ledger, now_utc() - last_success_ago, "ok", "listed 0; processed 0")
    ledger.close()


def test_health_verdicts(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"poll": {"interval_seconds": INTERVAL}, "health": {"max_outbox_age_minutes": 60}})
    now = now_utc()
    assert health.verdict(cfg, None, {}, now) == (False, "unhealthy: no cycle has completed yet")
    fresh = health.Heartbeat(iso(now), iso(now - timedelta(seconds=30)), "ok", "", INTERVAL, 1)
    assert health.verdict(cfg, fresh, {}, now)[0]
    stale = health.Heartbeat(iso(now), iso(now - timedelta(seconds=181)), "failed: ConnectionError: x", "", 60, 1)
    ok, line = health.verdict(cfg, stale, {}, now)
    assert not ok and "last success 3 min ago (limit 3 min, 3 poll intervals); last cycle failed: Connection" in line
    old_queue = {"notify:slack": (4, iso(now - timedelta(minutes=61)), "")}
    ok, line = health.verdict(cfg, fresh, old_queue, now)
    assert not ok and line.startswith("unhealthy: notify:slack has 4 item(s) queued, the oldest 61 min old")
    lost = health.Heartbeat(iso(now), iso(now), "authorization lost: token revoked", "", 60, 1)
    assert health.verdict(cfg, lost, {}, now) == (
        False, "unhealthy: the mailbox is not authorized (authorization lost: token revoked)")


def test_the_heartbeat_is_in_the_ledger_and_in_a_file(tmp_path: Path) -> None:
    cfg, ledger, clock, _, monitor = setup(tmp_path)
    monitor.cycle(lambda: CycleReport(listed=1, processed=1))
    assert health.heartbeat_path(cfg).exists()
    from_file = health.read_heartbeat(cfg)
    assert from_file is not None and from_file.last_success == iso(clock.now) and from_file.outcome == "ok"
    health.heartbeat_path(cfg).unlink()
    assert health.read_heartbeat(cfg, ledger) == from_file  # the ledger's copy


def test_systemd_watchdog_is_pinged_after_a_successful_cycle(tmp_path: Path, monkeypatch: Any) -> None:
    cfg, ledger, clock, _, monitor = setup(tmp_path)
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        with pytest.raises(ConnectionError):
            monitor.cycle(failing_poll)
        monitor.cycle(lambda: CycleReport())
        assert systemd.recv(100) == b"WATCHDOG=1"  # only one message: the failed cycle sent none
        systemd.setblocking(False)
        with pytest.raises(BlockingIOError):
            systemd.recv(100)


def test_the_cycle_summary_says_what_people_care_about() -> None:
    report = CycleReport(listed=4, processed=4, drafts=2, review=1, trashed=3, failed=1,
                         assigned={"alice@acme-pumps.example": 1, "bob@acme-pumps.example": 1})
    text = summary(report)
    assert text.startswith("listed 4; processed 4; drafts 2; leads assigned 2 (alice@acme-pumps.example 1, "
                           "bob@acme-pumps.example 1); review 1; trashed 3; errors 1 (retried next cycle)")


def test_progress_is_a_bar_on_a_terminal_and_a_line_every_few_seconds_in_the_log(caplog: Any) -> None:
    import io

    now = [0.0]
    screen = io.StringIO()
    bar = Progress("eval", 4, stream=screen, tty=True, clock=lambda: now[0])
    for _ in range(4):
        bar.step()
    bar.finish()
    assert screen.getvalue().endswith(f"[{'#' * 30}] 4/4\n")
    caplog.set_level(logging.INFO, logger="bot.progress")
    quiet = Progress("first sync", 1000, stream=io.StringIO(), tty=False, clock=lambda: now[0])
    for _ in range(1000):
        now[0] += 1 / 64  # 15.6 s in all
        quiet.step()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.progress"]
    assert lines == ["first sync: 320 of 1000 (64.0/s, about 11 s left)",
                     "first sync: 640 of 1000 (64.0/s, about 6 s left)",
                     "first sync: 960 of 1000 (64.0/s, about 1 s left)"]


def test_health_command_exit_codes_with_a_stale_and_a_fresh_heartbeat(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    def health_command() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(root / "run.py"), "health", "--config", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=root)

    never = health_command()
    assert never.returncode == 1 and never.stdout == "unhealthy: no cycle has completed yet\n"
    assert not (tmp_path / "state").exists()  # a probe creates nothing
    cfg = make_config(tmp_path, {"state_dir": str(tmp_path / "state")})
    write_heartbeat(cfg, timedelta(seconds=10))
    fresh = health_command()
    assert fresh.returncode == 0 and fresh.stdout.startswith("healthy: last cycle 1") and fresh.stderr == ""
    write_heartbeat(cfg, timedelta(minutes=4))  # 3 intervals of 60 s have passed without a success
    stale = health_command()
    assert stale.returncode == 1 and stale.stdout.startswith("unhealthy: last success 4 min ago (limit 3 min")
    assert len(stale.stdout.splitlines()) == 1
    os.chmod(tmp_path / "state", 0o700)


def test_an_error_that_quotes_a_secret_is_masked_in_the_heartbeat_and_the_alert(tmp_path: Path,
                                                                                monkeypatch: Any) -> None:
    secret = "sk-live-5ecret-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    cfg = make_config(tmp_path, {"poll": {"interval_seconds": INTERVAL}, "classify": {"llm": {"enabled": True}}})
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3")
    clock, sent = Clock(now_utc()), []
    monitor = Monitor(cfg, ledger, sent.append, clock=clock)

    def leaky() -> CycleReport:
        raise RuntimeError(f"401 from the server: bad key {secret}")

    for _ in range(5):
        clock.now += timedelta(seconds=INTERVAL)
        with pytest.raises(RuntimeError):
            monitor.cycle(leaky)
    assert len(sent) == 1 and "bad key [secret]" in sent[0] and secret not in sent[0]
    assert secret not in health.heartbeat_path(cfg).read_text() and "[secret]" in health.heartbeat_path(cfg).read_text()
