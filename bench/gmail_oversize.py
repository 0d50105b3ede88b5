#!/usr/bin/env python3
"""Memory of the bot when Gmail holds one very large message: the real client against the local Gmail fake.

    python bench/gmail_oversize.py [--mb 50] [--small 20]

The fake (tests/contract/fake_gmail.py) runs in a child process, so its memory does not count against the bot. Its
inbox gets one message of --mb megabytes (a lead whose body is one long text part) and --small ordinary messages.
The bot is built as `python run.py` builds it (bot.bootstrap.build_services: Gmail provider, offline classifier,
CSV audit, the shipped mail.max_message_bytes of 25 MB) and runs one cycle.

Printed: the bot's RSS before the cycle and its peak (ru_maxrss) after it; what Gmail was asked for the large
message (messages.get formats, units) and what the bot decided (category, review reason); units per ordinary
message. Exit status 1 when a message failed or a send call was made.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import sys
import tempfile
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gmail_bench import gmail_config, token_path  # noqa: E402  (the same directory is on sys.path)

from bot.bootstrap import build_services  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.records import audit_row  # noqa: E402
from tests.fakes import raw_mail  # noqa: E402

AUDIT = ("category", "review", "actions", "draft_id", "reasons")  # what the audit row of the large message shows


def rss_mib() -> float:
    """The process's resident set now, in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(conn: Connection, mb: int, small: int, token_file: Path) -> None:
    """The child process: the fake Gmail with the mailbox, answering until "stop"."""
    from tests.contract.fake_gmail import FakeGmail, wall_clock

    with FakeGmail(clock=wall_clock) as gm:
        line = "Please quote 40 centrifugal pumps, drawings attached inline. " * 16 + "\r\n"
        body = line * (mb * 1024 * 1024 // len(line))
        big = gm.add_message(raw_mail("Full tender documents [lead:en:0.95]", body=body,
                                      sender="Tender Office <tenders@buyer.example>"))
        for i in range(small):
            gm.add_message(raw_mail(f"Question {i} about pump seals", body="Which seal fits model P-40?\n",
                                    sender=f"Buyer {i} <b{i}@customer{i}.example>"))
        gm.write_token_file(token_file)
        conn.send({"url": gm.server.url, "big": big, "size": len(gm.messages[big].raw)})
        conn.recv()
        with gm.lock:
            conn.send({"log": list(gm.call_log), "reads": list(getattr(gm, "reads", [])), "sent": gm.sent()})
        conn.recv()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=50, help="size of the large message in MB (default 50)")
    ap.add_argument("--small", type=int, default=20, help="ordinary messages beside it (default 20)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, args.mb, args.small, token_path(Path(tmp))), daemon=True)
        proc.start()
        try:
            return measure(Path(tmp), parent, args)
        finally:
            parent.send("stop")
            proc.join(10)


def measure(tmp: Path, fake: Connection, args: argparse.Namespace) -> int:
    ready = fake.recv()
    services = build_services(gmail_config(tmp, ready["url"]))
    pipeline = Pipeline(services)
    before = rss_mib()
    report = pipeline.run_cycle()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fake.send("log")
    stats: dict[str, Any] = fake.recv()
    big = ready["big"]
    units: Counter[str] = Counter()
    for _, method, target, spent in stats["log"]:
        if method == "messages.get":
            units["big" if target == big else "small"] += spent
    row = services.ledger.get(big)
    formats = [fmt for mid, fmt in stats.get("reads", []) if mid == big]
    print(f"mailbox:        one message of {ready['size']:,} bytes and {args.small} small ones; "
          f"mail.max_message_bytes {services.cfg.mail.max_message_bytes:,}")
    print(f"cycle:          {report.processed} processed, {report.failed} failed")
    print(f"bot RSS:        {before:.0f} MiB before the cycle, peak {peak:.0f} MiB")
    print(f"large message:  messages.get formats {formats or 'not recorded'}; {units['big']} units; "
          f"audit row: {({k: audit_row(services.ledger, row)[k] for k in AUDIT}) if row else 'none'}")
    print(f"small messages: {units['small'] / max(1, args.small):.2f} units of messages.get per message")
    return 1 if report.failed or stats["sent"] else 0


if __name__ == "__main__":
    sys.exit(main())
