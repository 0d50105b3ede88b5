#!/usr/bin/env python3
"""Speed of single components, the figures unit tests used to assert on: parsing (a 25 MB attachment too),
language detection, training the offline model, and a Maildir cycle over 1,000 messages.

    python bench/component_speed.py [--repeat N]

Each line prints the figure and the target it is held to; the exit code is 1 when a target is missed, so the
script can gate a release on a quiet machine. Timings on a busy machine say little: run it alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    """The fastest of `repeat` runs: the run least disturbed by the rest of the machine."""
    return min(fn() for _ in range(repeat))


def parse_ms() -> float:
    from bot.mime import parse_email
    from tests.unit.test_mime import NESTED

    started = time.process_time()
    for _ in range(200):
        parse_email(NESTED)
    return 1000 * (time.process_time() - started) / 200


def large_attachment_s() -> float:
    from bot.mime import parse_email
    from tests.unit.test_mime import large_attachment_mail

    _data, raw = large_attachment_mail()
    started = time.process_time()  # CPU time: the attachment is counted, not decoded
    parse_email(raw)
    return time.process_time() - started


def language_ms() -> float:
    from bot.classify.language import detect_language
    from tests.unit.test_language import ALL, SENTENCES

    texts = list(SENTENCES.values()) * 30
    detect_language(texts[0], ALL)  # the first call loads the profiles: start-up, not the per-call cost
    started = time.perf_counter()
    for t in texts:
        detect_language(t, ALL)
    return 1000 * (time.perf_counter() - started) / len(texts)


def train_s() -> float:
    from bot.classify.offline import load_or_train

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        load_or_train(Path(tmp) / "absent.json", ROOT / "bot" / "data" / "gold", ("en", "de"), "en", 1500)
    return time.perf_counter() - started


def maildir_s() -> float:
    from bot.adapters.maildir import MaildirProvider
    from tests.contract.mail_contract import LABELS, LEAD, PROCESSED, make_mail
    from tests.contract.test_maildir import _store

    raws = [make_mail(f"<m{i}@bulk.example>", f"sender{i}@bulk.example", f"Quote {i}", 1 + i % 28, i % 24)
            for i in range(1000)]
    with tempfile.TemporaryDirectory() as tmp:
        _store(Path(tmp) / "md", raws)
        provider = MaildirProvider(Path(tmp) / "md", processed_label=PROCESSED)
        provider.ensure_labels(LABELS)
        started = time.perf_counter()
        refs = provider.list_new(2000)
        for ref, _raw in provider.fetch(refs):
            provider.modify(ref.provider_id, [PROCESSED, LEAD], [], archive=True)
            provider.thread(ref.thread_id)
        return time.perf_counter() - started


CHECKS: list[tuple[str, Callable[[], float], float, str]] = [
    ("parse a nested multipart mail", parse_ms, 5.0, "ms"),
    ("parse a mail with a 25 MB attachment", large_attachment_s, 3.0, "s"),
    ("detect the language of a sentence", language_ms, 2.0, "ms"),
    ("train the offline model on the gold set", train_s, 10.0, "s"),
    ("Maildir: list, fetch, label and thread 1,000 messages", maildir_s, 5.0, "s"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest counts (default 3)")
    args = ap.parse_args()
    missed = 0
    for name, fn, target, unit in CHECKS:
        value = best_of(max(1, args.repeat), fn)
        ok = value < target
        missed += not ok
        print(f"{name:<58} {value:8.3f} {unit:<2}  target < {target:g} {unit}  {'met' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
