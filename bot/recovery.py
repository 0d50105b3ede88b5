"""What a start-up repairs before the first cycle: temporary files a killed process left, and a lost ledger.

A ledger that was deleted (or replaced by an empty one) beside a mailbox whose mail carries the processed label
is said loudly: the decisions, the round-robin position and the queued rows, pings and CRM updates before it are
gone. What the mailbox itself still shows is rebuilt: the trash the bot had scheduled for spam and newsletters,
from their labels and their dates.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.mime import header_date, read_headers
from bot.models import DISPOSABLE, MessageRef
from bot.ports import MailProvider
from bot.state import Ledger

log = logging.getLogger("bot.recovery")

REBUILT_KEY = "ledger.rebuilt_at"
TMP_AGE = 36 * 3600  # Maildir's rule for tmp/: older files were left by a delivery that died
MODEL_TMP_AGE = 3600  # a model being saved by `learn` right now is seconds old
_OUR_DRAFT = re.compile(r"^\d+\.M\d+P\d+R[0-9a-f]{16}\.")  # the bot's own maildir keys (adapters.maildir._new_key)


def clean_orphans(cfg: Config, now: Callable[[], float] = time.time) -> int:
    """Remove temporary files a killed process left behind; returns how many.

    In the Maildir: the bot's own draft files in .Drafts/tmp (no write of ours is in flight at start-up), and
    anything in a folder's tmp/ older than 36 hours (what Maildir allows; a younger file may be a delivery by
    another program in progress). Beside the model: `.model-*.tmp` older than an hour (`learn` may be saving one).
    """
    found: list[Path] = []
    root = cfg.mail.maildir.path
    if cfg.mail.provider == "maildir" and root.is_dir():
        for tmp in [root / "tmp", *(e / "tmp" for e in root.iterdir() if e.name.startswith(".") and e.is_dir())]:
            ours = tmp.parent.name == ".Drafts"
            found += [f for f in _files(tmp) if (ours and _OUR_DRAFT.match(f.name)) or _age(f, now) > TMP_AGE]
    found += [f for f in _files(cfg.classify.model_path.parent, ".model-*.tmp") if _age(f, now) > MODEL_TMP_AGE]
    removed = 0
    for f in found:
        try:
            f.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d temporary file(s) an interrupted run left behind", removed)
    return removed


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    try:
        return [f for f in folder.glob(pattern) if f.is_file()]
    except OSError:
        return []


def _age(path: Path, now: Callable[[], float]) -> float:
    try:
        return now() - os.stat(path).st_mtime
    except OSError:
        return 0.0


def recover_lost_ledger(cfg: Config, ledger: Ledger, mail: MailProvider, clock: Callable[[], datetime]) -> str:
    """If the ledger is empty but the mailbox has processed mail, rebuild the scheduled trash and return what the
    team must be told ("" when the ledger is fine or the mailbox is new)."""
    if not ledger.is_empty():
        return ""
    processed = mail.ids_with_label(cfg.labels.processed)
    if not processed:
        return ""  # a new installation: nothing was lost
    scheduled = _rebuild_trash(cfg, ledger, mail, processed, clock)
    return (f"the ledger {ledger.path} is new, but {len(processed)} message(s) in the mailbox carry "
            f"{cfg.labels.processed}: it was deleted or replaced. Earlier decisions, the round-robin position "
            "(it starts over) and any rows, pings and CRM updates still queued are gone; "
            f"rebuilt from the mailbox: {scheduled} scheduled trash item(s) of spam and newsletters")


def _rebuild_trash(cfg: Config, ledger: Ledger, mail: MailProvider, processed: set[str],
                   clock: Callable[[], datetime]) -> int:
    """Trash for processed spam and newsletters, due their grace period after their date, as the bot had it.

    Mail with another category label or the review label (a person corrected it, or the bot was unsure) is left.
    """
    labelled = {cat: mail.ids_with_label(label) & processed for cat, label in cfg.labels.categories.items()}
    kept = mail.ids_with_label(cfg.labels.review).union(
        *(ids for cat, ids in labelled.items() if cat not in DISPOSABLE))
    hours = {pid: cfg.actions[cat].trash_after_hours for cat in DISPOSABLE for pid in labelled.get(cat, set())
             if cfg.actions[cat].trash_after_hours is not None and pid not in kept}
    due: dict[str, datetime] = {}
    for ref, raw in mail.fetch([MessageRef(pid, "") for pid in sorted(hours)]):
        sent = None if isinstance(raw, Exception) else header_date(read_headers(raw).get("date"))
        due[ref.provider_id] = (sent or clock()) + timedelta(hours=float(hours[ref.provider_id] or 0))
    with ledger.transaction():
        for pid, when in due.items():
            ledger.add_effect(pid, "trash", {"rebuilt": True}, when)
        ledger.set_cursor(REBUILT_KEY, clock().isoformat(timespec="seconds"))
    return len(due)
