"""The report as one self-contained HTML file (charts inlined as PNG data) and, with fpdf2, a PDF.

Everything taken from mail (senders, subjects) is HTML-escaped: a subject cannot become markup or script.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

from bot.report.figures import Figures

log = logging.getLogger(__name__)

CSS = """body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
.kpis{display:flex;flex-wrap:wrap;gap:1em}.kpi{background:#f3f6f9;padding:.6em 1em;border-radius:6px;min-width:9em}
.kpi b{display:block;font-size:1.5em}table{border-collapse:collapse;font-size:.85em;width:100%}
td,th{border-bottom:1px solid #e3e3e3;padding:.25em .5em;text-align:left;vertical-align:top}
img{max-width:100%}.muted{color:#777}"""

CHART_TITLES = {"leads_per_person": "Leads per person", "leads_per_pool": "Leads per pool",
                "response_times": "First-response time per person (business hours)",
                "category_mix": "Category mix per day", "sources": "Busiest sources of leads"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def kpis(f: Figures) -> list[tuple[str, str]]:
    rate = "n/a" if f.review_rate is None else f"{100 * f.review_rate:.1f}%"
    answered = f"{f.answered} of {f.tracked_leads}" if f.tracked_leads else "0"
    return [("messages", str(f.messages)), ("leads", str(f.categories.get("lead", 0))), ("leads answered", answered),
            ("unanswered", str(len(f.unanswered))), ("escalated", str(len(f.escalated))), ("review rate", rate),
            ("corrections", str(f.corrections)), ("LLM calls", str(f.llm_calls)),
            ("LLM cost", f"${f.llm_cost_usd:.2f}")]


def response_rows(f: Figures) -> list[list[Any]]:
    return [[p, int(v["n"]), f"{v['median']:.1f}", f"{v['p90']:.1f}"] for p, v in f.response.items()]


def lead_rows(items: list[dict[str, Any]], escalated: bool = False) -> list[list[Any]]:
    rows = []
    for i in items:
        row = [i["arrived_at"][:16].replace("T", " "), i["from"], i["subject"][:90], i["assignee"] or "-"]
        if escalated:
            row.append(f"{i['escalation']} {i['escalated_at'][:16].replace('T', ' ')}"
                       + (f" (from {i['previous']})" if i["previous"] else ""))
        rows.append(row + [i["status"]])
    return rows


def html_report(f: Figures, pngs: dict[str, bytes]) -> str:
    tiles = "".join(f'<div class="kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in kpis(f))
    img = {k: f'<img alt="{_e(CHART_TITLES[k])}" src="data:image/png;base64,{base64.b64encode(v).decode()}">'
           for k, v in pngs.items()}
    mix = [[c, n, f"{100 * n / f.messages:.1f}%"] for c, n in f.categories.most_common()] if f.messages else []
    parts = [
        f"<h1>{_e(f.title)}</h1>",
        f'<p class="muted">Decisions from {_e(f.start)} to {_e(f.end)} (UTC); business hours in {_e(f.timezone)}. '
        "Rendered from the bot's ledger.</p>",
        f'<div class="kpis">{tiles}</div>',
        "<h2>Leads per person and per pool</h2>", img["leads_per_person"], img["leads_per_pool"],
        "<h2>First-response time</h2>", img["response_times"],
        _table(["person", "answered leads", "median (business h)", "90th percentile (business h)"], response_rows(f)),
        "<h2>Unanswered leads</h2>",
        _table(["arrived (UTC)", "from", "subject", "assignee", "status"], lead_rows(f.unanswered)),
        "<h2>Escalated leads</h2>",
        _table(["arrived (UTC)", "from", "subject", "assignee", "escalation", "status"],
               lead_rows(f.escalated, escalated=True)),
        "<h2>Category mix</h2>", img["category_mix"], _table(["category", "messages", "share"], mix),
        "<h2>Review and corrections</h2>",
        f"<p>{f.review} of {f.messages} messages went to review; people made {f.corrections} correction(s).</p>",
        _table(["change", "times"], [[k, v] for k, v in f.correction_pairs.most_common(10)]),
        "<h2>LLM use</h2>",
        f"<p>{f.llm_calls} calls, {f.llm_tokens} tokens, ${f.llm_cost_usd:.4f}.</p>",
        "<h2>Busiest sources</h2>", img["sources"],
        _table(["source", "leads"], [[k, v] for k, v in f.sources.most_common(10)]),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(f.title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def pdf_report(f: Figures, pngs: dict[str, bytes], path: Path) -> bool:
    """The same report as a PDF with fpdf2; False (and a log line) when fpdf2 is not installed."""
    try:
        from fpdf import FPDF
    except ImportError:
        log.info("fpdf2 is not installed: no PDF, the HTML report has everything")
        return False
    import io

    import matplotlib

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: any script a subject is written in
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", style="B", fname=str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_font("DejaVu", size=9)
    pdf.add_page()

    def heading(text: str, size: int = 13) -> None:
        pdf.set_font_size(size)
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font_size(9)

    def table(head: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            pdf.multi_cell(0, 5, "none", new_x="LMARGIN", new_y="NEXT")
            return
        with pdf.table(text_align="LEFT", line_height=4.5) as t:
            for line in [head, *rows]:
                cells = t.row()
                for c in line:
                    cells.cell(str(c))

    heading(f.title, 16)
    pdf.multi_cell(0, 5, f"Decisions from {f.start} to {f.end} (UTC); business hours in {f.timezone}.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5, " | ".join(f"{k}: {v}" for k, v in kpis(f)), new_x="LMARGIN", new_y="NEXT")
    for key in ("leads_per_person", "response_times"):
        heading(CHART_TITLES[key])
        pdf.image(io.BytesIO(pngs[key]), w=170)
    table(["person", "answered", "median h", "p90 h"], response_rows(f))
    heading("Unanswered leads")
    table(["arrived (UTC)", "from", "subject", "assignee", "status"], lead_rows(f.unanswered))
    heading("Escalated leads")
    table(["arrived (UTC)", "from", "subject", "assignee", "escalation", "status"], lead_rows(f.escalated, True))
    for key in ("category_mix", "leads_per_pool", "sources"):
        heading(CHART_TITLES[key])
        pdf.image(io.BytesIO(pngs[key]), w=170)
    heading("Review, corrections, LLM")
    pdf.multi_cell(0, 5, f"{f.review} of {f.messages} messages went to review; {f.corrections} correction(s); "
                         f"{f.llm_calls} LLM calls, ${f.llm_cost_usd:.4f}.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return True
