#!/usr/bin/env python3
"""Gmail quota units the response tracking costs per cycle: the real pipeline and GmailProvider against the fake.

    python bench/followup_quota.py [--leads 200] [--answers 20]

N leads arrive and are processed (the first cycle); then idle cycles; then A of them are answered from the shared
mailbox and a cycle finds the answers. For each phase it prints the units of the calls only the tracking makes
(history.list over all labels; threads.get outside the pipeline's own draft checks) and the whole cycle's units.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.contract.fake_gmail import FakeGmail  # noqa: E402
from tests.contract.test_followup_gmail import answer  # noqa: E402
from tests.contract.test_gmail_pipeline import GmailBot  # noqa: E402


def tracking_units(gm: FakeGmail, pipeline_threads: int) -> int:
    history = [r for r in gm.server.requests(r"/history$") if "labelId" not in r.query]
    return 2 * len(history) + 10 * (gm.calls.count("threads.get") - pipeline_threads)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--leads", type=int, default=200)
    p.add_argument("--answers", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeGmail() as gm:
        bot = GmailBot(gm, Path(tmp))
        mids = [bot.deliver(f"Quote {i} [lead:en:0.95]", sender=f"P{i} <p{i}@c{i}.example>")
                for i in range(args.leads)]

        def phase(name: str, pipeline_threads: int = 0) -> None:
            gm.reset_counters()
            gm.server.log.clear()
            bot.cycle()
            print(f"{name:<44} tracking {tracking_units(gm, pipeline_threads):>6} units   "
                  f"whole cycle {gm.units:>6} units")

        phase(f"first cycle: {args.leads} new leads", pipeline_threads=args.leads)  # the draft check per lead
        for i in range(3):
            phase(f"idle cycle {i + 1}, {args.leads} leads open")
        for mid in mids[:args.answers]:
            answer(bot, mid, "Acme Sales <sales@acme-pumps.example>", minutes=90)
        phase(f"{args.answers} of them answered")
        phase("idle again")
        gm.expire_history()
        phase("history id expired (after a long outage)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
