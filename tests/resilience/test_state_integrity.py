"""A damaged or lost ledger, with the real bot process on the offline default (Maildir) and the LLM oracle.

Damage stops the bot at start-up with one clear line and exit 3, before it touches any mail. A ledger that was
deleted is said loudly, and the trash it had scheduled for spam and newsletters is rebuilt from their labels and
their dates.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.resilience.harness import Mail, Stack, compose, inbox40

OLD_SPAM = compose("old-spam", "Prize Desk <promo@old-prizes.example>", "You WON a FREE phone!!! Claim now",
                   "Congratulations!!! Click here to claim your prize. Act now!!!", "spam", "en",
                   date="Sat, 01 Dec 2001 09:00:00 +0000")
FUTURE_NEWS = compose("future-news", "Pump Digest <news@mailchimp.com>", "Pump digest: December",
                      "Five ways to cut energy use in pumping systems. Unsubscribe at any time.", "newsletter",
                      "en", headers={"List-Unsubscribe": "<https://mailchimp.com/unsub/1>"},
                      date="Wed, 01 Dec 2100 09:00:00 +0000")


def maildir_stack_config(stack: Stack, mails: list[Mail]) -> Path:
    seed = stack.tmp / "seed"
    seed.mkdir()
    for mail in mails:
        (seed / f"{mail.name}.eml").write_bytes(mail.raw)
    stack.oracle.learn(mails)
    return stack.write_config(mail__provider="maildir", audit__sheets__enabled=False, notify__slack__enabled=False,
                              crm__hubspot__enabled=False,
                              mail__maildir={"path": str(stack.state_dir / "maildir"), "seed": str(seed)},
                              actions__spam__trash_after_hours=72, actions__newsletter__trash_after_hours=72)


def files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_damaged_ledger_stops_the_bot_at_start_up_with_one_line_and_exit_3(tmp_path: Path,
                                                                             trained_model: Path) -> None:
    mails = inbox40()
    with Stack(tmp_path, model=trained_model) as stack:
        config = maildir_stack_config(stack, mails[:20])
        assert stack.run(config).returncode == 0
        ledger = stack.state_dir / "ledger.sqlite3"
        assert not Path(f"{ledger}-wal").exists() or Path(f"{ledger}-wal").stat().st_size == 0
        size = ledger.stat().st_size
        assert size > 96 * 1024
        with open(ledger, "r+b") as fh:  # 32 KB of garbage in the middle of the file
            fh.seek(size // 2 - 16 * 1024)
            fh.write(os.urandom(32 * 1024))
        for mail in mails[20:25]:  # new mail is waiting: none of it may be touched
            (stack.state_dir / "maildir" / "new" / f"{mail.name}.eml").write_bytes(mail.raw)
        before = files(stack.state_dir / "maildir")
        result = stack.run(config)
        err = result.stderr.decode()
        assert result.returncode == 3, err[-3000:]
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "ERROR" in lines[0] and "is damaged" in lines[0], err[-3000:]
        assert files(stack.state_dir / "maildir") == before


def test_a_deleted_ledger_is_said_loudly_and_the_scheduled_trash_is_rebuilt(tmp_path: Path,
                                                                           trained_model: Path) -> None:
    lead = next(m for m in inbox40() if m.name.startswith("x1-lead"))
    with Stack(tmp_path, model=trained_model) as stack:
        config = maildir_stack_config(stack, [OLD_SPAM, FUTURE_NEWS, lead])
        assert stack.run(config).returncode == 0
        maildir = stack.state_dir / "maildir"
        assert not list((maildir / ".Trash").glob("*/*"))  # scheduled 72 hours after processing: not yet
        for suffix in ("", "-wal", "-shm"):
            Path(f"{stack.state_dir / 'ledger.sqlite3'}{suffix}").unlink(missing_ok=True)

        result = stack.run(config)
        err = result.stderr.decode()
        assert result.returncode == 0, err[-3000:]
        assert "it was deleted or replaced" in err and "3 message(s) in the mailbox carry Triage/Processed" in err
        assert "rebuilt from the mailbox: 2 scheduled trash item(s)" in err
        trashed = [p.name.split(":")[0] for p in (maildir / ".Trash").glob("*/*")]
        assert trashed == ["seed.old-spam"]  # due 72 hours after its date, long ago
        pending = stack.ledger("SELECT provider_id, not_before FROM effects WHERE status='pending'")
        assert pending == [("seed.future-news", "2100-12-04T09:00:00+00:00")]
        assert len(list((maildir / ".Drafts" / "cur").iterdir())) == 1  # nothing was decided twice

        again = stack.run(config).stderr.decode()
        assert "deleted or replaced" not in again
        rebuilt = stack.ledger("SELECT value FROM cursors WHERE key='ledger.rebuilt_at'")
        assert len(rebuilt) == 1 and json.dumps(rebuilt)
