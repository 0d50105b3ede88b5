"""The triage figures that matter to a sales team, per source of mail: what `eval` prints and the quality bench
reports for every source left out of training.

- drafted: mail that got a reply draft and an assignee (or an assignee alone); lead precision is the share of it
  that really is a lead (the rest wastes a salesperson's time, or answers a phisher);
- lead recall: labelled leads the bot called lead (in review or not); a lead lost is neither lead nor in review;
- spam caught: labelled spam the bot called junk (spam, or newsletter: either is trashed and never answered);
  spam called spam counts spam only; spam assigned: labelled spam that was drafted or assigned;
- legitimate mail called spam: mail not labelled spam that the bot would trash as spam (not in review);
- real mail trashed: mail a person wrote to us (not spam, not newsletter, not machine-sent) that would be trashed;
- automatic mail drafted: machine-sent mail (auto-replies, bounces, receipts, notifications) that got a draft;
- calibration: among decisions at confidence >= 0.7, the share that is right; a reliability table and the
  expected calibration error (ECE, 10 bins) over every message whose category is known. Right means the labelled
  category, spam and newsletter counting as one (both mean the trash); for mail only known as "not spam", right
  means not called spam.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.models import Classification, Decision

ASSIGNING = frozenset({"draft+assign", "assign"})
JUNK = frozenset({"spam", "newsletter"})
CONFIDENT = 0.7
BINS = 10


@dataclass(frozen=True)
class Outcome:
    source: str
    file: str
    labelled: str
    automatic: bool | None
    coarse: bool  # only spam / not spam is known
    action: str
    category: str
    review: bool
    confidence: float
    kind: str | None = None
    p_lead: float | None = None  # the model's probability of lead, where the bench knows it

    @property
    def right(self) -> bool:
        """The category, where spam and newsletter count as one: both mean the same action (the trash)."""
        if self.coarse:  # only "not spam" is known
            return self.category != "spam"
        return self.category == self.labelled or {self.category, self.labelled} <= JUNK


def outcome(source: str, file: str, labelled: str, automatic: bool | None, coarse: bool, d: Decision,
            c: Classification, kind: str | None = None) -> Outcome:
    return Outcome(source, file, labelled, automatic, coarse, d.action, d.category, d.review, c.confidence, kind)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def figures(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Every figure of one group of messages (a source, or all of them)."""
    fine = [o for o in outcomes if not o.coarse]
    leads = [o for o in fine if o.labelled == "lead"]
    drafted = [o for o in outcomes if o.action in ASSIGNING]
    spam = [o for o in outcomes if o.labelled == "spam"]
    legit = [o for o in outcomes if o.labelled != "spam"]
    people = [o for o in fine if o.labelled not in ("spam", "newsletter") and o.automatic is not True]
    auto = [o for o in outcomes if o.automatic is True and o.labelled not in ("spam",)]
    confident = [o for o in outcomes if o.confidence >= CONFIDENT]
    return {
        "messages": len(outcomes),
        "accuracy": _ratio(sum(o.right for o in fine), len(fine)),
        "leads": len(leads),
        "lead_recall": _ratio(sum(o.category == "lead" for o in leads), len(leads)),
        "leads_lost": sum(o.category != "lead" and not o.review for o in leads),
        "drafted": len(drafted),
        "drafted_leads": sum(o.labelled == "lead" for o in drafted),
        "lead_precision": _ratio(sum(o.labelled == "lead" for o in drafted), len(drafted)),
        "spam": len(spam),
        "spam_caught": _ratio(sum(o.category in ("spam", "newsletter") for o in spam), len(spam)),
        "spam_called_spam": _ratio(sum(o.category == "spam" for o in spam), len(spam)),
        "spam_assigned": sum(o.action in ASSIGNING for o in spam),
        "spam_assigned_rate": _ratio(sum(o.action in ASSIGNING for o in spam), len(spam)),
        "legit": len(legit),
        "legit_called_spam": sum(o.category == "spam" and not o.review for o in legit),
        "legit_called_spam_rate": _ratio(sum(o.category == "spam" and not o.review for o in legit), len(legit)),
        "real_mail_trashed": sum(o.action == "trash_later" for o in people),
        "automatic": len(auto),
        "automatic_drafted": sum(o.action in ASSIGNING for o in auto),
        "review_rate": _ratio(sum(o.review for o in outcomes), len(outcomes)),
        "confident": len(confident),
        "confident_right": _ratio(sum(o.right for o in confident), len(confident)),
        **calibration(outcomes),
    }


