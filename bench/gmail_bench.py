#!/usr/bin/env python3
"""Quota, throughput and memory of the whole bot on Gmail: the real pipeline against the local Gmail fake.

    python bench/gmail_bench.py [--n 5000] [--latency-ms 20] [--corpus DIR] [--arrivals 250]

The fake (tests/contract/fake_gmail.py) runs in a child process, so its CPU and memory do not count against the
bot. Its inbox gets N messages, read from disk one at a time: the development corpus (../shared/data/spamassassin-dev
next to the repository) plus the leads of bot/data/gold (per its labels*.jsonl) and demo/inbox, shuffled with a
fixed seed and cycled to reach N (repeated copies get fresh Message-IDs, so they are new mail with their own
threads). Every HTTP request to the fake (a batch counts once) waits --latency-ms.

The bot is built as `python run.py` builds it (bot.bootstrap.build_services: Gmail provider with google-auth
credentials refreshed at the fake's token endpoint, offline classifier, CSV audit) and runs cycles until the inbox
is drained; then --arrivals new messages arrive and are picked up through history (the daemon's steady state); then
one more cycle runs 73 hours later, when spam and newsletters are trashed.

The fake enforces Gmail's 15,000 units per user per minute: a call past it is refused (429 with a "Retry after"
time, which pauses the bot's Gmail calls until then), and the refused calls are printed.

Quota units are counted by the fake per API call (batch items one by one, Gmail's prices). Calls about one message
(messages.get/modify/trash; threads.get and drafts.create by thread) are charged to that message, a batchModify is
shared by the messages it names, and the result is grouped by the category the bot decided; listing, history and
labels are overhead, shown per method and amortised over all messages.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.bootstrap import build_services  # noqa: E402
from bot.pipeline import CycleReport, Pipeline  # noqa: E402
from bot.state import now_utc  # noqa: E402
from tests.fakes import make_config  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "spamassassin-dev"
GOLD = ROOT / "bot" / "data" / "gold"
DEMO = ROOT / "demo" / "inbox"
USER_LIMIT_PER_MINUTE = 15_000  # Gmail's per-user quota
PER_MESSAGE = ("messages.get", "messages.modify", "messages.trash")
PER_THREAD = ("threads.get", "drafts.create")
_IDS_HEADER = re.compile(rb"(?im)^(message-id|in-reply-to|references):[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")
_ID = re.compile(rb"<([^<>@\s]+)@")


# ---------------------------------------------------------------- the mailbox


def lead_files() -> list[Path]:
    """Lead-labelled gold messages and the demo inbox's leads and RFQs."""
    names: set[str] = set()
    for labels in sorted(GOLD.glob("labels*.jsonl")):
        for line in labels.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line).get("category") == "lead":
                names.add(json.loads(line)["file"])
    files = [GOLD / name for name in sorted(names) if (GOLD / name).is_file()]
    return files + sorted(p for p in DEMO.glob("*.eml") if re.search(r"-(lead|rfq)-", p.name))


def renumber(raw: bytes, copy: int) -> bytes:
    """The copy-th repetition of a message: every Message-ID in its id headers gets a suffix (body untouched)."""
    end = raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.find(b"\n\n")
    head, body = (raw[:end], raw[end:]) if end >= 0 else (raw, b"")
    suffix = f".c{copy}@".encode()
    head = _IDS_HEADER.sub(lambda m: _ID.sub(lambda i: b"<" + i.group(1) + suffix, m.group(0)), head)
    return head + body


def mailbox(corpus: Path, seed: int) -> Iterator[tuple[bytes, str]]:
    """(raw, source) forever: the corpus plus the leads, shuffled once, cycled; read lazily, file by file."""
    pool = [(p, "corpus") for p in sorted(corpus.rglob("*.eml"))] + [(p, "lead") for p in lead_files()]
    if not pool:
        raise SystemExit(f"no .eml files under {corpus}")
    random.Random(seed).shuffle(pool)
    copy = 0
    while True:
        for path, source in pool:
            raw = path.read_bytes()
            yield (renumber(raw, copy) if copy else raw), source
        copy += 1


