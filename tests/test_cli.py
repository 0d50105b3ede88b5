"""The command line as an ops person uses it: the real `python run.py ...` on the demo inbox."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_end_to_end import ROOT, config_in, run


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose bot has run once on the demo inbox."""
    cfg = config_in(tmp_path_factory.mktemp("demo"))
    assert run(cfg, "--once").returncode == 0
    return cfg


def test_config_works_after_the_subcommand(demo: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "check", "--config", str(demo)], cwd=ROOT,
                            capture_output=True, timeout=60)
    assert result.returncode == 0 and b": OK (maildir" in result.stdout
    assert str(demo).encode() in result.stdout  # the file given, not config.yaml


def test_a_closed_pipe_is_not_an_error(demo: Path) -> None:
    for command in ("audit search --format json", "stats --json", "status --json"):
        result = subprocess.run(f"{sys.executable} {ROOT / 'run.py'} --config {demo} {command} | head -c 10",
                                shell=True, cwd=ROOT, capture_output=True, timeout=60)
        assert b"Traceback" not in result.stderr and b"BrokenPipe" not in result.stderr, result.stderr.decode()


def test_audit_search_categories_assignees_dates_and_formats(demo: Path) -> None:
    table = run(demo, "audit", "search", "--category", "Lead")
    lines = table.stdout.decode().splitlines()
    assert table.returncode == 0 and lines[-1].endswith("decision(s)") and int(lines[-1].split()[0]) >= 15
    assert max(len(line) for line in lines) <= 100
    unknown = run(demo, "audit", "search", "--category", "leads")
    assert unknown.returncode == 2 and b"unknown category 'leads'; choose one of lead, support" in unknown.stderr
    rows = [json.loads(line) for line in run(demo, "audit", "search", "--assignee", "Carla", "--format",
                                             "json").stdout.decode().splitlines()]
    assert rows and {r["assignee"] for r in rows} == {"carla@acme-pumps.example"}
    assert run(demo, "audit", "search", "--assignee", "nobody-here").returncode == 2
    # --since is on the received time: the demo mail arrived 9 to 16 November 2026
    late = list(csv.DictReader(io.StringIO(run(demo, "audit", "search", "--since", "2026-11-14", "--format",
                                                "csv").stdout.decode())))
    everything = list(csv.DictReader(io.StringIO(run(demo, "audit", "search", "--format", "csv").stdout.decode())))
    assert len(everything) == 35 and 0 < len(late) < 35
    assert all(r["received_at"] >= "2026-11-14" for r in late)
    review = run(demo, "audit", "search", "--category", "review", "--format", "json").stdout.decode().splitlines()
    assert review and all(json.loads(line)["review"] == "yes" for line in review)


def test_status_shows_the_last_cycle_and_whose_turn_is_next(demo: Path) -> None:
    result = run(demo, "status")
    text = result.stdout.decode()
    assert result.returncode == 0 and text.startswith("healthy: last cycle")
    assert "pool inside_sales: next lead goes to" in text and "away today: nobody" in text
    data = json.loads(run(demo, "status", "--json").stdout)
    inside = next(p for p in data["pools"] if p["pool"] == "inside_sales")
    totals = {p["email"]: p["total"] for p in inside["people"]}
    waiting = min(totals.values())
    assert inside["next"] in {e for e, n in totals.items() if n == waiting}  # the least-assigned is next
    assert sum(p["this_week"] for pool in data["pools"] for p in pool["people"]) in (0, 15)  # week boundary aside
    assert data["last_outcome"] == "ok" and data["outbox"] == {}


def test_check_names_missing_gmail_files_and_slack_variables(tmp_path: Path) -> None:
    gmail = config_in(tmp_path, mail__provider="gmail")
    result = run(gmail, "check")
    assert result.returncode == 1
    assert b"no mail.gmail.client_secrets_file" in result.stdout and b"run `python run.py auth gmail`" in result.stdout
    slack = config_in(tmp_path, notify__slack__enabled=True)
    env = {k: v for k, v in os.environ.items() if k != "SLACK_BOT_TOKEN"}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(slack), "check"], cwd=ROOT,
                            capture_output=True, timeout=60, env=env)
    assert result.returncode == 2 and b"set the environment variable SLACK_BOT_TOKEN" in result.stderr


def test_check_online_calls_each_enabled_service_once(tmp_path: Path) -> None:
    from tests.contract.fake_gmail import FakeGmail, wall_clock
    from tests.contract.fake_slack import FakeSlack
    from tests.httpfake import FakeServer

    with FakeGmail(clock=wall_clock) as gm, FakeServer() as srv:
        slack = FakeSlack(srv)
        token = tmp_path / "state" / "gmail-token.json"
        gm.write_token_file(token)
        cfg = config_in(tmp_path, mail__provider="gmail", mail__gmail__token_file=str(token),
                        mail__gmail__api_endpoint=gm.server.url + "/",
                        mail__gmail__batch_uri=gm.server.url + "/batch/gmail/v1",
                        mail__gmail__token_uri=gm.server.url + "/token",
                        notify__slack__enabled=True, notify__slack__base_url=srv.url + "/api/")
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.token}
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), "check", "--online", "--config", str(cfg)],
                                cwd=ROOT, capture_output=True, timeout=60, env=env)
        out = result.stdout.decode()
        assert result.returncode == 0, out + result.stderr.decode()
        assert f"mail: OK: Gmail mailbox {gm.address} answers" in out
        assert "slack: OK: Slack token works (team Acme Pumps" in out
        assert len(slack.calls_to("auth.test")) == 1
        slack.token = "xoxb-another"  # the token in the environment no longer works
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), "check", "--online", "--config", str(cfg)],
                                cwd=ROOT, capture_output=True, timeout=60, env=env)
        assert result.returncode == 1 and "slack: FAILED: SlackApiError" in result.stdout.decode()
        assert "invalid_auth" in result.stdout.decode()


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    cfg = config_in(tmp_path, log_format="json")
    result = run(cfg, "--once")
    lines = result.stderr.decode().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) >= 16 and {"time", "level", "logger", "message"} <= set(entries[-1])
    assert entries[-1]["message"].startswith("cycle done: listed 35")


def test_auth_gmail_console_works_without_a_browser(tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    from tests.contract.fake_gmail import FakeGmail, wall_clock

    secrets = tmp_path / "client.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.googleusercontent.com", "client_secret": "shh",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
        "redirect_uris": ["http://localhost"]}}))
    with FakeGmail(clock=wall_clock) as gm:
        token = tmp_path / "state" / "gmail-token.json"
        cfg = config_in(tmp_path, mail__provider="gmail", mail__gmail__token_file=str(token),
                        mail__gmail__client_secrets_file=str(secrets), mail__gmail__token_uri=gm.server.url + "/token")
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "auth", "gmail", "--console", "--config",
                                 str(cfg)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OAUTHLIB_INSECURE_TRANSPORT": "1"})
        assert proc.stdout is not None and proc.stdin is not None
        url = ""
        while not url:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            url = line.strip() if line.startswith("https://") else ""
        state = parse_qs(urlsplit(url).query)["state"][0]
        out, err = proc.communicate(f"http://localhost:1/?state={state}&code=4/one-time-code\n", timeout=60)
    assert proc.returncode == 0, err
    assert f"Saved the Gmail token to {token}" in out and token.exists()
    assert json.loads(token.read_text())["refresh_token"] in gm.refresh_tokens
