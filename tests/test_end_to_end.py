"""The real bot process (`python run.py ...`) on the offline default: the demo inbox, a temp state directory."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def config_in(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["mail"]["maildir"]["seed"] = str(ROOT / "demo" / "inbox")
    data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run(cfg: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(cfg), *args], cwd=ROOT,
                          capture_output=True, input=stdin, timeout=120)


def maildir_files(root: Path, folder: str) -> list[Path]:
    base = root if folder == "INBOX" else root / folder
    return [p for sub in ("new", "cur") for p in (base / sub).glob("*")] if base.exists() else []


def test_demo_run_processes_everything_once(tmp_path: Path) -> None:
    cfg = config_in(tmp_path)
    first = run(cfg, "--once")
    assert first.returncode == 0, first.stderr.decode()
    state = tmp_path / "state"
    rows = list(csv.DictReader((state / "audit.csv").open(encoding="utf-8-sig")))
    demo = sorted((ROOT / "demo" / "inbox").glob("*.eml"))
    assert len(rows) == len(demo) >= 30
    assert len({r["message_id"] for r in rows}) == len(rows)
    drafts = maildir_files(state / "maildir", ".Drafts")
    leads = [r for r in rows if r["category"] == "lead" and r["draft_id"]]
    assert drafts and len(drafts) == len(leads)
    assert "new lead for" in first.stderr.decode()  # the console notification
    assert (state / "ledger.sqlite3").exists()
    assert oct((state / "ledger.sqlite3").stat().st_mode & 0o777) == "0o600"
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    # the follow-up in a thread our colleague answered stays unassigned, without a draft
    follow = [r for r in rows if "colleague_replied" in r["reasons"]]
    assert follow and all(not r["assignee"] and not r["draft_id"] for r in follow)
    # The row says what really happened, and how to find the message: HubSpot is off, the console notifies.
    assert (state / "audit.csv").read_bytes().startswith(b"\xef\xbb\xbfprocessed_at,")  # Excel reads it as UTF-8
    assert not any("crm" in r["actions"] for r in rows)
    assert all("notify console" in r["actions"] for r in leads)
    assert all(r["summary"] for r in rows)
    for r in rows:  # a path relative to the config file that opens the message
        path = cfg.parent / r["link"]
        assert path.is_file() and path.name.startswith(r["provider_id"]), r["link"]
    lead_file = cfg.parent / next(r["link"] for r in leads)
    assert lead_file.parent.parent.name.startswith(".Triage.")  # the archived lead, where it now is

    second = run(cfg, "--once")
    assert second.returncode == 0
    assert "listed 0; processed 0" in second.stderr.decode()
    assert len(list(csv.DictReader((state / "audit.csv").open(encoding="utf-8-sig")))) == len(rows)
    assert len(maildir_files(state / "maildir", ".Drafts")) == len(drafts)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    cfg = config_in(tmp_path)
    result = run(cfg, "--dry-run")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(list((ROOT / "demo" / "inbox").glob("*.eml")))
    assert all(line.startswith("would ") for line in lines)
    assert "would " not in result.stderr.decode().replace("nothing was changed", "")  # each decision printed once
    assert not (tmp_path / "state").exists()  # no maildir, no ledger: a dry run creates nothing
    assert "processed 0" not in run(cfg, "--once").stderr.decode()  # the real run still has everything to do
    again = run(cfg, "--dry-run")  # on a bot that has run: nothing left to decide, nothing changed
    assert again.returncode == 0 and again.stdout == b""


def test_classify_prints_one_json_line_per_message_and_survives_garbage(tmp_path: Path) -> None:
    cfg = config_in(tmp_path)
    demo = ROOT / "demo" / "inbox"
    result = run(cfg, "classify", str(demo / "02-lead-en-web-form.eml"), str(demo))
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(lines) == 1 + len(list(demo.glob("*.eml")))
    for line in lines:
        assert {"file", "message_id", "category", "confidence", "language", "action", "assignee", "prefilter",
                "reasons"} <= set(line)
    assert not (tmp_path / "state").exists()  # no state was written
    garbage = run(cfg, "classify", "-", str(tmp_path / "missing.eml"), stdin=b"\x00\xff" * 100)
    out = [json.loads(line) for line in garbage.stdout.decode().splitlines()]
    assert garbage.returncode == 1 and len(out) == 2  # an input failed: the exit code says so
    assert "error" in out[1] and "missing.eml" in out[1]["file"]
    assert "1 of 2 input(s) failed" in garbage.stderr.decode()
    (tmp_path / "empty").mkdir()
    nothing = run(cfg, "classify", str(tmp_path / "empty"))
    assert nothing.returncode == 1 and nothing.stdout == b""
    assert "no .eml file in" in nothing.stderr.decode() and "no input" in nothing.stderr.decode()


def test_bad_config_fails_at_start_listing_every_problem(tmp_path: Path) -> None:
    cfg = config_in(tmp_path, poll__interval_seconds="often", classify__threshold=3)
    for args in (["check"], ["--once"]):
        result = run(cfg, *args)
        err = result.stderr.decode()
        assert result.returncode == 2
        assert "poll.interval_seconds" in err and "classify.threshold" in err and "2 problem(s)" in err
    assert not (tmp_path / "state").exists()


def test_unwritable_state_directory_stops_before_touching_mail(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "state"
        blocker.write_text("a file where the state directory should be")
    else:
        (tmp_path / "state").mkdir(mode=0o500)
    cfg = config_in(tmp_path)
    result = run(cfg, "--once")
    assert result.returncode == 3
    assert "state directory" in result.stderr.decode()


def test_daemon_stops_warm_on_sigterm(tmp_path: Path) -> None:
    cfg = config_in(tmp_path, poll__interval_seconds=5)
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--config", str(cfg)], cwd=ROOT,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    output = b""
    deadline = time.monotonic() + 60
    while b"cycle done" not in output and time.monotonic() < deadline:
        output += proc.stderr.readline()
    assert b"cycle done" in output, output.decode()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the daemon did not stop on SIGTERM")
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "state" / "audit.csv").open(encoding="utf-8-sig")))
    assert len(rows) == len(list((ROOT / "demo" / "inbox").glob("*.eml")))


def log_lines(err: str) -> list[str]:
    """The bot's own lines on stderr (a library's Python warning, e.g. about an old Python, is not the bot's)."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", line)]


