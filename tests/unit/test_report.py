"""The weekly report on a fixed ledger: the HTML parses, the charts are real PNGs, the figures are the ledger's."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bot.followup.store import FollowupStore
from bot.models import Classification, Usage
from bot.report.build import summary, write_report
from bot.report.period import previous_week, week_bounds
from bot.report.weekly import due_week
from bot.state import Ledger
from tests.fakes import make_config

EVIL = "<script>alert(1)</script> pumps"


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []
        self.tiles: dict[str, str] = {}
        self.scripts = 0
        self._in: list[str] = []
        self._bold = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "td":
            self.cells.append(data)
        elif self._in and self._in[-1] == "b":
            self._bold = data
        elif self._in and self._in[-1] == "div" and self._bold:
            self.tiles[data] = self._bold
            self._bold = ""


def decide(ledger: Ledger, n: int, at: str, category: str = "lead", review: bool = False, assignee: str = "",
           pool: str = "inside_sales", cost: float = 0.0, sender: str = "", subject: str = "") -> str:
    pid = f"m{n}"
    c = Classification(category, 0.9, "en", "offline", usage=Usage(calls=1 if cost else 0, prompt_tokens=100 if cost
                                                                   else 0, cost_usd=cost))
    record = {"email": {"from": sender or f"p{n}@cust{n % 2}.example", "subject": subject or f"Quote {n}",
                        "reply_to": ""},
              "decision": {"pool": pool, "assignee": {"email": assignee} if assignee else None,
                           "action": "draft+assign"}}
    with ledger.transaction():
        ledger.save_decision(pid, f"t{n}", f"<{pid}@x.example>", at, c, category, review, assignee, record)
        ledger.db.execute("UPDATE messages SET decided_at=?, status='done' WHERE provider_id=?", (at, pid))
    return pid


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "state" / "ledger.sqlite3")
    store = FollowupStore(led)
    store.start()
    alice, bob = "alice@acme-pumps.example", "bob@acme-pumps.example"
    # Week 2026-W48 is Monday 23 to Sunday 29 November (Berlin).
    answered = [(1, alice, 2.0), (2, alice, 4.0), (3, alice, 10.0), (4, bob, 1.0)]
    for n, who, hours in answered:
        at = f"2026-11-2{n + 2}T09:00:00+00:00"
        pid = decide(led, n, at, assignee=who)
        store.add(pid, f"t{n}", "lead", at, at, who, "inside_sales")
        store.update(pid, status="answered", answered_at=at, answered_by=who, response_hours=hours,
                     response_wall_hours=hours)
    waiting = decide(led, 5, "2026-11-27T10:00:00+00:00", assignee=bob, subject=EVIL, sender="x@form.example")
    store.add(waiting, "t5", "lead", "2026-11-27T10:00:00+00:00", "2026-11-27T10:00:00+00:00", bob, "inside_sales")
    store.add_event(waiting, "reassigned", "2026-11-30T09:00:00+00:00", bob, alice, 24.0, "no answer")
    decide(led, 6, "2026-11-24T12:00:00+00:00", category="support", review=True, cost=0.25)
    decide(led, 7, "2026-11-25T12:00:00+00:00", category="spam", cost=0.05)
    decide(led, 8, "2026-11-30T12:00:00+00:00", assignee=alice)  # the next week: not in the report
    with led.transaction():
        led.add_correction("m6", "<m6@x.example>", "support", "lead", "label")
        led.db.execute("UPDATE corrections SET at='2026-11-26T08:00:00+00:00'")
    return led


def test_the_weekly_report_shows_the_ledgers_figures(tmp_path: Path, ledger: Ledger) -> None:
    cfg = make_config(tmp_path)
    start, end, title = week_bounds(cfg, "2026-W48")
    assert (start, end) == ("2026-11-22T23:00:00+00:00", "2026-11-29T23:00:00+00:00")
    written = write_report(cfg, ledger, start, end, title, tmp_path / "out", "report-2026-W48")
    page = Page()
    page.feed(written.html.read_text(encoding="utf-8"))
    assert page.scripts == 0 and "&lt;script&gt;alert(1)&lt;/script&gt;" in written.html.read_text()
    assert page.tiles == {"messages": "7", "leads": "5", "leads answered": "4 of 5", "unanswered": "1",
                          "escalated": "1", "review rate": "14.3%", "corrections": "1", "LLM calls": "2",
                          "LLM cost": "$0.30"}
    cells = page.cells
    at = cells.index("alice@acme-pumps.example")
    assert cells[at:at + 4] == ["alice@acme-pumps.example", "3", "4.0", "8.8"]  # median of 2, 4, 10; p90 8.8
    at = cells.index("bob@acme-pumps.example")
    assert cells[at:at + 4] == ["bob@acme-pumps.example", "1", "1.0", "1.0"]
    assert EVIL in cells and "reassigned 2026-11-30 09:00 (from alice@acme-pumps.example)" in cells
    assert "form: form.example" not in cells and "cust1.example" in cells  # sources: sender domains
    assert "support -> lead" in cells
    assert len(page.images) == 5
    from PIL import Image

    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.format == "PNG" and image.size[0] > 300
        assert len(image.convert("L").getcolors(maxcolors=100_000) or []) > 20  # drawn on, not a blank canvas
    assert written.pdf is not None and written.pdf.read_bytes().startswith(b"%PDF")
    assert "4 of 5 leads answered, 1 unanswered, 1 escalated" in summary(written)


def test_an_empty_week_still_renders(tmp_path: Path, ledger: Ledger) -> None:
    cfg = make_config(tmp_path)
    written = write_report(cfg, ledger, *week_bounds(cfg, "2026-W40"), tmp_path, "empty")
    page = Page()
    page.feed(written.html.read_text(encoding="utf-8"))
    assert page.tiles["messages"] == "0" and len(page.images) == 5


def test_the_weekly_report_is_due_once_after_its_time(tmp_path: Path, ledger: Ledger) -> None:
    cfg = make_config(tmp_path)  # weekly: monday 08:00 Berlin
    monday = datetime(2026, 11, 30, 6, 59, tzinfo=UTC)  # 07:59 Berlin
    assert due_week(cfg, ledger, monday) is None
    assert due_week(cfg, ledger, monday.replace(hour=7)) == "2026-W48" == previous_week(cfg, monday)
    ledger.set_cursor("report.last_week", "2026-W48")
    assert due_week(cfg, ledger, monday.replace(day=1 + 30 - 29, month=12)) is None  # Tuesday: done already
    assert due_week(cfg, ledger, datetime(2026, 12, 7, 7, 0, tzinfo=UTC)) == "2026-W49"


def test_report_command_writes_the_files(tmp_path: Path, ledger: Ledger, capsys: Any) -> None:
    from bot.cli import main

    cfg_path = tmp_path / "config.yaml"
    root = Path(__file__).resolve().parents[2]
    text = (root / "config.yaml").read_text().replace("state_dir: state", f"state_dir: {tmp_path / 'state'}")
    cfg_path.write_text(text.replace("templates_dir: bot/templates", f"templates_dir: {root / 'bot/templates'}"))
    assert main(["--config", str(cfg_path), "report", "--week", "2026-W48", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report-2026-W48.html").exists()
    assert "4 of 5 leads answered" in capsys.readouterr().out
    out = tmp_path / "r"
    assert main(["--config", str(cfg_path), "report", "--since", "2026-11-23", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("Inbox report, since 2026-11-23: ")  # a date, as other --since take
    assert len(list(out.glob("report-*-since-2026-11-23.html"))) == 1
    assert main(["--config", str(cfg_path), "report", "--since", "12h", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("Inbox report, the last 12 hours: ")
    assert len(list(out.glob("report-*-last-12h.html"))) == 1
    assert main(["--config", str(cfg_path), "report", "--since", "soon"]) == 2
    assert "report: expected a duration like 7d" in capsys.readouterr().err
