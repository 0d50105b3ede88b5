"""Outages and slow services, with the real bot process: nothing is lost, the queues replay in order.

Each `--once` run is one poll cycle. Waits are kept short through the services themselves (Retry-After: 0 on
5xx answers) and through the config (LLM timeout), so "an hour" of Sheets outage is a series of cycles.
A full or read-only state disk is a real tmpfs (mounted by the test, which needs root and CAP_SYS_ADMIN).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.contract.fake_gmail import gerror
from tests.httpfake import Response
from tests.resilience.checks import assert_invariants, assert_same_outcome, drain
from tests.resilience.harness import EveryNth, Outcome, Stack, inbox40

MUTATING = {"messages.modify", "messages.batchModify", "messages.trash", "drafts.create", "labels.create"}
SHEETS_DOWN = Response(503, {"error": {"code": 503, "message": "The service is currently unavailable.",
                                       "status": "UNAVAILABLE"}}, {"Retry-After": "0"})
SLACK_LIMITED = Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "120"})


def cycle(stack: Stack, config: Path) -> str:
    result = stack.run(config)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result.stderr.decode()


def test_sheets_down_slack_rate_limited_and_a_flaky_gmail_end_where_a_clean_run_ends(
        tmp_path: Path, trained_model: Path, reference40: Outcome) -> None:
    mails = inbox40()
    with Stack(tmp_path / "faults", model=trained_model) as stack:
        flaky = EveryNth(stack.gmail.server, r"^/(gmail/v1/users/|batch/gmail/v1)", 3,
                         gerror(500, "backendError", retry_after=0))
        stack.gmail.fail_after("drafts.create", gerror(500, "backendError"))  # it landed; the answer got lost
        stack.gmail.fail_after("messages.modify", gerror(503, "backendError"))
        stack.hubspot.lost_create_responses = 2
        stack.sheets_srv.fail(r"^/v4/", SHEETS_DOWN, times=10**9)
        stack.slack_srv.fail(r"^/api/chat\.postMessage$", SLACK_LIMITED, times=10**9)
        config = stack.write_config(poll__max_messages_per_cycle=10)

        # The outage: mail keeps coming and keeps being processed; rows and pings wait in the outbox.
        for wave in (mails[:20], mails[20:]):
            stack.deliver(wave)
            for _ in range(2):
                before = len(stack.sheets_srv.log)
                cycle(stack, config)
                # tried every cycle (the audit rows and the correction column), each within its retry budget
                assert 0 < len(stack.sheets_srv.log) - before <= 10
        assert not stack.unprocessed() and len(stack.outcome().csv_rows) == len(mails)
        queued = stack.ledger("SELECT sink, COUNT(*) FROM outbox WHERE status='pending' GROUP BY sink")
        leads = len(stack.ledger("SELECT 1 FROM outbox WHERE sink='notify:slack'"))
        assert dict(queued) == {"audit:sheets": len(mails), "notify:slack": leads} and leads > 5
        assert not stack.sheets.sheets and not stack.slack.posted

        # Slack is back first, then Sheets: each queue replays in order, once.
        stack.slack_srv.faults.clear()
        cycle(stack, config)
        assert len(stack.slack.posted) == leads and not stack.sheets.sheets
        stack.sheets_srv.faults.clear()
        cycle(stack, config)
        drain(stack, config)
        got = stack.outcome()
        assert_invariants(stack, got)
        assert [r["message_id"] for r in got.sheet_rows] == [r["message_id"] for r in got.csv_rows]
        assert flaky.failed >= 20 and flaky.failed * 3 <= flaky.seen + 2
        assert stack.hubspot.lost_create_responses == 0
    assert [m.message_id for m in stack.delivered] == [m.message_id for m in mails]
    assert_same_outcome(got, reference40)
    assert got.slack_order == reference40.slack_order


def test_a_timing_out_llm_defers_mail_and_the_run_ends_where_a_clean_run_ends(
        tmp_path: Path, trained_model: Path, reference40: Outcome) -> None:
    """While the LLM times out, the mail that needs it waits (one timeout per cycle, then the LLM is paused for
    the rest of it) and everything else is processed. Once the LLM is back, the waiting mail is decided exactly
    as in a run without faults. (An outage longer than poll.max_attempts cycles ends in review instead: see
    tests/unit/test_pipeline.py.)"""
    mails = inbox40()
    with Stack(tmp_path / "slow", model=trained_model) as stack:
        stack.openai.stall(3.0)
        config = stack.write_config(classify__llm__timeout_seconds=1, classify__llm__max_timeout_seconds=1,
                                    classify__llm__max_retries=0,
                                    poll__max_messages_per_cycle=20, poll__max_attempts=5)
        stack.deliver(mails)
        for _ in (1, 2):
            asked = stack.openai.calls
            cycle(stack, config)
            assert stack.openai.calls - asked == 1  # one timeout, then the LLM is paused: not 20 timeouts in a row
            waiting = [e for (e,) in stack.ledger("SELECT last_error FROM messages WHERE status='failed'")
                       if e.startswith("LlmUnavailable")]
            assert waiting  # deferred, not decided on a guess
            guesses = [r for (r,) in stack.ledger("SELECT json_extract(record, '$.classification.review_reason') "
                                                  "FROM messages") if r and r.startswith("LLM failed")]
            assert guesses == []
        stack.openai.stall(0.0)
        drain(stack, config)
        got = stack.outcome()
        assert_invariants(stack, got)
    assert_same_outcome(got, reference40, same_order=False)


# ---------------------------------------------------------------- the state disk


@contextmanager
def small_disk(mount: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` at `mount`, so "disk full" and "read-only" are the kernel's own answers."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """state/ on its own 8 MiB disk: room for the ledger's write-ahead log (up to ~4 MiB between checkpoints)."""
    with small_disk(tmp_path / "state", "8m") as mount:
        yield mount


