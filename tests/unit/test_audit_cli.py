"""`audit show` and `audit search --unanswered` on the demo inbox, through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
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


def test_show_and_unanswered_on_the_demo(tmp_path: Path, capsys: Any) -> None:
    cfg = demo_config(tmp_path)
    assert main(["--config", cfg, "--once"]) == 0
    capsys.readouterr()
    assert main(["--config", cfg, "audit", "show", BREWERY.strip("<>")]) == 0
    story = capsys.readouterr().out
    assert "arrived from Pieter van Dijk" in story and "colleague_replied: bob@acme-pumps.example" in story
    assert "answered by bob@acme-pumps.example: 1.7 business hours (2.5 h)" in story
    assert main(["--config", cfg, "audit", "show", "m.hughes@northbridge-water.example"]) == 0
    story = capsys.readouterr().out
    assert "draft: " in story and "notify:console: console" in story and "no answer yet" in story
    assert main(["--config", cfg, "audit", "show", "nobody@nowhere.example"]) == 1
    capsys.readouterr()
    assert main(["--config", cfg, "audit", "search", "--unanswered"]) == 0
    waiting = capsys.readouterr().out
    assert "m.hughes@northbridge-water.example" in waiting
    brewery = [line for line in waiting.splitlines() if "pieter@vandijk-brewery.example" in line]
    assert brewery and all("Re: CIP" in line for line in brewery)  # the follow-up waits; the first mail was answered
    assert waiting.splitlines()[0].split()[:2] == ["received", "waiting"]  # how long each has waited
    assert max(len(line) for line in waiting.splitlines()) <= 100
    assert main(["--config", cfg, "audit", "search", "--unanswered", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == int(waiting.splitlines()[-1].split()[0]) and not any(r["answered_at"] for r in rows)
    assert main(["--config", cfg, "audit", "search", "--older-than", "2000-01-01"]) == 0  # a date works too
    assert capsys.readouterr().out.strip().endswith("0 decision(s)")
    assert main(["--config", cfg, "audit", "search", "--unanswered", "--older-than", "100000h"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 decision(s)")
