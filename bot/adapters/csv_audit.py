"""The local audit record: a CSV file under state/ that opens in any spreadsheet program.

New rows are appended with one write. Filling in later columns of a row (update()) rewrites the file through a
temporary file and a rename, so a crash leaves either the old file or the new one. Columns people added in a
spreadsheet program are kept; a file from before the later audit columns gets them added on the next write.
"""

from __future__ import annotations

import codecs
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
        header = self._header()
        if header is not None and not set(AUDIT_FIELDS) <= set(header):
            header = self._rewrite(*self._read_all())  # add the missing columns before appending under them
        if retry and self.path.exists():
            # An earlier attempt may have appended before the process died: skip rows already there.
            present = {row_key(r) for r in self.read()}
            rows = [r for r in rows if row_key(r) not in present]
        if not rows:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=AUDIT_FIELDS if new or header is None else header,
                                extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows({k: sheet_cell(r.get(k, "")) for k in AUDIT_FIELDS} for r in rows)
        # A new file starts with a byte-order mark: without it Excel reads UTF-8 as the local code page.
        data = buf.getvalue().encode("utf-8-sig" if new else "utf-8")
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

    def update(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Fill in the given fields on the row of each message; returns the keys that have no row."""
        wanted = {row_key(r): r for r in rows}
        header, lines = self._read_all()
        found: set[str] = set()
        for line in lines:
            change = wanted.get(row_key(line))
            if change is not None:
                line.update({k: sheet_cell(v) for k, v in change.items() if k in AUDIT_FIELDS})
                found.add(row_key(line))
        if found:  # header holds every field by now: a file from an older version gains the missing columns
            self._rewrite(header, lines)
        return set(wanted) - found

    def _header(self) -> list[str] | None:
        if not self.path.exists():
            return None
        with open(self.path, newline="", encoding="utf-8-sig") as fh:  # -sig: the BOM is no part of a name
            return next(csv.reader(fh), None)  # None for an empty file too

    def _read_all(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.path.exists():
            return list(AUDIT_FIELDS), []
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            lines = list(reader)
            header = list(reader.fieldnames or AUDIT_FIELDS)
        return header + [f for f in AUDIT_FIELDS if f not in header], lines

    def _rewrite(self, header: list[str], lines: list[dict[str, str]]) -> list[str]:
        """Replace the file with these rows: written beside it, synced, then renamed over it."""
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(lines)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            data = buf.getvalue().encode("utf-8-sig" if self._has_bom() else "utf-8")  # the BOM stays as it was
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        return header

    def _has_bom(self) -> bool:
        """Whether the (existing) file starts with a byte-order mark: a rewrite keeps it, or keeps it out."""
        with open(self.path, "rb") as fh:
            return fh.read(3) == codecs.BOM_UTF8

    def read(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            return list(csv.DictReader(fh))
