"""Simulate the sales team answering the demo leads, so that `python run.py report` has response times to show.

Run it after `python run.py --once` on the demo inbox. For three of every four leads the bot assigned, it writes
the assignee's reply into the Sent folder of the demo Maildir (`state/maildir/.Sent`), threaded to the lead by
In-Reply-To and References and dated a few business hours after the lead arrived; the fourth stays unanswered.
The next `python run.py --once` finds the answers. Run it again: replies already written are not written twice.

    python demo/answer.py [--config config.yaml]
"""

from __future__ import annotations

import argparse
import sys
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.followup.hours import add_business_hours  # noqa: E402
from bot.followup.tracking import parse_time  # noqa: E402
from bot.state import Ledger  # noqa: E402

# Business hours between arrival and answer, lead after lead; None: this one is left unanswered.
DELAYS = (0.5, 2.5, 1.2, None, 3.5, 0.8, 6.0, None, 1.5, 9.0, 2.2, None, 0.3, 14.0, 4.5, None, 1.0, 26.0, 2.8, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml")
    cfg = load_config(parser.parse_args().config)
    ledger_path = cfg.state_dir / "ledger.sqlite3"
    if not ledger_path.exists():
        print("run `python run.py --once` first", file=sys.stderr)
        return 1
    ledger, people = Ledger(ledger_path), cfg.routing.people()
    sent = cfg.mail.maildir.path / ".Sent"
    for sub in ("cur", "new", "tmp"):
        (sent / sub).mkdir(parents=True, exist_ok=True)
    leads = [m for m in ledger.iter_messages() if m.category == "lead" and not m.review and m.assignee]
    written = 0
    for i, lead in enumerate(sorted(leads, key=lambda m: m.received_at)):
        delay = DELAYS[i % len(DELAYS)]
        arrived = parse_time(lead.received_at)
        target = sent / "cur" / f"demo-answer-{i:02d}:2,S"
        if delay is None or arrived is None or target.exists():
            continue
        em = lead.record.get("email") or {}
        person = people[lead.assignee]
        reply = EmailMessage()
        reply["From"] = formataddr((person.name, person.email))
        reply["To"] = em.get("reply_to") or em.get("from", "")
        reply["Subject"] = "Re: " + str(em.get("subject", ""))
        reply["Date"] = format_datetime(add_business_hours(arrived, delay, cfg.followup.business_hours))
        reply["Message-ID"] = f"<demo-answer-{i:02d}@{cfg.company.mailbox.rpartition('@')[2]}>"
        reply["In-Reply-To"] = lead.message_id
        reply["References"] = " ".join([*em.get("references", []), lead.message_id])
        reply.set_content(f"Dear customer,\n\nthank you for your enquiry. Our offer follows.\n\n{person.name}\n")
        target.write_bytes(reply.as_bytes())
        written += 1
    print(f"{written} answer(s) written to {sent}; run `python run.py --once` to let the bot find them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
