"""The local audit CSV: cells taken from mail never start like a spreadsheet formula, and read back as they were."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bot.adapters.csv_audit import CsvAuditSink
from bot.escape import sheet_cell_text

HOSTILE = {"subject": "=HYPERLINK(\"http://evil.example\",\"open\")", "from_name": "+49 30 1234",
           "reasons": "-1+cmd|' /C calc'!A0", "summary": "@SUM(A1:A9)", "company": "\tAcme & Co"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def row(provider_id: str, **fields: str) -> dict[str, str]:
    return {"provider_id": provider_id, "message_id": f"<{provider_id}@prospect.example>", "category": "lead",
            **fields}


def test_cells_from_mail_are_written_as_text_not_formulas_and_read_back_unchanged(tmp_path: Path) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    sink.write([row("m1", **HOSTILE)], retry=False)
    [line] = sink.read()
    for field, text in HOSTILE.items():
        assert line[field] == "'" + text
        assert sheet_cell_text(line[field]) == text
    assert not any(cell.startswith(FORMULA_START) for cell in line.values())


def test_a_field_filled_in_later_is_escaped_too(tmp_path: Path) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    sink.write([row("m1"), row("m2")], retry=False)
    assert sink.update([{"provider_id": "m2", "notification": "=IMPORTXML(\"http://evil.example\")"}]) == set()
    first, second = sink.read()
    assert first["notification"] == ""
    assert second["notification"] == "'=IMPORTXML(\"http://evil.example\")"


def test_rows_read_back_exactly_as_written_whatever_the_text(tmp_path: Path) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    written = row("m1", processed_at="2026-11-23T09:00:00+00:00", subject="Angebot für Pumpen – 3 Stück",
                  summary="line one\r\nline two\rline three\nend")
    sink.write([written], retry=False)
    assert (tmp_path / "audit.csv").read_bytes().startswith(b"\xef\xbb\xbfprocessed_at,")  # the BOM Excel needs
    [line] = sink.read()
    assert {k: line[k] for k in written} == written


def test_appends_and_updates_keep_every_column_and_the_byte_order_mark(tmp_path: Path) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    sink.write([row("m1", processed_at="2026-11-23T09:00:00+00:00")], retry=False)
    sink.write([row("m2", processed_at="2026-11-23T09:05:00+00:00")], retry=False)
    assert [r["processed_at"] for r in sink.read()] == ["2026-11-23T09:00:00+00:00", "2026-11-23T09:05:00+00:00"]
    sink.update([{"provider_id": "m1", "notification": "sent to bob@acme-pumps.example"}])
    raw = (tmp_path / "audit.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfprocessed_at,") and raw.count(b"\xef\xbb\xbf") == 1
    header = raw.decode("utf-8-sig").splitlines()[0].split(",")
    assert header.count("processed_at") == 1
    first, second = sink.read()
    assert (first["processed_at"], first["notification"]) == ("2026-11-23T09:00:00+00:00",
                                                              "sent to bob@acme-pumps.example")
    assert second["processed_at"] == "2026-11-23T09:05:00+00:00"


def test_an_update_of_an_older_file_adds_the_missing_columns_and_one_that_matches_nothing_changes_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    path.write_text("processed_at,provider_id,subject\r\n2026-11-01T08:00:00+00:00,m0,Old\r\n", encoding="utf-8")
    sink = CsvAuditSink(path)
    before = path.read_bytes()
    assert sink.update([{"provider_id": "m9", "notification": "sent"}]) == {"m9"}
    assert path.read_bytes() == before
    assert sink.update([{"provider_id": "m0", "notification": "sent"}]) == set()
    header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["processed_at", "provider_id", "subject"] and "notification" in header
    [line] = sink.read()
    assert (line["provider_id"], line["subject"], line["notification"]) == ("m0", "Old", "sent")


def test_fields_a_row_lacks_are_empty_and_an_empty_file_gets_the_header(tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    path.touch()  # created by hand, or left empty by a first write that failed
    sink = CsvAuditSink(path)
    sink.write([row("m1")], retry=False)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfprocessed_at,")
    [line] = sink.read()
    assert line["provider_id"] == "m1" and line["assignee"] == "" and line["confidence"] == ""


def test_an_update_before_any_row_was_written_reports_every_row_missing(tmp_path: Path) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    assert sink.update([{"provider_id": "m1", "notification": "sent"}]) == {"m1"}
    assert not (tmp_path / "audit.csv").exists()


def test_a_short_write_on_a_full_disk_leaves_whole_rows_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = CsvAuditSink(tmp_path / "audit.csv")
    sink.write([row("m1")], retry=False)
    before = (tmp_path / "audit.csv").read_bytes()
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError) as err:
        sink.write([row("m2"), row("m3")], retry=False)
    assert err.value.errno == errno.ENOSPC and err.value.strerror == os.strerror(errno.ENOSPC)
    monkeypatch.undo()
    assert (tmp_path / "audit.csv").read_bytes() == before
    assert [r["provider_id"] for r in sink.read()] == ["m1"]


def test_the_file_is_private_and_appends_append(tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    sink = CsvAuditSink(path)
    sink.write([row("m1")], retry=False)
    assert path.stat().st_mode & 0o777 == 0o600  # mail content: readable by the bot's user only
    inode = path.stat().st_ino
    sink.write([row("m2")], retry=False)
    assert path.stat().st_ino == inode  # appended to, not rewritten
    sink.write([row("m2")], retry=False)  # only a retry looks for rows already there (a read of the whole file)
    assert [r["provider_id"] for r in sink.read()] == ["m1", "m2", "m2"]


def test_an_update_keeps_line_breaks_in_fields_and_cells_typed_past_the_last_column(tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    sink = CsvAuditSink(path)
    sink.write([row("m1", summary="first line\r\nsecond line")], retry=False)
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(",".join(["x"] * 4) + ",m9," + ",".join([""] * 40) + ",a note typed past the last column\r\n")
    assert sink.update([{"provider_id": "m1", "notification": "sent"}]) == set()
    first, typed = sink.read()
    assert (first["summary"], first["notification"]) == ("first line\r\nsecond line", "sent")
    assert typed["provider_id"] == "m9"


def test_an_update_on_a_full_disk_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.csv"
    sink = CsvAuditSink(path)
    sink.write([row("m1")], retry=False)
    before = path.read_bytes()
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError) as err:
        sink.update([{"provider_id": "m1", "notification": "sent"}])
    assert err.value.errno == errno.ENOSPC and err.value.strerror == os.strerror(errno.ENOSPC)
    monkeypatch.undo()
    assert path.read_bytes() == before