def fill(mount: Path, leave: int) -> Path:
    """Fill the file system up to `leave` bytes free; returns the filler file."""
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free - leave
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free))
    assert shutil.disk_usage(mount).free <= leave + 4096
    return filler


def mutations(stack: Stack) -> list[str]:
    return [c for c in stack.gmail.calls if c in MUTATING]


def test_a_full_state_disk_stops_the_bot_before_it_touches_any_mail(tmp_path: Path, tmpfs: Path,
                                                                     trained_model: Path) -> None:
    with Stack(tmp_path, model=trained_model) as stack:
        assert stack.state_dir == tmpfs
        stack.deliver(inbox40())
        fill(tmpfs, 0)
        result = stack.run(stack.write_config())
        assert result.returncode == 3
        err = result.stderr.decode()
        assert "No space left on device" in err and "nothing was processed" in err
        assert "Traceback" not in err
        assert stack.gmail.calls == [] and len(stack.unprocessed()) == 40


def test_a_state_disk_filling_up_mid_cycle_stops_the_bot_with_everything_done_recorded(
        tmp_path: Path, tmpfs: Path, trained_model: Path, reference40: Outcome) -> None:
    mails = inbox40()
    with Stack(tmp_path, model=trained_model) as stack:
        config = stack.write_config(poll__max_messages_per_cycle=100)
        stack.deliver(mails[:10])
        cycle(stack, config)
        stack.deliver(mails[10:])
        filler = fill(tmpfs, 800 * 1024)  # room for the ledger to grow by a few messages, not by 30
        result = stack.run(config)
        err = result.stderr.decode()
        assert result.returncode == 3, err[-3000:]
        assert "cannot be written" in err or "not usable" in err
        # whatever reached Gmail was decided and recorded first
        recorded = {mid for (mid,) in stack.ledger("SELECT message_id FROM messages WHERE status != 'failed'")}
        o = stack.outcome()
        labelled = {mid for mid, names in o.labels.items() if "Triage/Processed" in names}
        assert 10 < len(labelled) < 40 or 10 < len(recorded) < 40, "the disk should fill part-way through"
        assert labelled <= recorded and set(o.drafts) <= recorded
        rows = [r["message_id"] for r in o.csv_rows]
        assert len(rows) == len(set(rows)) and set(rows) <= recorded

        filler.unlink()  # space again: the next start finishes the work, repeating nothing
        drain(stack, config)
        got = stack.outcome()
        assert_invariants(stack, got)
    assert_same_outcome(got, reference40)


