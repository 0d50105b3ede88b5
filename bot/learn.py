"""`python run.py learn`: retrain the offline classifier on the gold set plus what people corrected.

What is learnt: every corrected message, fetched from the mailbox by its provider id, with its latest corrected
category, on top of the base training data (offline.base_examples: the gold train split and the training set);
see train_with_corrections for how.

The new model is scored on the gold test split before it replaces the old one (classify.model_path, under
state/). It is kept only if accuracy and lead recall drop by at most MAX_ACCURACY_DROP and destructive errors
do not rise; `--force` installs it anyway. Scores are the offline classifier's alone: the LLM is not called.
A running daemon loads the new model at the start of its next cycle (ModelReloader).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.classify.offline import Model, base_examples, train
from bot.config import Config
from bot.corrections import check_label_corrections, check_sheet_corrections
from bot.evaluate import GOLD_DIR, Report, evaluate
from bot.mime import parse_email
from bot.models import CATEGORIES, Email, MessageRef
from bot.pipeline import CycleReport, Services
from bot.ports import MailProvider
from bot.state import Ledger

log = logging.getLogger(__name__)

MAX_ACCURACY_DROP = 0.02
LEARNT_KEY = "learn:last_correction"  # the newest correction id a learn has trained on
RUNS = 8


@dataclass
class LearnResult:
    corrections: int = 0  # corrected messages (latest correction of each)
    used: int = 0  # of those, fetched and learnt from
    unavailable: list[str] = field(default_factory=list)  # provider ids the mailbox no longer has
    base: int = 0  # base training messages (offline.base_examples)
    new_corrections: int = 0  # found by the checks at the start of this run
    before: Report | None = None
    after: Report | None = None
    saved: bool = False
    reason: str = ""


def latest_corrections(ledger: Ledger) -> dict[str, str]:
    """provider id -> the category of its newest correction (a person may have corrected twice)."""
    latest: dict[str, str] = {}
    for c in ledger.corrections():  # ordered by id: later corrections overwrite earlier ones
        if c["new_category"] in CATEGORIES:
            latest[c["provider_id"]] = c["new_category"]
    return latest


def corrected_examples(ledger: Ledger, mail: MailProvider,
                       text_chars: int) -> tuple[list[tuple[Email, str]], list[str]]:
    """(email, category) of every corrected message the mailbox still has, and the ids it no longer has."""
    latest = latest_corrections(ledger)
    examples, missing = [], []
    refs = [MessageRef(pid, (row.thread_id if (row := ledger.get(pid)) else "")) for pid in latest]
    for ref, raw in mail.fetch(refs):
        if isinstance(raw, Exception):
            missing.append(ref.provider_id)
            continue
        examples.append((parse_email(raw, ref.provider_id, ref.thread_id, text_chars), latest[ref.provider_id]))
    return examples, missing


def train_averaged(examples: list[tuple[Email, str]], runs: int = RUNS) -> Model:
    """The mean of models trained on `runs` orderings of the examples."""
    models = [train(random.Random(k).sample(examples, len(examples)) if k else examples) for k in range(runs)]
    return _combine([(m, 1 / runs) for m in models], models[0])


def _combine(terms: list[tuple[Model, float]], like: Model) -> Model:
    """The weighted sum of models (weights, priors); scale and example counts from `like`."""
    n = len(CATEGORIES)
    weights: dict[int, list[float]] = {}
    for model, factor in terms:
        for bucket, w in model.weights.items():
            total = weights.setdefault(bucket, [0.0] * n)
            for i, x in enumerate(w):
                total[i] += factor * x
    prior = [sum(factor * model.prior[i] for model, factor in terms) for i in range(n)]
    return Model(prior=prior, weights=weights, scale=like.scale, examples=dict(like.examples))


def train_with_corrections(base: list[tuple[Email, str]], corrected: list[tuple[Email, str]],
                           runs: int = RUNS) -> Model:
    """The shipped model (one run on the base data, as offline.load_or_train makes it) plus what the corrections
    change.

    One training run depends on the order it sees the mail in: on a few hundred messages a handful of borderline
    ones come out either way. A model retrained from scratch would carry that noise into every learn, and the
    before/after figures would show it. Instead the change is measured as the difference between two means of
    `runs` orderings, with and without the corrections, and added to the shipped model: mail that has little in
    common with the corrected messages keeps its category.
    """
    shipped = train(base)
    if not corrected:
        return shipped
    taught, untaught = train_averaged(base + corrected, runs), train_averaged(base, runs)
    return _combine([(shipped, 1.0), (taught, 1.0), (untaught, -1.0)], taught)


def offline_only(cfg: Config, model_path: Path | None = None) -> Config:
    """The config scored by learn: the LLM off (no spend), optionally another model file."""
    c = cfg.classify
    return replace(cfg, classify=replace(c, llm=replace(c.llm, enabled=False), model_path=model_path or c.model_path))


def learn(cfg: Config, ledger: Ledger, mail: MailProvider, sinks: Sequence[Any] = (), force: bool = False,
          gold_dir: Path = GOLD_DIR, runs: int = RUNS, progress: bool = False) -> LearnResult:
    res = LearnResult()
    log.info("looking for new corrections (mailbox labels, audit sheet)")
    res.new_corrections = len(check_label_corrections(ledger, mail, cfg.labels, text_chars=cfg.classify.text_chars))
    res.new_corrections += len(check_sheet_corrections(ledger, sinks))
    newest = max((c["id"] for c in ledger.corrections()), default=0)
    learnt = int(ledger.get_cursor(LEARNT_KEY) or 0)
    if newest <= learnt and not force:
        res.corrections = len(latest_corrections(ledger))
        res.reason = (f"no new correction since the last learn ({res.corrections} corrected message(s) already "
                      "learnt from)")
        return res
    log.info("scoring the current model on the gold test split")
    res.before = evaluate(offline_only(cfg), gold_dir, "test", progress=progress)
    corrected, res.unavailable = corrected_examples(ledger, mail, cfg.classify.text_chars)
    res.corrections, res.used = len(corrected) + len(res.unavailable), len(corrected)
    if not corrected and not force:
        res.reason = "no corrected message to learn from"
        return res
    base = base_examples(gold_dir, "train", cfg.classify.text_chars)
    res.base = len(base)
    log.info("training on %d base + %d corrected messages (%d orderings, twice)", len(base), len(corrected), runs)
    model = train_with_corrections(base, corrected, runs)
    target = cfg.classify.model_path
    candidate = target.with_name(f".{target.name}.candidate")
    model.save(candidate)
    try:
        log.info("scoring the new model on the gold test split")
        res.after = evaluate(offline_only(cfg, candidate), gold_dir, "test", progress=progress)
        res.reason = _refusal(res.before, res.after)
        with ledger.transaction():  # these corrections have been tried: the next learn waits for new ones
            ledger.set_cursor(LEARNT_KEY, str(newest))
        if res.reason and not force:
            return res
        os.replace(candidate, target)  # atomic: a daemon reading the model sees the old file or the new one
        res.saved = True
        log.info("saved the model to %s (%d gold + %d corrected messages)", target, res.base, res.used)
    finally:
        candidate.unlink(missing_ok=True)
    return res


def _refusal(before: Report, after: Report) -> str:
    """Why the new model must not replace the old one ("" when it may)."""
    if before.accuracy is not None and after.accuracy is not None \
            and after.accuracy < before.accuracy - MAX_ACCURACY_DROP:
        return (f"gold test accuracy would drop from {before.accuracy:.3f} to {after.accuracy:.3f} "
                f"(more than {MAX_ACCURACY_DROP:g})")
    if before.lead_recall is not None and after.lead_recall is not None \
            and after.lead_recall < before.lead_recall - MAX_ACCURACY_DROP:
        return f"gold test lead recall would drop from {before.lead_recall:.3f} to {after.lead_recall:.3f}"
    if after.destructive > before.destructive:
        return f"destructive errors on the gold test split would rise from {before.destructive} to {after.destructive}"
    return ""


def render(res: LearnResult) -> str:
    out = [f"corrections: {res.new_corrections} new; {res.corrections} corrected message(s), {res.used} learnt from"
           + (f", {len(res.unavailable)} no longer in the mailbox" if res.unavailable else ""),
           f"training: {res.base} base messages + {res.used} corrected",
           f"{'gold test split':<18}{'accuracy':>10}{'macro F1':>10}{'lead recall':>13}{'destructive':>13}"]
    for name, r in (("before", res.before), ("after", res.after)):
        if r is not None:
            out.append(f"{name:<18}{_fmt(r.accuracy):>10}{_fmt(r.macro_f1):>10}{_fmt(r.lead_recall):>13}"
                       f"{r.destructive:>13}")
    if res.before is None and not res.saved:  # nothing new: no training, no scoring
        return f"{res.reason}; nothing to retrain (--force retrains anyway)"
    out.append("model saved; a running bot loads it at its next cycle" if res.saved
               else f"model NOT saved: {res.reason} (--force saves it anyway)")
    return "\n".join(out)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def reloading(cfg: Config, services: Services, run_cycle: Callable[[], CycleReport],
              reloader: ModelReloader) -> Callable[[], CycleReport]:
    """run_cycle, first replacing the services' classifier whenever the model file changed (learn saved one)."""
    from bot.bootstrap import build_classifier

    def cycle() -> CycleReport:
        if reloader.changed():
            log.info("loading the new model from %s", reloader.path)
            services.classifier = build_classifier(cfg, services.ledger)
        return run_cycle()

    return cycle


class ModelReloader:
    """Tells the poll loop when the model file changed since the classifier was built (learn ran)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ino  # os.replace gives a new inode even within one mtime tick

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        return True
