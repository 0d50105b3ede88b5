#!/usr/bin/env python3
"""Throughput and memory of the whole pipeline on the local adapters (Maildir, offline classifier, CSV audit).

    python bench/pipeline_bench.py [FOLDER_OF_EML ...] [--limit N] [--count N]

Default input: ../shared/data/spamassassin-dev next to the repository. The messages are copied into a fresh
Maildir (not timed), then the bot runs cycles of 500 until the inbox is drained. Printed: messages per second
over the timed cycles, peak RSS, and RSS after each cycle (flat = memory does not grow with N).
--count N copies the folders' mail again and again until there are N messages; each further copy gets a Message-ID
and a sender of its own (otherwise the bot would take it for the same mail, or a follow-up in the same thread).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.bootstrap import build_services  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from tests.fakes import make_config  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "spamassassin-dev"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fill_maildir(root: Path, folders: list[Path], limit: int | None, count: int | None = None) -> int:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = [src for folder in folders for src in sorted(folder.rglob("*.eml"))][:limit]
    n = 0
    for round_ in range(max(1, -(-(count or 0) // max(1, len(sources))))):
        for src in sources:
            if count is not None and n >= count:
                return n
            dest = root / "new" / f"bench.{n:06d}"
            if round_ == 0:
                shutil.copyfile(src, dest)
            else:
                dest.write_bytes(_another_copy(src.read_bytes(), round_))
            n += 1
    return n


def _another_copy(raw: bytes, round_: int) -> bytes:
    """The same mail as a different one: its Message-ID, References and sender made unique to this copy."""
    end = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[:end.start()], raw[end.start():]) if end else (raw, b"")
    head = re.sub(rb"(?im)^(message-id:[ \t]*<?)", rb"\g<1>copy%d." % round_, head, count=1)
    head = re.sub(rb"(?im)^(in-reply-to|references):.*(\r?\n[ \t].*)*\r?\n?", b"", head)
    head = re.sub(rb"(?im)^(from:.*?)([\w.+-]+)@", rb"\g<1>\g<2>+copy%d@" % round_, head, count=1)
    return head + rest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path, default=[DEFAULT])
    ap.add_argument("--limit", type=int, default=None, help="at most this many messages")
    ap.add_argument("--cycle", type=int, default=500, help="messages per cycle")
    ap.add_argument("--count", type=int, default=None, help="copy the mail until there are this many messages")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cfg = make_config(tmp_path, {"poll": {"max_messages_per_cycle": args.cycle},
                                     "mail": {"maildir": {"seed": ""}}, "notify": {"console": False}})
        n = fill_maildir(cfg.mail.maildir.path, args.folders, args.limit, args.count)
        if n == 0:  # a figure for no mail would say nothing: name the folder that was empty or missing
            print(f"no .eml files in {', '.join(str(f) for f in args.folders)}; pass the corpus folder",
                  file=sys.stderr)
            return 2
        services = build_services(cfg)
        pipeline = Pipeline(services)
        start_rss = rss_mb()
        samples: list[tuple[int, float]] = []
        done = failed = 0
        started = time.perf_counter()
        while True:
            report = pipeline.run_cycle()
            done += report.processed
            failed += report.failed
            samples.append((done, rss_mb()))
            if report.listed == 0 or report.processed + report.failed == 0:
                break
        elapsed = time.perf_counter() - started
        cats: dict[str, int] = {}
        for row in services.ledger.iter_messages():
            cats[row.category] = cats.get(row.category, 0) + 1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"messages:        {n} ({', '.join(str(f) for f in args.folders)})")
        print(f"processed:       {done}, failed: {failed}")
        print(f"categories:      {', '.join(f'{k} {v}' for k, v in sorted(cats.items()))}")
        print(f"elapsed:         {elapsed:.2f} s")
        print(f"throughput:      {done / elapsed:.0f} messages/s")
        print(f"peak RSS:        {peak:.0f} MB (after start-up: {start_rss:.0f} MB)")
        print("RSS per cycle:   " + ", ".join(f"{d}:{r:.0f}MB" for d, r in samples))
        if os.environ.get("BENCH_KEEP"):
            print(f"state kept in {tmp}")
            input("press enter to remove it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