def serve_fake(conn: Connection, corpus: Path, n: int, seed: int, latency: float, token_file: Path) -> None:
    """The child process: a FakeGmail holding the mailbox; answers commands from the pipe until "stop"."""
    from tests.contract.fake_gmail import FakeGmail, wall_clock

    with FakeGmail(clock=wall_clock) as gm:
        gm.user_limit_per_minute = USER_LIMIT_PER_MINUTE  # passing it is refused with Gmail's flood control
        source = mailbox(corpus, seed)
        sources: Counter[str] = Counter()

        def deliver(count: int) -> None:
            for _ in range(count):
                raw, kind = next(source)
                gm.add_message(raw)
                sources[kind] += 1

        deliver(n)
        gm.write_token_file(token_file)
        gm.latency = latency
        conn.send({"url": gm.server.url, "sources": dict(sources)})
        while True:
            cmd, arg = conn.recv()
            if cmd == "deliver":
                deliver(arg)
                conn.send(len(gm.call_log))
            elif cmd == "mark":
                conn.send(len(gm.call_log))
            elif cmd == "log":
                with gm.lock:
                    conn.send({"log": list(gm.call_log), "refused": dict(gm.refused), "sent": gm.sent(),
                               "http_requests": len(gm.server.log),
                               "fake_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            else:
                return


# ---------------------------------------------------------------- measuring


def peak_per_minute(log: list[tuple[float, str, str, int]]) -> int:
    """The most units spent in any 60-second window."""
    best = spent = start = 0
    for t, _, _, units in log:
        spent += units
        while log[start][0] < t - 60.0:
            spent -= log[start][3]
            start += 1
        best = max(best, spent)
    return best



def decisions_by_message(ledger: Any) -> tuple[dict[str, str], dict[str, list[str]], set[str]]:
    """From the bot's ledger: category per message, the messages of each thread, the messages with a draft."""
    category: dict[str, str] = {}
    threads: dict[str, list[str]] = defaultdict(list)
    drafted: set[str] = set()
    for row in ledger.iter_messages():
        category[row.provider_id] = row.category
        threads[row.thread_id].append(row.provider_id)
        if ledger.effect_result(row.provider_id, "draft"):
            drafted.add(row.provider_id)
    return category, threads, drafted

def attribute(log: list[tuple[float, str, str, int]], category: dict[str, str], threads: dict[str, list[str]],
              ) -> tuple[dict[str, float], dict[str, float]]:
    """Units per message (by provider id) and overhead units per method."""
    per_message: dict[str, float] = defaultdict(float)
    overhead: dict[str, float] = defaultdict(float)
    for _, method, target, units in log:
        if method in PER_MESSAGE and target in category:
            per_message[target] += units
        elif method in PER_THREAD and target in threads:
            members = threads[target]
            leads = [m for m in members if category[m] == "lead"] or members
            for m in leads:
                per_message[m] += units / len(leads)
        elif method == "messages.batchModify" and target:  # labels or trash for many: shared by them
            ids = target.split(",")
            for m in ids:
                if m in category:
                    per_message[m] += units / len(ids)
                else:
                    overhead[method] += units / len(ids)
        else:
            overhead[method] += units
    return per_message, overhead


class QuotaUse(NamedTuple):
    """The fake's call log and statistics, with the units put on the bot's decisions."""

    stats: dict[str, Any]
    log: list[tuple[float, str, str, int]]
    category: dict[str, str]
    drafted: set[str]
    per_message: dict[str, float]
    overhead: dict[str, float]
    total: int


def quota_use(fake: Connection, ledger: Any) -> QuotaUse:
    """Ask the fake for its call log and attribute every unit to a message or to overhead."""
    fake.send(("log", None))
    stats = fake.recv()
    log: list[tuple[float, str, str, int]] = stats["log"]
    category, threads, drafted = decisions_by_message(ledger)
    per_message, overhead = attribute(log, category, threads)
    return QuotaUse(stats, log, category, drafted, per_message, overhead, sum(u for *_, u in log))


def run_until_drained(pipeline: Pipeline, reports: list[CycleReport], max_cycles: int) -> None:
    for _ in range(max_cycles):
        report = pipeline.run_cycle()
        reports.append(report)
        if report.listed == 0 or report.processed + report.failed == 0:
            return


def summarise(reports: list[CycleReport]) -> tuple[int, int]:
    return sum(r.processed for r in reports), sum(r.failed for r in reports)


def units_table(per_message: dict[str, float], category: dict[str, str], drafted: set[str]) -> list[str]:
    groups: dict[str, list[float]] = defaultdict(list)
    for pid, cat in category.items():
        units = per_message.get(pid, 0.0)
        groups["non-lead" if cat != "lead" else "lead"].append(units)
        groups[f"  {cat}"].append(units)
        if pid in drafted:
            groups["lead with draft"].append(units)
    order = ["non-lead", "lead", "lead with draft"] + sorted(k for k in groups if k.startswith("  "))
    return [f"  {name:<18} {len(groups[name]):>6} msgs  {sum(groups[name]) / len(groups[name]):6.2f} units/msg"
            for name in order if groups.get(name)]


def timed_drain(pipeline: Pipeline, fake: Connection, max_cycles: int) -> tuple[list[CycleReport], float, int]:
    """Cycles until nothing is left: their reports, the seconds they took, and the fake's request-log position
    after them (to attribute quota units to the phase)."""
    reports: list[CycleReport] = []
    started = time.perf_counter()
    run_until_drained(pipeline, reports, max_cycles)
    seconds = time.perf_counter() - started
    fake.send(("mark", None))
    return reports, seconds, fake.recv()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fake_gmail_args(ap, 5000)
    ap.add_argument("--arrivals", type=int, default=250, help="new messages picked up through history afterwards")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        ap.error(f"no corpus at {args.corpus} (pass --corpus DIR)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp, fake_gmail_process(args, Path(tmp)) as (fake, ready, loading):
        return measure(args, Path(tmp), fake, ready, loading)


def add_fake_gmail_args(ap: argparse.ArgumentParser, n: int) -> None:
    """The options fake_gmail_process() reads: --n, --latency-ms, --corpus, --seed."""
    ap.add_argument("--n", type=int, default=n, help=f"messages in the inbox at the start (default {n})")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="added to every HTTP request (default 20)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of .eml files")
    ap.add_argument("--seed", type=int, default=1)


@contextmanager
def fake_gmail_process(args: argparse.Namespace, tmp_path: Path) -> Iterator[tuple[Connection, dict[str, Any], float]]:
    """The fake Gmail in a process of its own (so RSS figures are the bot's), loaded with args.n messages;
    yields its control pipe, its ready message and the seconds loading took."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve_fake, daemon=True,
                       args=(child, args.corpus, args.n, args.seed, args.latency_ms / 1000, token_path(tmp_path)))
    loading = time.perf_counter()
    proc.start()
    try:
        ready = parent.recv()
        yield parent, ready, time.perf_counter() - loading
    finally:
        if proc.is_alive():
            parent.send(("stop", None))
            proc.join(10)
        if proc.is_alive():
            proc.terminate()


def token_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "gmail-token.json"


def gmail_config(tmp_path: Path, url: str, patch: dict[str, Any] | None = None) -> Any:
    """The shipped config with state under tmp_path and Gmail pointed at the fake at url."""
    return make_config(tmp_path, {"mail": {"provider": "gmail", "gmail": {
        "api_endpoint": url + "/", "batch_uri": url + "/batch/gmail/v1", "token_uri": url + "/token",
        "token_file": str(token_path(tmp_path))}}, "notify": {"console": False}, **(patch or {})})


def measure(args: argparse.Namespace, tmp_path: Path, fake: Connection, ready: dict[str, Any],
            loading: float) -> int:
    cfg = gmail_config(tmp_path, ready["url"])
    services = build_services(cfg)
    pipeline = Pipeline(services)
    max_cycles = 4 * args.n // max(1, cfg.poll.max_messages_per_cycle) + 10

    drain, drained, mark_drained = timed_drain(pipeline, fake, max_cycles)
    fake.send(("deliver", args.arrivals))
    mark_arrived = fake.recv()
    arrivals, incremental, mark_trash = timed_drain(pipeline, fake, max_cycles)

    later = now_utc() + timedelta(hours=73)
    services.clock = lambda: later
    t2 = time.perf_counter()
    trash = pipeline.run_cycle()
    trashing = time.perf_counter() - t2
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    stats, log, category, drafted, per_message, overhead, total = quota_use(fake, services.ledger)
    processed, failed = summarise(drain)
    later_processed, later_failed = summarise(arrivals)
    busy = drained + incremental + trashing
    cats = Counter(category.values())

    print(f"mailbox:          {args.n} messages ({', '.join(f'{k} {v}' for k, v in ready['sources'].items())}) "
          f"loaded into the fake in {loading:.1f} s; {args.latency_ms:g} ms per HTTP request")
    print(f"drain:            {processed} processed, {failed} failed in {len(drain)} cycles, {drained:.1f} s "
          f"-> {processed / drained:.1f} messages/s")
    print(f"arrivals:         {later_processed} processed, {later_failed} failed via history in {len(arrivals)} "
          f"cycle(s), {incremental:.1f} s")
    print(f"trash (73 h on):  {trash.trashed} trashed in {trashing:.1f} s")
    print(f"categories:       {', '.join(f'{k} {v}' for k, v in sorted(cats.items()))}")
    print(f"quota units:      {total} total; {total / max(1, len(category)):.2f} per message all included")
    print("per message (calls about that message, grouped by the bot's decision; batchModify shared):")
    for line in units_table(per_message, category, drafted):
        print(line)
    spent = sorted(overhead.items(), key=lambda kv: -kv[1])
    print(f"overhead:         {sum(overhead.values()):.0f} units = {sum(overhead.values()) / max(1, len(category)):.2f}"
          f" per message ({', '.join(f'{k} {v:.0f}' for k, v in spent)})")
    drain_units = sum(u for *_, u in log[:mark_drained])
    arrival_units = sum(u for *_, u in log[mark_arrived:mark_trash])
    print(f"by phase:         drain {drain_units / max(1, processed):.2f} units/message; arrivals via history "
          f"{arrival_units / max(1, later_processed):.2f} units/message (before trash)")
    peak = peak_per_minute(log)
    print(f"units per minute: peak {peak:,} in any 60 s window = {peak / USER_LIMIT_PER_MINUTE:.0%} of Gmail's "
          f"per-user limit of {USER_LIMIT_PER_MINUTE:,}; {total / busy * 60:,.0f}/min on average over {busy:.0f} s")
    print(f"refused calls:    {stats['refused'] or 'none'} (the fake refuses what passes {USER_LIMIT_PER_MINUTE:,} "
          f"units per user per minute); send calls: {len(stats['sent'])}")
    print(f"HTTP requests:    {stats['http_requests']}")
    print(f"peak RSS:         bot {peak_rss:.0f} MB (fake, in its own process: {stats['fake_peak_rss_mb']:.0f} MB)")
    return 0 if not failed and not later_failed and not stats["refused"] else 1


if __name__ == "__main__":
    sys.exit(main())
