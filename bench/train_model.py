#!/usr/bin/env python3
"""Train the shipped offline model (bot/data/model/offline.json) from every training source.

    python bench/train_model.py [--out PATH] [--c 1.0]

Sources: the gold train split, the training set beside it, and the development data in ../shared/data (the
training corpus and the SpamAssassin set; without them the model learns from the project's own mail only, and
says so). The temperature is fitted on predictions for the gold writers' mail made by models that did not see
that writer (bot.classify.training), so a confidence of 0.8 means about 8 in 10 right on a new writer's mail.
The gold test split is never read. Requires scikit-learn (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import DEV, Item, companies, everything  # noqa: E402
from bot.classify.offline import SHIPPED_MODEL  # noqa: E402
from bot.classify.training import Example, train_model  # noqa: E402
from bot.mime import parse_email  # noqa: E402


def examples(items: list[Item]) -> list[Example]:
    owners = companies()
    out = []
    for it in items:
        comp = owners.get(it.company_key or "") or owners["acme-pumps"]
        email = parse_email(it.raw(), it.file, it.file, 1500)
        out.append(Example(email, it.category, it.source, it.headers_real, tuple(comp["domains"]),
                           (str(comp["name"]),)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    args = ap.parse_args()
    items = [it for it in everything(("train",)) if it.split == "train"]
    if not DEV.is_dir():
        print(f"note: no development data at {DEV}: training on the project's own mail only", file=sys.stderr)
    started = time.perf_counter()
    data = examples(items)
    calibrate_on = sorted({x.source for x in data if x.source.startswith("gold")})
    model = train_model(data, c=args.c, calibrate_on=calibrate_on,
                        progress=lambda line: print(line, file=sys.stderr))
    model.save(args.out)
    print(f"trained on {len(data)} messages from {len(model.meta['sources'])} sources in "
          f"{time.perf_counter() - started:.0f} s; temperature {model.temperature}; saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
