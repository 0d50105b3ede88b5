"""Triage quality on a labelled folder of .eml: what `python run.py eval` measures and prints.

Each message goes through bot.pipeline.classify_files, the bot's own decision path (pre-filter, the configured
classifier with or without the LLM, threshold, review), so the figures are those of the running bot with this
config and the model under classify.model_path. Nothing is written: no ledger, no mail, no LLM spend record.

Definitions (also in the README):
- accuracy and per-category precision/recall/F1 use the category the bot decided, also for mail it sent to
  review (the review queue shows that category); macro F1 averages over the categories that occur in the labels
  or the predictions. An unreadable file counts as wrong.
- lead recall: labelled leads the bot called lead. Leads lost: labelled leads neither called lead nor sent to
  review, i.e. filed away where nobody answers them.
- destructive error: a message not labelled spam/newsletter that the bot would trash (called spam/newsletter at
  or above the threshold and not sent to review).
- language: right when the bot names the labelled language; "unsure" is right only when the labelled language is
  the configured default (the bot falls back to it: same reply template, same pool) or one the bot is not
  configured for (it must not claim a language it does not serve; the mail goes to the default pool by design).
- fields (person_name, person_email, company): case- and whitespace-insensitive exact match over the messages
  whose label gives the field, null == null counting as right; coverage is the share of labelled non-null values
  for which the bot extracted anything at all.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.classify.prompt import token_counter
from bot.config import PACKAGE_DIR, Config
from bot.models import CATEGORIES, DISPOSABLE

GOLD_DIR = PACKAGE_DIR / "data" / "gold"
FIELDS = ("person_name", "person_email", "company")
SPLITS = ("test", "train", "all")
WRONG_SHOWN = 20


class LabelError(ValueError):
    """The labels file is missing or names a file, category or split that is not usable."""


@dataclass(frozen=True)
class Label:
    file: str  # as written in the labels file, relative to the folder
    category: str
    language: str | None = None
    split: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # only the keys the label gives


# ---------------------------------------------------------------- reading labels


def _label_files(folder: Path) -> list[Path]:
    for name in ("labels.jsonl", "labels.csv"):
        if (folder / name).is_file():
            return [folder / name]
    return sorted(folder.glob("labels.part*.jsonl"))


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, raw record) per label line; CSV cells that are empty mean null."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".csv":
        for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            yield f"{path.name}:{n}", {k.strip(): (v.strip() or None) for k, v in row.items() if k and v is not None}
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelError(f"{path.name}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise LabelError(f"{path.name}:{n}: expected a JSON object")
            yield f"{path.name}:{n}", rec


def _flag(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in ("1", "true", "yes", "y") else False if text in ("0", "false", "no", "n", "") else None


def read_labels(folder: Path) -> list[Label]:
    """The labels of a folder: labels.jsonl, labels.csv, or the gold set's labels.part*.jsonl files."""
    files = _label_files(folder)
    if not files:
        raise LabelError(f"{folder}: no labels.jsonl, labels.csv or labels.part*.jsonl")
    root, labels, problems = folder.resolve(), [], []
    for path in files:
        for where, rec in _records(path):
            name, category = rec.get("file"), rec.get("category")
            target = (root / str(name)).resolve() if isinstance(name, str) and name else None
            if target is None or not target.is_relative_to(root) or not target.is_file():
                problems.append(f"{where}: file {name!r} is not a file inside {folder}")
            elif category not in CATEGORIES:
                problems.append(f"{where}: unknown category {category!r}")
            elif rec.get("split") not in (None, "train", "test"):
                problems.append(f"{where}: split must be train or test, got {rec.get('split')!r}")
            else:
                fields = {k: rec[k] for k in FIELDS if k in rec}
                if "technical_rfq" in rec:
                    fields["technical_rfq"] = _flag(rec["technical_rfq"])
                labels.append(Label(str(name), str(category), rec.get("language") or None, rec.get("split"), fields))
    if problems:
        raise LabelError("; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    return labels


def default_split(folder: Path) -> str:
    """The gold set is scored on its test split (the part the shipped model never trained on); others whole."""
    return "test" if folder.resolve() == GOLD_DIR.resolve() else "all"


@dataclass(frozen=True)
class Mix:
    """Category shares of a real inbox: the labelled set's per-category figures, re-weighted to them, say what
    the bot would do on that inbox rather than on the set's own (deliberately lead-heavy) composition."""

    name: str
    shares: dict[str, float]


def read_mix(path: Path) -> Mix:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: cannot read the mix ({exc})") from None
    shares = data.get("shares") if isinstance(data, dict) else None
    if not isinstance(shares, dict) or not shares:
        raise LabelError(f"{path}: expected {{\"shares\": {{category: share, ...}}}}")
    bad = [f"{k}={v!r}" for k, v in shares.items()
           if k not in CATEGORIES or isinstance(v, bool) or not isinstance(v, int | float) or v < 0]
    if bad or not sum(shares.values()):
        raise LabelError(f"{path}: shares must be categories with non-negative numbers, not all 0: {', '.join(bad)}")
    total = sum(shares.values())
    return Mix(str(data.get("name") or path.stem), {k: v / total for k, v in shares.items()})


def default_mix(folder: Path) -> Mix | None:
    path = folder / "mix.json"
    return read_mix(path) if path.is_file() else None


# ---------------------------------------------------------------- scoring


@dataclass
class Report:
    folder: str
    split: str
    messages: int
    threshold: float
    accuracy: float | None = None
    accuracy_automatic: float | None = None  # over the messages not sent to review
    macro_f1: float | None = None
    per_category: dict[str, dict[str, float | int]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # labelled -> decided -> count
    lead_recall: float | None = None
    leads_in_review: int = 0
    leads_lost: list[str] = field(default_factory=list)
    destructive: int = 0
    destructive_files: list[str] = field(default_factory=list)
    review_rate: float | None = None
    errors: int = 0
    language_accuracy: float | None = None
    language: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    llm_calls_per_100: float | None = None  # on the mix when one is given, else on the set itself
    llm_input_tokens_per_call: float | None = None
    classifiers: dict[str, int] = field(default_factory=dict)
    seconds_per_message: float = 0.0
    wrong: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _norm(value: Any) -> str | None:
    text = " ".join(str(value).split()).casefold() if value is not None else ""
    return text or None


def language_right(labelled: str, decided: str | None, languages: tuple[str, ...], default: str) -> bool:
    if decided == labelled:
        return True
    return decided is None and (labelled == default or labelled not in languages)


def _category_scores(report: Report, pairs: list[tuple[str, str | None]]) -> None:
    present = [c for c in CATEGORIES if any(c in pair for pair in pairs)]
    f1s = []
    for c in present:
        tp = sum(1 for g, p in pairs if g == c and p == c)
        support, predicted = sum(1 for g, _ in pairs if g == c), sum(1 for _, p in pairs if p == c)
        precision, recall = _ratio(tp, predicted) or 0.0, _ratio(tp, support) or 0.0
        f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
        f1s.append(f1)
        report.per_category[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support,
                                  "predicted": predicted}
    report.macro_f1 = round(sum(f1s) / len(f1s), 4) if f1s else None
    for g, p in pairs:
        row = report.confusion.setdefault(g, {})
        row[p or "error"] = row.get(p or "error", 0) + 1


def _field_scores(report: Report, rows: list[tuple[Label, dict[str, Any]]]) -> None:
    for name in FIELDS:
        scored = [(lab.fields[name], line.get(name)) for lab, line in rows if name in lab.fields]
        given = [(g, p) for g, p in scored if _norm(g) is not None]
        report.fields[name] = {
            "labelled": len(scored),
            "accuracy": _ratio(sum(1 for g, p in scored if _norm(g) == _norm(p)), len(scored)),
            "coverage": _ratio(sum(1 for _, p in given if _norm(p) is not None), len(given))}
    rfq = [(lab.fields["technical_rfq"], bool(line.get("technical_rfq")))
           for lab, line in rows if lab.category == "lead" and lab.fields.get("technical_rfq") is not None]
    report.fields["technical_rfq"] = {"labelled": len(rfq),
                                      "accuracy": _ratio(sum(1 for g, p in rfq if g == p), len(rfq))}


def _llm_figures(cfg: Config, rows: list[tuple[Label, dict[str, Any]]], mix: Mix | None) -> dict[str, Any]:
    """LLM requests per 100 messages and input tokens per request: measured when the LLM is on (tokens as the
    server counted them), else projected from the cascade rule with the request size estimated from its text."""
    enabled = cfg.classify.llm.enabled
    asked = [(lab, line) for lab, line in rows
             if (int(line.get("llm_calls") or 0) if enabled else line.get("llm_wanted"))]
    from_server = enabled and any(int(line.get("llm_input_tokens") or 0) for _, line in asked)
    key = "llm_input_tokens" if from_server else "llm_input_estimate"  # a server may leave usage out
    tokens = {lab.file: int(line.get(key) or 0) for lab, line in asked}
    sizes = sorted(tokens.values())
    per_category: dict[str, dict[str, Any]] = {}
    for c in CATEGORIES:
        labelled = [lab.file for lab, _ in rows if lab.category == c]
        mine = [tokens[f] for f in labelled if f in tokens]
        if labelled:
            per_category[c] = {"messages": len(labelled), "asked": len(mine),
                               "rate": round(len(mine) / len(labelled), 4),
                               "input_tokens_per_call": round(sum(mine) / len(mine), 1) if mine else None}
    figures: dict[str, Any] = {
        "source": "measured" if enabled else "projected (LLM off: what the cascade would send)",
        "tokens_source": "as the server counted them" if from_server else token_counter()[1],
        "calls": len(asked), "calls_per_100": round(100 * len(asked) / len(rows), 2),
        "input_tokens_per_call": round(sum(sizes) / len(sizes), 1) if sizes else None,
        "input_tokens_median": sizes[len(sizes) // 2] if sizes else None,
        "input_tokens_max": sizes[-1] if sizes else None,
        "tokens": sum(int(line.get("llm_tokens") or 0) for _, line in rows),
        "per_category": per_category, "mix": None, "calls_per_100_mix": None, "missing_in_set": []}
    if mix is not None:
        missing = [c for c, share in mix.shares.items() if share and c not in per_category]
        covered = {c: share for c, share in mix.shares.items() if c in per_category}
        weight = sum(covered.values())
        figures |= {"mix": mix.name, "missing_in_set": missing, "calls_per_100_mix": None if missing or not weight
                    else round(100 * sum(s * per_category[c]["rate"] for c, s in covered.items()) / weight, 2)}
    return figures


def score(cfg: Config, folder: str, split: str, rows: list[tuple[Label, dict[str, Any]]],
          mix: Mix | None = None) -> Report:
    """The figures for labelled messages and the classify_files line the bot produced for each."""
    threshold, languages = cfg.classify.threshold, cfg.classify.languages
    report = Report(folder=folder, split=split, messages=len(rows), threshold=threshold)
    if not rows:
        return report
    pairs = [(lab.category, line.get("category") if "error" not in line else None) for lab, line in rows]
    report.errors = sum(1 for _, line in rows if "error" in line)
    report.accuracy = _ratio(sum(1 for g, p in pairs if g == p), len(pairs))
    automatic = [(g, p) for (g, p), (_, line) in zip(pairs, rows, strict=True) if p and not line.get("review")]
    report.accuracy_automatic = _ratio(sum(1 for g, p in automatic if g == p), len(automatic))
    _category_scores(report, pairs)
    leads = [(lab, line) for lab, line in rows if lab.category == "lead"]
    report.lead_recall = _ratio(sum(1 for _, line in leads if line.get("category") == "lead"), len(leads))
    report.leads_in_review = sum(1 for _, line in leads if line.get("review"))
    report.leads_lost = [lab.file for lab, line in leads if line.get("category") != "lead" and not line.get("review")]
    report.destructive_files = [
        lab.file for lab, line in rows if lab.category not in DISPOSABLE and line.get("category") in DISPOSABLE
        and not line.get("review") and float(line.get("confidence") or 0.0) >= threshold]
    report.destructive = len(report.destructive_files)
    report.review_rate = _ratio(sum(1 for _, line in rows if line.get("review")), len(rows))
    spoken = [(lab.language, line.get("language")) for lab, line in rows if lab.language and "error" not in line]
    right = sum(1 for g, p in spoken if language_right(g, p, languages, cfg.classify.default_language))
    report.language_accuracy = _ratio(right, len([lab for lab, _ in rows if lab.language]))
    report.language = {"labelled": sum(1 for lab, _ in rows if lab.language),
                       "unsure": sum(1 for _, p in spoken if p is None),
                       "not_configured": sum(1 for g, _ in spoken if g not in languages),
                       "wrong": dict(Counter(f"{g}->{p or 'unsure'}" for g, p in spoken if not language_right(
                           g, p, languages, cfg.classify.default_language)).most_common())}
    _field_scores(report, rows)
    report.llm = _llm_figures(cfg, rows, mix)
    report.llm_calls_per_100 = report.llm["calls_per_100_mix"] if mix else report.llm["calls_per_100"]
    report.llm_input_tokens_per_call = report.llm["input_tokens_per_call"]
    report.classifiers = dict(Counter(str(line.get("classifier", "error")) for _, line in rows).most_common())
    report.wrong = [{"file": lab.file, "labelled": lab.category, "decided": line.get("category"),
                     "confidence": line.get("confidence"), "review": bool(line.get("review")),
                     "classifier": line.get("classifier"), "error": line.get("error")}
                    for lab, line in rows if line.get("category") != lab.category]
    return report


def evaluate(cfg: Config, folder: Path, split: str | None = None, mix: Mix | None = None,
             progress: bool = False) -> Report:
    """Classify every labelled message of the split exactly as the bot would and score the result."""
    from bot.pipeline import classify_files
    from bot.progress import tracked

    split = split or default_split(folder)
    if split not in SPLITS:
        raise LabelError(f"split must be one of {', '.join(SPLITS)}")
    labels = [lab for lab in read_labels(folder) if split == "all" or lab.split == split]
    root = folder.resolve()

    def items() -> Iterator[tuple[str, bytes | Exception]]:
        for lab in labels:
            try:
                yield lab.file, (root / lab.file).read_bytes()
            except OSError as exc:
                yield lab.file, exc

    started = time.perf_counter()
    lines = list(tracked(classify_files(cfg, items()), f"scoring {folder}", len(labels), progress))
    report = score(cfg, str(folder), split, list(zip(labels, lines, strict=True)), mix)
    report.seconds_per_message = round((time.perf_counter() - started) / max(1, len(labels)), 4)
    return report


# ---------------------------------------------------------------- thresholds

# option name -> (report attribute, "min" or "max")
LIMITS: dict[str, tuple[str, str]] = {
    "min_accuracy": ("accuracy", "min"),
    "min_macro_f1": ("macro_f1", "min"),
    "min_lead_recall": ("lead_recall", "min"),
    "max_destructive": ("destructive", "max"),
    "min_language_accuracy": ("language_accuracy", "min"),
    "max_review_rate": ("review_rate", "max"),
    "max_llm_calls_per_100": ("llm_calls_per_100", "max"),
    "max_llm_input_tokens": ("llm_input_tokens_per_call", "max"),
}


def missed(report: Report, limits: Mapping[str, float | None]) -> list[str]:
    """One line per threshold the report misses (a figure that could not be measured misses too)."""
    out = []
    for option, bound in limits.items():
        if bound is None:
            continue
        attr, kind = LIMITS[option]
        value = getattr(report, attr)
        if value is None:
            out.append(f"{attr}: not measurable on this set (required {kind} {bound:g})")
        elif (value < bound) if kind == "min" else (value > bound):
            out.append(f"{attr} {value:g} {'below the minimum' if kind == 'min' else 'above the maximum'} {bound:g}")
    return out


# ---------------------------------------------------------------- text output


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _some(names: list[str], n: int = 5) -> str:
    return f" ({', '.join(names[:n])}{', ...' if len(names) > n else ''})" if names else ""


def _summary(r: Report) -> list[str]:
    lang, llm = r.language, r.llm
    wrong_lang = ", ".join(f"{k} x{v}" for k, v in lang["wrong"].items())
    return [
        f"accuracy {_pct(r.accuracy)} (not in review: {_pct(r.accuracy_automatic)}), macro F1 {r.macro_f1}",
        f"lead recall {_pct(r.lead_recall)}; leads in review {r.leads_in_review}; "
        f"leads lost {len(r.leads_lost)}{_some(r.leads_lost)}",
        f"destructive errors {r.destructive}{_some(r.destructive_files)}",
        f"review rate {_pct(r.review_rate)}; unreadable {r.errors}",
        f"language accuracy {_pct(r.language_accuracy)} over {lang['labelled']} (unsure {lang['unsure']}, in "
        f"languages not configured {lang['not_configured']})" + (f"; wrong: {wrong_lang}" if wrong_lang else ""),
        "fields: " + "; ".join(f"{name} {_pct(v['accuracy'])} of {v['labelled']}"
                               + (f" (coverage {_pct(v['coverage'])})" if "coverage" in v else "")
                               for name, v in r.fields.items()),
        *_llm_lines(llm),
        f"classifiers: {', '.join(f'{k} {v}' for k, v in r.classifiers.items())}",
    ]


def _llm_lines(llm: dict[str, Any]) -> list[str]:
    def n(value: float | None) -> str:
        return "n/a" if value is None else f"{value:g}"

    on_mix = ""
    if llm["mix"]:
        on_mix = (f"; {n(llm['calls_per_100_mix'])} per 100 on the {llm['mix']!r} mix" +
                  (f" (categories missing from this set: {', '.join(llm['missing_in_set'])})"
                   if llm["missing_in_set"] else ""))
    return [
        f"LLM calls, {llm['source']}: {llm['calls']}, {n(llm['calls_per_100'])} per 100 messages of this set{on_mix}",
        f"LLM input tokens per call ({llm['tokens_source']}): mean {n(llm['input_tokens_per_call'])}, "
        f"median {n(llm['input_tokens_median'])}, max {n(llm['input_tokens_max'])}",
        "LLM calls by labelled category: " + ", ".join(
            f"{c} {v['asked']}/{v['messages']}" for c, v in llm["per_category"].items()),
    ]


def _tables(r: Report) -> list[str]:
    out = ["", f"{'category':<14}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}{'decided':>9}"]
    for c, s in r.per_category.items():
        out.append(f"{c:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>8.3f}{s['support']:>9}"
                   f"{s['predicted']:>9}")
    cols = [c for c in (*CATEGORIES, "error") if any(c in row for row in r.confusion.values())]
    out += ["", "confusion (rows: labelled, columns: decided)", " " * 14 + "".join(f"{c[:7]:>8}" for c in cols)]
    for g in (c for c in CATEGORIES if c in r.confusion):
        out.append(f"{g:<14}" + "".join(f"{r.confusion[g].get(c, 0) or '.':>8}" for c in cols))
    return out


def _wrong(r: Report) -> list[str]:
    if not r.wrong:
        return []
    out = ["", f"wrong: {len(r.wrong)}" + (f", the first {WRONG_SHOWN}:" if len(r.wrong) > WRONG_SHOWN else ":")]
    for w in r.wrong[:WRONG_SHOWN]:
        review = " review" if w["review"] else ""
        what = w["error"] or f"{w['decided']} {w['confidence']}{review} ({w['classifier']})"
        out.append(f"  {w['file']}: labelled {w['labelled']}, decided {what}")
    return out


def render(r: Report) -> str:
    head = (f"{r.messages} messages from {r.folder} (split {r.split}), threshold {r.threshold:g}, "
            f"{1000 * r.seconds_per_message:.1f} ms per message")
    return "\n".join([head, *_summary(r), *_tables(r), *_wrong(r)] if r.messages else [head])