def revoked_gmail(tmp_path: Path, gm: Any, **changes: object) -> Path:
    """A config for Gmail whose stored authorization was revoked, with `changes` on top."""
    token = tmp_path / "state" / "gmail-token.json"
    token.parent.mkdir(mode=0o700)
    gm.write_token_file(token)
    info = json.loads(token.read_text())  # granted for the sheet too, as `auth gmail` asks when the sheet uses it
    token.write_text(json.dumps(info | {"scopes": info["scopes"] + ["https://www.googleapis.com/auth/spreadsheets"]}))
    gm.revoke_refresh_token(info["refresh_token"])
    gm.expire_access_tokens()
    return config_in(tmp_path, mail__provider="gmail", mail__gmail__token_file=str(token),
                     mail__gmail__api_endpoint=gm.server.url + "/",
                     mail__gmail__batch_uri=gm.server.url + "/batch/gmail/v1",
                     mail__gmail__token_uri=gm.server.url + "/token", **changes)


def test_lost_gmail_authorization_stops_with_one_clear_line(tmp_path: Path) -> None:
    from tests.contract.fake_gmail import FakeGmail, wall_clock

    with FakeGmail(clock=wall_clock) as gm:
        result = run(revoked_gmail(tmp_path, gm), "--once")
    err = result.stderr.decode()
    assert result.returncode == 2, err
    (line,) = log_lines(err)  # the console has nothing more to say than this
    assert "ERROR" in line and line.endswith("run `python run.py auth gmail` again")


def test_lost_gmail_authorization_alerts_the_team_in_slack_without_the_gmail_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit sheet reuses the Gmail token, so building it fails too; the Slack alert must not depend on it."""
    from tests.contract.fake_gmail import FakeGmail, wall_clock
    from tests.contract.fake_slack import FakeSlack
    from tests.httpfake import FakeServer

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    with FakeGmail(clock=wall_clock) as gm, FakeServer() as srv:
        slack = FakeSlack(srv, channels={"C0ALERTS"})
        cfg = revoked_gmail(tmp_path, gm, audit__sheets__enabled=True, audit__sheets__spreadsheet_key="sheet-1",
                            audit__sheets__credentials_file="", notify__slack__enabled=True,
                            notify__slack__base_url=srv.url + "/api/", notify__slack__fallback_channel="C0ALERTS")
        result = run(cfg, "--once")
    err = result.stderr.decode()
    assert result.returncode == 2, err
    (line,) = log_lines(err)
    assert "Gmail authorization expired or was revoked" in line
    assert line.endswith("(the team was alerted in Slack channel C0ALERTS)")
    (alert,) = slack.in_channel("C0ALERTS")
    assert "run `python run.py auth gmail` again" in alert.text
