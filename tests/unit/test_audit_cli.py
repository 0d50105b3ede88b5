"""`audit show` and `audit search --unanswered` on the demo inbox, through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.shifted import faketime_env

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-12-07"  # after the demo mail and the answers demo/answer.py would write
BREWERY = "<CAKd9vD-brew-20261124-0812@mail.vandijk-brewery.example>"


def demo_config(tmp_path: Path) -> str:
    text = (ROOT / "config.yaml").read_text()
    for key, value in (("state_dir: state", f"state_dir: {tmp_path / 'state'}"),
                       ("path: state/maildir", f"path: {tmp_path / 'state' / 'maildir'}"),
                       ("seed: demo/inbox", f"seed: {ROOT / 'demo' / 'inbox'}"),
                       ("csv_path: state/audit.csv", f"csv_path: {tmp_path / 'state' / 'audit.csv'}"),
                       ("model_path: state/model.json", f"model_path: {tmp_path / 'state' / 'model.json'}"),
                       ("templates_dir: bot/templates", f"templates_dir: {ROOT / 'bot' / 'templates'}")):
        assert key in text
        text = text.replace(key, value)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def bot_on(day: str, cfg: str, *args: str) -> tuple[int, str]:
    """The bot's command line as a process whose wall clock reads `day` (libfaketime), whatever today is: the demo
    mail is dated November 2026, and mail dated after the moment the bot reads it counts as arriving then."""
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", cfg, *args],
                          env=faketime_env(f"@{day} 10:00:00"),
                          capture_output=True, timeout=300)
    return done.returncode, done.stdout.decode()


def test_show_and_unanswered_on_the_demo(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path)
    assert bot_on(DAY, cfg, "--once")[0] == 0
    code, story = bot_on(DAY, cfg, "audit", "show", BREWERY.strip("<>"))
    assert code == 0
    assert "arrived from Pieter van Dijk" in story and "bob@acme-pumps.example answered in this thread" in story
    assert "answered by bob@acme-pumps.example: 1.7 business hours (2.5 h)" in story
    code, story = bot_on(DAY, cfg, "audit", "show", "m.hughes@northbridge-water.example")
    assert code == 0
    assert "draft: " in story and "notify:console: console" in story and "no answer yet" in story
    assert bot_on(DAY, cfg, "audit", "show", "nobody@nowhere.example")[0] == 1
    code, waiting = bot_on(DAY, cfg, "audit", "search", "--unanswered")
    assert code == 0
    assert "m.hughes@northbridge-water.example" in waiting
    brewery = [line for line in waiting.splitlines() if "pieter@vandijk-brewery.example" in line]
    assert brewery and all("Re: CIP" in line for line in brewery)  # the follow-up waits; the first mail was answered
    assert waiting.splitlines()[0].split()[:2] == ["received", "waiting"]  # how long each has waited
    assert max(len(line) for line in waiting.splitlines()) <= 100
    code, out = bot_on(DAY, cfg, "audit", "search", "--unanswered", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == int(waiting.splitlines()[-1].split()[0])
    assert not any(r["answered_at"] for r in rows)
    code, out = bot_on(DAY, cfg, "audit", "search", "--older-than", "2000-01-01")  # a date works too
    assert code == 0 and out.strip().endswith("0 decision(s)")
    code, out = bot_on(DAY, cfg, "audit", "search", "--unanswered", "--older-than", "100000h")
    assert code == 0 and out.strip().endswith("0 decision(s)")