def test_a_read_only_state_disk_stops_the_bot_and_the_next_start_continues(
        tmp_path: Path, tmpfs: Path, trained_model: Path, reference40: Outcome) -> None:
    mails = inbox40()
    with Stack(tmp_path, model=trained_model) as stack:
        config = stack.write_config()
        stack.deliver(mails[:20])
        cycle(stack, config)
        stack.deliver(mails[20:])
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
        before = len(mutations(stack))
        result = stack.run(config)
        err = result.stderr.decode()
        assert result.returncode == 3 and "Read-only file system" in err and "Traceback" not in err
        assert len(mutations(stack)) == before and len(stack.unprocessed()) == 20
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
        drain(stack, config)
        got = stack.outcome()
        assert_invariants(stack, got)
    assert_same_outcome(got, reference40)


def test_a_full_disk_under_the_audit_csv_keeps_its_rows_queued_and_writes_each_whole_once(
        tmp_path: Path, trained_model: Path) -> None:
    """The CSV may live on another disk than the ledger; when that one fills up mid-append, no cut row stays
    behind to merge with the next append."""
    mails = inbox40()
    with small_disk(tmp_path / "audit", "64k") as disk, Stack(tmp_path, model=trained_model) as stack:
        config = stack.write_config(audit__csv_path=str(disk / "audit.csv"))
        stack.deliver(mails[:5])
        cycle(stack, config)
        stack.deliver(mails[5:])
        filler = fill(disk, 8 * 1024)  # room for a few rows of the next 35, not for all of them
        err = cycle(stack, config)
        assert "audit:csv unavailable" in err and "No space left on device" in err
        assert stack.backlog()["outbox"] == len(mails) - 5
        rows = stack.outcome().csv_rows
        assert len(rows) == 5 and all(None not in r and r["correction"] is not None for r in rows)

        filler.unlink()
        drain(stack, config)
        got = stack.outcome()
        assert all(None not in r and r["message_id"].startswith("<") for r in got.csv_rows)
        assert_invariants(stack, got)


def test_a_read_only_mailbox_uses_no_attempts_and_every_lead_gets_its_draft_when_it_is_back(
        tmp_path: Path, trained_model: Path) -> None:
    """The Maildir on a disk of its own turns read-only for more cycles than poll.max_attempts while the ledger
    stays writable: no message is given up to review, no turn is taken twice, and once the disk is writable again
    every lead gets its draft and its ping names it."""
    leads = [m for m in inbox40() if m.category == "lead" and not m.name.startswith(("19", "20", "21"))][:6]
    with small_disk(tmp_path / "mailbox", "64m") as disk, Stack(tmp_path, model=trained_model) as stack:
        maildir = disk / "maildir"
        config = stack.write_config(mail__provider="maildir", mail__maildir={"path": str(maildir), "seed": ""},
                                    poll__max_attempts=3, audit__sheets__enabled=False,
                                    notify__slack__enabled=False, crm__hubspot__enabled=False)
        stack.oracle.learn(leads)
        cycle(stack, config)  # an empty inbox: the folders exist
        for i, mail in enumerate(leads):
            (maildir / "new" / f"lead.{i}").write_bytes(mail.raw)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            for _ in range(5):
                err = cycle(stack, config)
                assert "waits for the next cycle, no attempt used" in err and "labelling it for review" not in err
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert stack.ledger("SELECT MAX(attempts) FROM messages")[0][0] == 0
        drain(stack, config)
        rows = stack.ledger("SELECT provider_id, category, review, attempts FROM messages")
        assert sorted(r[0] for r in rows) == [f"lead.{i}" for i in range(len(leads))]
        assert all(category == "lead" and not review and attempts == 0 for _, category, review, attempts in rows)
        drafts = [message_from_bytes(p.read_bytes()) for p in (maildir / ".Drafts" / "cur").iterdir()]
        assert sorted(str(d["X-Triage-Source"]) for d in drafts) == [f"lead.{i}" for i in range(len(leads))]
        assigned = sum(n for (n,) in stack.ledger("SELECT assigned FROM rotation"))
        assert assigned == len(leads)  # one turn per lead, however often its draft failed
        csv_rows = stack.outcome().csv_rows
        assert len(csv_rows) == len(leads) and all(r["draft_id"] and not r["review"] for r in csv_rows)
