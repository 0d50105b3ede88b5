"""Spam quality and speed of the pre-filter + offline classifier on a folder tree of .eml files.

    python bench/spam_quality.py [PATH] [--config config.yaml]

PATH holds one sub-folder per class (default: the SpamAssassin development subset next to the repository);
folders whose name starts with "spam" hold spam, every other folder holds legitimate mail. Messages are read
one at a time, in name order, through the same decision path as the bot: parse_email, prefilter (settings from
the config file), then the offline classifier (with the pre-filter's hint for list mail). Prints the categories
per folder, spam recall, the share of legitimate mail called spam, and the time per message; --errors also lists
every spam message missed and every legitimate one called spam, with the classifier's reasons.

It also prints what the LLM cascade would do with this mail (`classify.llm` of the config, whether or not the LLM
is enabled): the share of each folder it would send to the LLM, and the offline model's spam/newsletter decisions
by confidence band with how many of them called legitimate mail spam. The band table is what
`call_below_confidence` is chosen from: above that level the offline decision to trash stands without asking.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.classify.cascade import wants_llm  # noqa: E402
from bot.classify.offline import load_or_train  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.mime import parse_email  # noqa: E402
from bot.models import DISPOSABLE  # noqa: E402
from bot.prefilter import prefilter  # noqa: E402

DEFAULT_CORPUS = REPO / ".." / "shared" / "data" / "spamassassin-dev"
GOLD_DIR = REPO / "bot" / "data" / "gold"
BANDS = (0.0, 0.7, 0.8, 0.9, 1.0)


def band_of(confidence: float) -> int:
    return max(i for i, low in enumerate(BANDS[:-1]) if confidence >= low)


def messages(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.iterdir() if p.suffix == ".eml" and p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--config", default=str(REPO / "config.yaml"))
    ap.add_argument("--errors", action="store_true", help="list each misjudged message with its reasons")
    args = ap.parse_args()
    root = Path(args.path).resolve()
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        print(f"no class folders under {root}", file=sys.stderr)
        return 2
    cfg = load_config(args.config)
    c = cfg.classify
    started = time.perf_counter()
    classifier = load_or_train(c.model_path, GOLD_DIR, languages=c.languages, default_language=c.default_language,
                               text_chars=c.text_chars, own_names=(cfg.company.name,),
                               own_domains=cfg.company.domains)
    print(f"model ready in {time.perf_counter() - started:.2f} s; corpus {root}")
    colleagues = frozenset(cfg.routing.colleagues)
    totals = {"spam": [0, 0], "ham": [0, 0]}  # [called spam, messages]
    parse_s = decide_s = 0.0
    count = 0
    wrong: list[str] = []
    bands = [[0, 0] for _ in BANDS[:-1]]  # [spam/newsletter decisions, of them legitimate mail called spam]
    for folder in folders:
        kind = "spam" if folder.name.lower().startswith("spam") else "ham"
        per_category: Counter[str] = Counter()
        asked = 0
        for path in messages(folder):
            raw = path.read_bytes()
            t0 = time.perf_counter()
            email = parse_email(raw, provider_id=path.name, thread_id=path.name, text_chars=c.text_chars)
            t1 = time.perf_counter()
            result = prefilter(email, cfg.prefilter, colleagues, cfg.company.mailbox)
            reasons: tuple[str, ...] = (result.rule or "",)
            if result.outcome in ("skip", "category"):
                category = result.category or result.outcome
            else:
                hint = result if result.outcome == "hint" else None
                decided = classifier.classify(email, hint)
                category, reasons = decided.category, decided.reasons
                asked += wants_llm(c.llm, c.threshold, email, decided, hint)
                if category in DISPOSABLE and not decided.review_reason:
                    row = bands[band_of(decided.confidence)]
                    row[0] += 1
                    row[1] += category == "spam" and kind == "ham"
            t2 = time.perf_counter()
            parse_s += t1 - t0
            decide_s += t2 - t1
            count += 1
            per_category[category] += 1
            if args.errors and (category == "spam") != (kind == "spam"):
                wrong.append(f"  {folder.name}/{path.name}: {category}; {'; '.join(reasons)}")
        n = sum(per_category.values())
        totals[kind][0] += per_category["spam"]
        totals[kind][1] += n
        shown = ", ".join(f"{cat} {k}" for cat, k in per_category.most_common())
        print(f"{folder.name:<14} {kind:<4} {n:>5} messages: {shown}; LLM would be asked for {asked} "
              f"({100 * asked / max(n, 1):.1f}%)")
    if wrong:
        print("misjudged:", *wrong, sep="\n")
    print(f"offline spam/newsletter decisions by confidence (call_below_confidence is {c.llm.call_below_confidence}):")
    for i, (decisions, ham_as_spam) in enumerate(bands):
        print(f"  {BANDS[i]:.1f}-{BANDS[i + 1]:.1f}: {decisions:>5} decisions, "
              f"legitimate mail called spam {ham_as_spam}")
    spam_hit, spam_n = totals["spam"]
    ham_hit, ham_n = totals["ham"]
    if spam_n:
        print(f"spam recall: {spam_hit}/{spam_n} = {100 * spam_hit / spam_n:.1f}%")
    if ham_n:
        print(f"legitimate mail called spam: {ham_hit}/{ham_n} = {100 * ham_hit / ham_n:.2f}%")
    if count:
        print(f"time per message: parse {1000 * parse_s / count:.3f} ms, "
              f"prefilter + classify {1000 * decide_s / count:.3f} ms ({count} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
