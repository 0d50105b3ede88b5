"""`run.py stats`: figures from the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.models import Classification, Usage
from bot.state import Ledger
from bot.stats import collect, render

ROOT = Path(__file__).resolve().parents[2]


def decide(ledger: Ledger, pid: str, category: str, classifier: str, day: str, review: bool = False,
           usage: Usage | None = None) -> None:
    c = Classification(category, 0.9, "en", classifier, usage=usage or Usage())
    ledger.save_decision(pid, f"t-{pid}", f"<{pid}@x.example>", "", c, category, review, "",
                         {"classification": {"classifier": classifier, "usage": vars(c.usage)}})
    # decided_at is "now" when saved; move it to the day the test wants
    ledger.db.execute("UPDATE messages SET decided_at=? WHERE provider_id=?", (f"{day}T10:00:00+00:00", pid))


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "state" / "ledger.sqlite3")
    llm = Usage(calls=1, prompt_tokens=600, completion_tokens=100, cost_usd=0.00015)
    decide(led, "a", "lead", "llm:gpt-4o-mini", "2021-03-01", usage=llm)
    decide(led, "b", "lead", "llm:gpt-4o-mini", "2021-03-02", usage=llm)
    decide(led, "c", "spam", "offline", "2021-03-02")
    decide(led, "d", "other", "prefilter:auto_reply", "2021-03-02")
    decide(led, "e", "support", "cache:llm:gpt-4o-mini", "2021-03-02", review=True)
    led.add_correction("a", "<a@x.example>", "lead", "vendor", "label")
    led.add_correction("b", "<b@x.example>", "lead", "vendor", "sheet")
    led.add_correction("e", "<e@x.example>", "support", "support", "label")
    led.enqueue("a", "audit:sheets")
    led.enqueue("b", "audit:sheets")
    led.enqueue("b", "crm:hubspot")
    return led


def test_counts_per_category_classifier_and_day(ledger: Ledger) -> None:
    s = collect(ledger)
    assert s["messages"] == 5 and s["review"] == 1 and s["review_rate"] == 0.2
    assert s["categories"] == {"lead": 2, "spam": 1, "other": 1, "support": 1}
    assert s["classifiers"] == {"llm:gpt-4o-mini": 2, "offline": 1, "prefilter:auto_reply": 1,
                                "cache:llm:gpt-4o-mini": 1}
    assert s["days"]["2021-03-01"] == {"messages": 1, "review": 0, "llm_calls": 1, "input_tokens": 600,
                                       "output_tokens": 100, "cost_usd": 0.00015}
    assert s["days"]["2021-03-02"]["messages"] == 4 and s["days"]["2021-03-02"]["llm_calls"] == 1
    assert s["llm"] == {"llm_calls": 2, "input_tokens": 1200, "output_tokens": 200, "cost_usd": 0.0003}
    assert s["corrections"] == {"count": 3, "by_source": {"label": 2, "sheet": 1}, "changed": 2,
                                "top": {"lead -> vendor": 2, "review -> support (confirmed)": 1}}
    assert s["outbox_backlog"] == {"audit:sheets": 2, "crm:hubspot": 1}


def test_since_leaves_out_older_decisions(ledger: Ledger) -> None:
    s = collect(ledger, "2021-03-02T00:00:00+00:00")
    assert s["messages"] == 4 and list(s["days"]) == ["2021-03-02"]


def test_the_text_shows_the_day_table_and_the_corrections(ledger: Ledger) -> None:
    text = render(collect(ledger))
    assert "5 decision(s)" in text and "review 1 (20.0%)" in text
    assert any(line.startswith("2021-03-01") and "600" in line for line in text.splitlines())
    assert "lead -> vendor: 2" in text and "audit:sheets 2" in text


def test_the_command_reads_the_configured_state(tmp_path: Path, ledger: Ledger,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")  # state/ next to it
    assert main(["--config", str(tmp_path / "config.yaml"), "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == 5
    assert main(["--config", str(tmp_path / "config.yaml"), "stats", "--since", "1d"]) == 0
    assert "0 decision(s)" in capsys.readouterr().out  # everything above is years old


def test_no_ledger_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["--config", str(tmp_path / "config.yaml"), "stats"]) == 0
    assert "no decisions recorded yet" in capsys.readouterr().out
    assert not (tmp_path / "state").exists()
