"""The report's charts as PNG bytes, drawn with matplotlib's Agg backend.

matplotlib (with numpy) costs some 40 MB of memory once imported; it is imported here, inside charts(), and
only the report command (a process of its own, also when the daemon schedules it) calls it: the daemon never
loads it. The object API (Figure, no pyplot) keeps no global state between charts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from bot.report.figures import Figures

COLORS = ["#2f6690", "#3a7ca5", "#81c3d7", "#d9dcd6", "#f4a259", "#bc4b51", "#5b8e7d", "#8cb369", "#9b5de5"]


def charts(f: Figures) -> dict[str, bytes]:
    """name -> PNG of each chart; a chart without data says so instead of being left out."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    for noisy in ("matplotlib", "fontTools"):  # their font notes are not the bot's news
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from matplotlib.figure import Figure

    def png(draw: Any, width: float = 7.0, height: float = 3.2) -> bytes:
        fig = Figure(figsize=(width, height), dpi=110)
        ax = fig.add_subplot()
        if not draw(ax):
            ax.text(0.5, 0.5, "no data in this period", ha="center", va="center", color="#777")
            ax.set_axis_off()
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()

    def bars(ax: Any, counts: Sequence[tuple[str, float]], xlabel: str) -> bool:
        if not counts:
            return False
        labels, values = [k for k, _ in counts][::-1], [v for _, v in counts][::-1]
        ax.barh(range(len(labels)), values, color=COLORS[0])
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel(xlabel)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:g}", va="center", fontsize=8)
        return True

    def response(ax: Any) -> bool:
        people = list(f.response)
        if not people:
            return False
        xs = range(len(people))
        ax.bar([x - 0.2 for x in xs], [f.response[p]["median"] for p in people], 0.4, label="median",
               color=COLORS[1])
        ax.bar([x + 0.2 for x in xs], [f.response[p]["p90"] for p in people], 0.4, label="90th percentile",
               color=COLORS[4])
        ax.set_xticks(list(xs), [p.split("@")[0] for p in people], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("business hours")
        ax.legend(fontsize=8)
        return True

    def mix(ax: Any) -> bool:
        days = sorted(f.by_day)
        if not days:
            return False
        bottom = [0] * len(days)
        for i, cat in enumerate(sorted({c for d in f.by_day.values() for c in d})):
            values = [f.by_day[d].get(cat, 0) for d in days]
            ax.bar(range(len(days)), values, bottom=bottom, label=cat, color=COLORS[i % len(COLORS)])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xticks(range(len(days)), days, fontsize=8, rotation=30)
        ax.set_ylabel("messages")
        ax.legend(fontsize=7, ncols=3)
        return True

    return {
        "leads_per_person": png(lambda ax: bars(ax, f.leads_by_person.most_common(), "leads")),
        "leads_per_pool": png(lambda ax: bars(ax, f.leads_by_pool.most_common(), "leads"), height=2.4),
        "response_times": png(response),
        "category_mix": png(mix),
        "sources": png(lambda ax: bars(ax, f.sources.most_common(10), "leads")),
    }
