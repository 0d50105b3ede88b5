"""`python run.py report`: write the report of a period from the ledger (HTML, PDF when fpdf2 is there)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.report.charts import charts
from bot.report.figures import Figures, collect
from bot.report.render import html_report, pdf_report
from bot.state import Ledger

log = logging.getLogger(__name__)


@dataclass
class Written:
    figures: Figures
    html: Path
    pdf: Path | None


def write_report(cfg: Config, ledger: Ledger, start: str, end: str, title: str, out_dir: Path,
                 stem: str) -> Written:
    """<stem>.html (and <stem>.pdf) in out_dir for the decisions made from start to end."""
    f = collect(cfg, ledger, start, end, title)
    pngs = charts(f)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"
    _write(html_path, html_report(f, pngs).encode("utf-8"))
    return Written(f, html_path, pdf_path if pdf_report(f, pngs, pdf_path) else None)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def summary(w: Written) -> str:
    """A few lines for a chat channel."""
    f = w.figures
    rate = "n/a" if f.review_rate is None else f"{100 * f.review_rate:.0f}%"
    slowest = max(f.response.items(), key=lambda kv: kv[1]["median"], default=None)
    lines = [f"{f.title}: {f.messages} messages, {f.categories.get('lead', 0)} leads, "
             f"{f.answered} of {f.tracked_leads} leads answered, {len(f.unanswered)} unanswered, "
             f"{len(f.escalated)} escalated; review rate {rate}."]
    if slowest:
        lines.append(f"Slowest median first response: {slowest[0]}, {slowest[1]['median']:.1f} business hours.")
    return "\n".join(lines)
