#!/usr/bin/env python3
"""Triage quality per source, and for each source left out of training: what a new customer's inbox will see.

    python bench/triage_quality.py [--loso] [--final] [--learner new|old] [--sources a,b] [--json FILE]

Every message runs through the bot's own decision path (pre-filter with the inbox owner's domains, the offline
classifier, the threshold, the decision: draft+assign, review, trash ...), as `python run.py eval` does.

--loso   for every source S: train on all other sources (development data and the gold train split; the training
         set beside the gold set too), score S. Gold sources are scored on their train split unless --final.
--final  include the gold test split: the gold sources are scored on their test split only (the shipped model's
         figures). Use it for the figures you report, never for choosing anything.
Without --loso the shipped model (bot/data/model) is scored on every source; its figures on development data are
in-sample and say little, its figures on the gold test split are the ones that count.

Requires scikit-learn (requirements-dev.txt) and the development data in ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import Item, companies, everything  # noqa: E402
from bot.classify.quality import Outcome, outcome, render_table, summarize  # noqa: E402
from bot.config import CompanyConfig, Config, load_config  # noqa: E402
from bot.mime import parse_email  # noqa: E402
from bot.models import Email  # noqa: E402

Classifier = Any
Learner = Callable[[Sequence[tuple[Email, str, Item]]], Callable[[Item], Classifier]]


def company_configs(cfg: Config) -> dict[str | None, Config]:
    """One config per inbox owner of the gold set (their domains are 'ours'); None: the configured company."""
    out: dict[str | None, Config] = {None: cfg}
    for key, comp in companies().items():
        company = CompanyConfig(name=comp["name"], domains=tuple(comp["domains"]), mailbox=comp["mailbox"])
        out[key] = replace(cfg, company=company, prefilter=replace(cfg.prefilter, own_domains=company.domains))
    return out


def parse(items: Sequence[Item], text_chars: int) -> list[Email]:
    return [parse_email(it.raw(), it.file, it.file, text_chars) for it in items]


def old_learner(cfg: Config) -> Learner:
    from bot.classify.offline import OfflineClassifier, train

    def fit(examples: Sequence[tuple[Email, str, Item]]) -> Callable[[Item], Classifier]:
        model = train([(e, cat) for e, cat, _ in examples])
        cache: dict[str | None, Classifier] = {}

        def for_item(it: Item) -> Classifier:
            c = company_configs(cfg)[it.company_key].company
            if it.company_key not in cache:
                cache[it.company_key] = OfflineClassifier(model, cfg.classify.languages, cfg.classify.default_language,
                                                          cfg.classify.text_chars, (c.name,), c.domains)
            return cache[it.company_key]
        return for_item
    return fit


def decide_all(cfg: Config, items: Sequence[Item], emails: Sequence[Email],
               classifier_for: Callable[[Item], Classifier]) -> list[Outcome]:
    from bot.pipeline import Pipeline, Services
    from bot.state import Ledger

    configs = company_configs(cfg)
    pipelines: dict[tuple[str | None, bool], Any] = {}
    out = []
    for it, email in zip(items, emails, strict=True):
        key = (it.company_key, it.headers_real)
        if key not in pipelines:
            ccfg = configs[it.company_key]
            pipelines[key] = Pipeline(Services(cfg=ccfg, mail=None, classifier=classifier_for(it),  # type: ignore[arg-type]
                                               ledger=Ledger(None)))
        p = pipelines[key]
        pre, c = p.classify(email)
        with p.s.ledger.transaction(rollback=True):
            ev = p.evaluate(email, pre, c)
        o = outcome(it.source, it.file, it.category, it.automatic, it.coarse, ev.decision, c, it.label.get("kind"))
        clf = p.s.classifier
        if hasattr(clf, "probabilities") and pre.outcome not in ("skip", "category"):
            o = replace(o, p_lead=clf.probabilities(email)[0]["lead"])
        out.append(o)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loso", action="store_true")
    ap.add_argument("--final", action="store_true")
    ap.add_argument("--learner", choices=("new", "old"), default="new")
    ap.add_argument("--sources", default="", help="comma-separated sources to hold out (default: all)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--confusion", action="store_true", help="labelled -> decided counts per source (? = review)")
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the new learner")
    ap.add_argument("--no-calibration", action="store_true", help="skip the out-of-source temperature (faster)")
    ap.add_argument("--lead-floor", type=float, default=0.10, help="P(lead) that makes a lead in review")
    ap.add_argument("--floors", action="store_true", help="print lead recall for other lead floors")
    ap.add_argument("--errors", type=int, default=0, help="print up to N wrong decisions per source")
    args = ap.parse_args()
    cfg = load_config(ROOT / "config.yaml")
    items = everything(("train", "test") if args.final else ("train",))
    started = time.perf_counter()
    emails = parse(items, cfg.classify.text_chars)
    print(f"{len(items)} messages from {len({i.source for i in items})} sources parsed in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    learner = old_learner(cfg) if args.learner == "old" else \
        new_learner(cfg, not args.no_calibration, args.c, args.lead_floor)
    by_source: dict[str, list[int]] = defaultdict(list)
    for n, it in enumerate(items):
        by_source[it.source].append(n)
    held = [s for s in by_source if not args.sources or s in args.sources.split(",")]
    outcomes: list[Outcome] = []
    if args.loso:
        for s in held:
            t0 = time.perf_counter()
            train = [(emails[n], items[n].category, items[n]) for n in range(len(items))
                     if items[n].source != s and items[n].split == "train"]
            test = [n for n in by_source[s] if not args.final or not s.startswith("gold") or items[n].split == "test"]
            fit = learner(train)
            outcomes += decide_all(cfg, [items[n] for n in test], [emails[n] for n in test], fit)
            print(f"  left out {s}: trained on {len(train)}, scored {len(test)} in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
    else:
        fit = shipped_learner(cfg)
        test = [n for s in held for n in by_source[s] if not args.final or not s.startswith("gold")
                or items[n].split == "test"]
        outcomes = decide_all(cfg, [items[n] for n in test], [emails[n] for n in test], fit)
    table = summarize(outcomes)
    if args.confusion:
        for s in held:
            pairs = Counter((o.labelled, o.category + ("?" if o.review else "")) for o in outcomes if o.source == s)
            print(s, ", ".join(f"{a}->{b} {n}" for (a, b), n in pairs.most_common()))
    print(render_table(table, errors=args.errors, outcomes=outcomes))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    if args.floors:
        print("lead floor sweep (pooled over the scored sources): floor, lead recall, non-leads called lead")
        scored = [o for o in outcomes if o.p_lead is not None and not o.coarse]
        for floor in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5):
            leads = [o for o in scored if o.labelled == "lead"]
            hit = sum(o.p_lead >= floor or o.category == "lead" for o in leads)  # type: ignore[operator]
            false = sum(o.p_lead >= floor for o in scored if o.labelled != "lead")  # type: ignore[operator]
            print(f"  {floor:.2f}  {hit}/{len(leads)} = {hit / max(1, len(leads)):.3f}  {false}")
    return 0


def new_learner(cfg: Config, calibrate: bool = True, c: float = 1.0, lead_floor: float = 0.10) -> Learner:
    from bot.classify.offline import OfflineClassifier
    from bot.classify.training import Example, example_rows, train_rows

    configs = company_configs(cfg)
    rows: dict[int, Any] = {}  # by id of the email: features do not change from fold to fold

    def fit(examples: Sequence[tuple[Email, str, Item]]) -> Callable[[Item], Classifier]:
        for e, cat, it in examples:
            if id(e) not in rows:
                comp = configs[it.company_key].company
                rows[id(e)] = example_rows(Example(e, cat, it.source, it.headers_real, comp.domains, (comp.name,)))
        sources = [it.source for _, _, it in examples]
        model = train_rows([rows[id(e)] for e, _, _ in examples], [cat for _, cat, _ in examples], sources, c,
                           calibrate, calibrate_on=[s for s in set(sources) if s.startswith("gold")])
        cache: dict[tuple[str | None, bool], Classifier] = {}

        def for_item(it: Item) -> Classifier:
            comp = configs[it.company_key].company
            key = (it.company_key, it.headers_real)  # placeholder headers are not read: they say nothing
            if key not in cache:
                cache[key] = OfflineClassifier(model, cfg.classify.languages, cfg.classify.default_language,
                                               cfg.classify.text_chars, (comp.name,), comp.domains, lead_floor,
                                               use_headers=it.headers_real)
            return cache[key]
        return for_item
    return fit


def shipped_learner(cfg: Config) -> Callable[[Item], Classifier]:
    from bot.bootstrap import build_classifier

    configs = company_configs(cfg)
    cache: dict[str | None, Classifier] = {}

    def for_item(it: Item) -> Classifier:
        if it.company_key not in cache:
            cache[it.company_key] = build_classifier(configs[it.company_key], None)
        return cache[it.company_key]
    return for_item


if __name__ == "__main__":
    sys.exit(main())
