#!/usr/bin/env python3
"""A 10,000-message backlog on Gmail: it drains within the per-user quota rate, with flat memory.

    python bench/load_bench.py [--n 10000] [--latency-ms 20] [--corpus DIR] [--cycle 500] [--points 12]

The mailbox, the fake and the quota accounting are those of bench/gmail_bench.py: the development corpus
(../shared/data/spamassassin-dev, streamed from disk) plus the gold and demo leads, cycled with fresh Message-IDs
up to N, held by the Gmail fake in a child process that adds --latency-ms to every HTTP request and logs every
API call with its Gmail units. The bot is built as `python run.py` builds it and runs cycles of --cycle messages
until the inbox is empty. After every cycle its RSS is sampled.

Printed: messages per second, quota units per message (by decision), the most units spent in any 60-second
window against Gmail's 15,000 per user, peak RSS, RSS over time and its growth per 1,000 messages once warm
(flat memory: close to zero). Exit status 1 when the quota was exceeded, a message failed, a send call was made,
or memory grew faster than --max-growth-mb per 1,000 messages.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gmail_bench import (  # the same directory: `python bench/load_bench.py` puts it on sys.path
    USER_LIMIT_PER_MINUTE,
    add_fake_gmail_args,
    fake_gmail_process,
    gmail_config,
    peak_per_minute,
    quota_use,
    units_table,
)
from pipeline_bench import rss_mb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.bootstrap import build_services  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402


def growth_per_thousand(samples: list[tuple[float, int, float]], warm: float = 0.2) -> float:
    """Least-squares slope of RSS (MB) over messages processed, per 1,000 messages, after the first `warm` share."""
    total = samples[-1][1] if samples else 0
    points = [(n, rss) for _, n, rss in samples if n >= warm * total]
    if len(points) < 2:
        return 0.0
    mean_n = sum(n for n, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    var = sum((n - mean_n) ** 2 for n, _ in points)
    return 0.0 if var == 0 else 1000 * sum((n - mean_n) * (r - mean_r) for n, r in points) / var


def drain(pipeline: Pipeline, max_cycles: int) -> tuple[int, int, list[tuple[float, int, float]]]:
    """Cycles until nothing is listed; (processed, failed, [(seconds, processed so far, RSS MB)])."""
    processed = failed = 0
    started = time.perf_counter()
    samples = [(0.0, 0, rss_mb())]
    for _ in range(max_cycles):
        report = pipeline.run_cycle()
        processed += report.processed
        failed += report.failed
        samples.append((time.perf_counter() - started, processed, rss_mb()))
        if report.listed == 0 or report.processed + report.failed == 0:
            break
    return processed, failed, samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fake_gmail_args(ap, 10_000)
    ap.add_argument("--cycle", type=int, default=500, help="messages per cycle (default 500, as shipped)")
    ap.add_argument("--points", type=int, default=12, help="RSS samples printed (default 12)")
    ap.add_argument("--max-growth-mb", type=float, default=2.0, help="allowed RSS growth per 1,000 messages")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp, fake_gmail_process(args, Path(tmp)) as (fake, ready, _):
        return measure(args, Path(tmp), fake, ready)


def measure(args: argparse.Namespace, tmp: Path, fake: Connection, ready: dict[str, Any]) -> int:
    cfg = gmail_config(tmp, ready["url"], {"poll": {"max_messages_per_cycle": args.cycle}})
    services = build_services(cfg)
    processed, failed, samples = drain(Pipeline(services), 4 * args.n // args.cycle + 10)
    seconds = samples[-1][0]
    stats, log, category, drafted, per_message, overhead, total = quota_use(fake, services.ledger)
    peak = peak_per_minute(log)
    growth = growth_per_thousand(samples)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"mailbox:          {args.n} messages ({', '.join(f'{k} {v}' for k, v in ready['sources'].items())}); "
          f"{args.latency_ms:g} ms per HTTP request; {args.cycle} messages per cycle")
    print(f"drain:            {processed} processed, {failed} failed in {len(samples) - 1} cycles, {seconds:.0f} s "
          f"-> {processed / max(seconds, 1e-9):.1f} messages/s")
    print(f"categories:       {', '.join(f'{k} {v}' for k, v in sorted(Counter(category.values()).items()))}")
    print(f"quota units:      {total:,} total, {total / max(1, processed):.2f} per message "
          f"(overhead {sum(overhead.values()) / max(1, processed):.2f} of it)")
    for line in units_table(per_message, category, drafted):
        print(line)
    print(f"quota rate:       peak {peak:,} units in any 60 s window, Gmail's per-user limit "
          f"{USER_LIMIT_PER_MINUTE:,} ({peak / USER_LIMIT_PER_MINUTE:.0%}); "
          f"average {total / max(seconds, 1e-9) * 60:,.0f}/min")
    print(f"refused calls:    {stats['refused'] or 'none'}; send calls: {len(stats['sent'])}")
    print(f"peak RSS:         bot {peak_rss:.0f} MB (the fake, in its own process: {stats['fake_peak_rss_mb']:.0f} MB)")
    print(f"RSS growth:       {growth:+.2f} MB per 1,000 messages after the first 20 % (limit {args.max_growth_mb:g}), "
          f"{growth_per_thousand(samples, warm=0.5):+.2f} over the second half")
    print("RSS over time:    seconds  processed  RSS MB")
    step = max(1, -(-(len(samples) - 1) // max(1, args.points - 1)))
    shown = samples[::step] if (len(samples) - 1) % step == 0 else [*samples[::step], samples[-1]]
    for t, n, rss in shown:
        print(f"                  {t:7.0f}  {n:9d}  {rss:6.0f}")
    ok = not failed and peak <= USER_LIMIT_PER_MINUTE and not stats["sent"] and growth <= args.max_growth_mb
    return 0 if ok and processed == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
