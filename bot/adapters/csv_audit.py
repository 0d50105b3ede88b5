"""The local audit record: a CSV file under state/ that opens in any spreadsheet program."""

from __future__ import annotations

import csv
import errno
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.escape import sheet_cell
from bot.models import AUDIT_FIELDS


def row_key(row: dict[str, Any]) -> str:
    """A row's identity: the mailbox's own id of the message (two mails may carry the same Message-ID)."""
    return str(row.get("provider_id") or row.get("message_id") or "")


class CsvAuditSink:
    name = "csv"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
        if retry and self.path.exists():
            # An earlier attempt may have appended before the process died: skip rows already there.
            present = {row_key(r) for r in self.read()}
            rows = [r for r in rows if row_key(r) not in present]
        if not rows:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=AUDIT_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows({k: sheet_cell(r.get(k, "")) for k in AUDIT_FIELDS} for r in rows)
        data = buf.getvalue().encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                # One write call: a kill lands before or after it. A full disk can cut it short, and a cut row
                # would merge with the next append into one corrupt line: whole rows or none.
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