def calibration(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Reliability table (per confidence bin: messages, mean confidence, share right) and the ECE."""
    bins: dict[int, list[Outcome]] = defaultdict(list)
    total = 0
    for o in outcomes:
        bins[min(BINS - 1, int(o.confidence * BINS))].append(o)
        total += 1
    table, ece = [], 0.0
    for b in range(BINS):
        group = bins.get(b, [])
        if not group:
            continue
        conf = sum(o.confidence for o in group) / len(group)
        acc = sum(o.right for o in group) / len(group)
        ece += len(group) / total * abs(conf - acc)
        table.append({"bin": f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}", "messages": len(group),
                      "confidence": round(conf, 3), "right": round(acc, 3)})
    return {"reliability": table, "ece": round(ece, 4) if total else None}


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Figures per source, over all messages, and the worst source for each headline figure."""
    by_source: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_source[o.source].append(o)
    per_source = {s: figures(os) for s, os in sorted(by_source.items())}
    worst: dict[str, Any] = {}
    for key, pick in (("lead_precision", min), ("lead_recall", min), ("spam_caught", min),
                      ("confident_right", min), ("spam_assigned_rate", max), ("legit_called_spam_rate", max)):
        values = [(v[key], s) for s, v in per_source.items() if v[key] is not None]
        if values:
            value, source = pick(values)
            worst[key] = {"source": source, "value": value}
    return {"sources": per_source, "all": figures(outcomes), "worst": worst}


def _f(value: float | None, pct: bool = True) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if pct else f"{value:g}"


_COLUMNS = ("source", "msgs", "acc%", "leadR%", "lost", "drafted", "leadP%", "spamC%", "spamA", "ham>spam",
            "trashed", "autoD", "review%", "conf≥.7", "right%", "ECE")
_WIDTHS = (26, 5, 6, 10, 5, 9, 7, 7, 8, 9, 8, 7, 8, 8, 7, 6)


def _row(name: str, f: dict[str, Any]) -> str:
    cells = [name[:26], str(f["messages"]), _f(f["accuracy"]),
             f"{_f(f['lead_recall'])}/{f['leads']}" if f["leads"] else "-", str(f["leads_lost"]),
             f"{f['drafted_leads']}/{f['drafted']}", _f(f["lead_precision"]),
             _f(f["spam_caught"]), f"{f['spam_assigned']}/{f['spam']}" if f["spam"] else "-",
             f"{f['legit_called_spam']}/{f['legit']}" if f["legit"] else "-", str(f["real_mail_trashed"]),
             f"{f['automatic_drafted']}/{f['automatic']}" if f["automatic"] else "-", _f(f["review_rate"]),
             str(f["confident"]), _f(f["confident_right"]), _f(f["ece"], pct=False)]
    return " ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, _WIDTHS, strict=True)))


def render_table(summary: dict[str, Any], errors: int = 0, outcomes: Sequence[Outcome] = ()) -> str:
    """The per-source table, the pooled row, the worst sources and the reliability table."""
    lines = [" ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(_COLUMNS, _WIDTHS, strict=True)))]
    lines += [_row(s, f) for s, f in summary["sources"].items()]
    lines.append(_row("ALL (pooled)", summary["all"]))
    lines.append("")
    for key, w in summary["worst"].items():
        lines.append(f"worst {key}: {_f(w['value'])}% ({w['source']})")
    lines += ["", "reliability (all sources): bin, messages, mean confidence, share right"]
    lines += [f"  {r['bin']}  {r['messages']:>6}  {r['confidence']:.3f}  {r['right']:.3f}"
              for r in summary["all"]["reliability"]]
    lines.append(f"  ECE {summary['all']['ece']}")
    if errors:
        by_source: dict[str, list[Outcome]] = defaultdict(list)
        for o in outcomes:
            if not o.right or (o.action in ASSIGNING and o.labelled != "lead"):
                by_source[o.source].append(o)
        for s, wrong in sorted(by_source.items()):
            lines.append(f"\n{s}: {len(wrong)} wrong")
            for o in wrong[:errors]:
                lines.append(f"  {o.file}: labelled {o.labelled}{' (' + o.kind + ')' if o.kind else ''}, decided "
                             f"{o.category} {o.confidence:.2f} {o.action}{' review' if o.review else ''}")
    return "\n".join(lines)
