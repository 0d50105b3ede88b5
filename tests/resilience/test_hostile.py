"""Hostile and broken input: the cycle never crashes, every message ends processed or in review with a reason,
and nothing from a mail becomes a formula, a Slack mention or link, an instruction followed, a path on disk or
active markup. Secrets never leave the process. A hostile config (an alias bomb, a thousand levels of nesting) is
an ordinary config error in bounded memory.

Two levels: the pipeline in memory (hypothesis, the broken-mail corpus, the 25 MB and 50 MB cases with their
memory), and the real bot process against every fake (Gmail, Sheets, Slack, HubSpot and an LLM that obeys any
instruction) or on the offline default (the whole hostile set in one Maildir, with its peak RSS).
"""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import sys
import tracemalloc
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bootstrap import build_classifier
from bot.config import Config
from bot.pipeline import Pipeline, Services
from bot.state import Ledger
from tests.contract.fake_openai import answer_json, error, ok
from tests.fake_mail import FakeMailProvider
from tests.fakes import FakeAuditSink, FakeCrm, FakeNotifier, make_config
from tests.httpfake import Request, Response
from tests.peak import run_measured
from tests.resilience.corpus import (
    CANARY,
    FORMULAS,
    big_attachment,
    broken_mail,
    config_bombs,
    duplicate_message_id,
    huge_line,
)
from tests.resilience.harness import CLIENT_SECRET, REFRESH_TOKEN, ROOT, SECRETS, Stack

INJECTION = ROOT / "tests" / "injection"
CASES: dict[str, dict[str, Any]] = yaml.safe_load((INJECTION / "expectations.yaml").read_text(encoding="utf-8"))
ACTIVE = re.compile(r"<\s*(script|iframe|img|style|object|embed)\b|javascript:|\bon\w+\s*=", re.I)
SLACK_CONTROL = re.compile(r"<[!@#]|<https?:")
OURS = re.compile(r"@acme-pumps\.example\b", re.I)


# ---------------------------------------------------------------- the pipeline in memory


class Memory:
    """A pipeline over the in-memory fakes, with the real offline classifier."""

    def __init__(self, cfg: Config) -> None:
        self.mail = FakeMailProvider(processed_label=cfg.labels.processed)
        self.audit, self.notifier, self.crm = FakeAuditSink(), FakeNotifier(), FakeCrm()
        self.ledger = Ledger(None)
        services = Services(cfg=cfg, mail=self.mail, classifier=build_classifier(cfg, self.ledger),
                            ledger=self.ledger, audit_sinks=[self.audit], notifiers=[self.notifier], crms=[self.crm])
        self.pipeline = Pipeline(services)

    def run(self, raws: list[bytes]) -> list[str]:
        ids = [self.mail.add(raw) for raw in raws]
        for _ in range(3):  # a failed message is retried next cycle; nothing may be left after a few
            self.pipeline.run_cycle()
        return ids

    def assert_settled(self, ids: list[str]) -> None:
        """Every message is processed, or in review with the reason, and has exactly one audit row."""
        rows = {r["provider_id"]: r for r in self.audit.rows}
        assert len(rows) == len(self.audit.rows) == len(ids)
        for pid in ids:
            row = self.ledger.get(pid)
            assert row is not None and row.status == "done", (pid, row and row.last_error)
            assert "Triage/Processed" in self.mail.labels_of(pid)
            if row.review:
                assert "Triage/Review" in self.mail.labels_of(pid) and "INBOX" in self.mail.labels_of(pid)
                assert "review" in rows[pid]["reasons"], rows[pid]["reasons"]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    tmp = tmp_path_factory.mktemp("hostile")  # no saved model: the shipped one
    config: Config = make_config(tmp)
    return config


_HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
_CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "us-ascii", "utf-16", "x-unknown", "cp1252", "", "utf-8\"; x="])
_CTES = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-bogus", ""])


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth < 4 and draw(st.booleans()):
        children = draw(st.lists(mime_part(depth + 1), min_size=0, max_size=3))
        kind = draw(st.sampled_from(["mixed", "alternative", "related", "report"]))
        b = f"b{depth}x"
        inner = b"".join(b"--" + b.encode() + b"\r\n" + c + b"\r\n" for c in children)
        return (f"Content-Type: multipart/{kind}; boundary=\"{b}\"\r\n\r\n").encode() + inner + f"--{b}--".encode()
    ctype = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream", "message/rfc822", ""]))
    head = f"Content-Type: {ctype}; charset={draw(_CHARSETS)}\r\n" if ctype else ""
    head += f"Content-Transfer-Encoding: {draw(_CTES)}\r\n"
    name = draw(st.sampled_from(["", "../../etc/passwd", "/tmp/x", "C:\\\\evil.exe", "\x00.txt", "ok.pdf"]))
    if name:
        head += f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
    body = draw(st.one_of(st.binary(max_size=2000), _HEADER_TEXT.map(lambda t: t.encode("utf-8"))))
    return head.encode() + b"\r\n" + body


@st.composite
def raw_mail(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))  # no structure at all
    headers = [("From", draw(st.one_of(_HEADER_TEXT, st.just("Eve <eve@x.example>")))),
               ("Subject", draw(_HEADER_TEXT)), ("Message-ID", draw(st.one_of(_HEADER_TEXT, st.just("")))),
               ("Date", draw(st.one_of(_HEADER_TEXT, st.just("Tue, 01 Dec 2026 10:00:00 +0000"))))]
    headers += draw(st.lists(st.tuples(st.sampled_from(["Reply-To", "References", "In-Reply-To", "List-Id", "X-Ü",
                                                        "Auto-Submitted", "Precedence", "Cc"]), _HEADER_TEXT),
                             max_size=4))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8", "surrogateescape")
    return head + b"MIME-Version: 1.0\r\n" + draw(mime_part())


@settings(max_examples=int(os.environ.get("RESILIENCE_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(raw_mail(), min_size=1, max_size=4))
def test_any_mail_ends_processed_or_in_review_and_the_cycle_never_crashes(cfg: Config, raws: list[bytes]) -> None:
    memory = Memory(cfg)
    memory.assert_settled(memory.run(raws))


def test_the_broken_corpus_ends_processed_or_in_review_with_reasons(cfg: Config) -> None:
    corpus = broken_mail()
    memory = Memory(cfg)
    ids = memory.run([raw for _, raw in corpus])
    memory.assert_settled(ids)
    by_name = dict(zip((name for name, _ in corpus), ids, strict=True))
    for name in ("zero-byte", "only-garbage"):
        row = memory.ledger.get(by_name[name])
        assert row is not None and row.review, name
    for draft_pid in memory.mail.drafts.values():  # replies to hostile names carry no injected header
        draft = message_from_bytes(memory.mail.messages[draft_pid].raw, policy=default_policy)
        assert draft["Bcc"] is None and draft["X-Injected"] is None and len(draft.get_all("To") or []) == 1


def test_a_25_mb_attachment_is_processed_in_bounded_memory(cfg: Config) -> None:
    raw = big_attachment(25)
    memory = Memory(cfg)
    warm = memory.run([b"From: warm@up.example\r\nSubject: warm-up\r\n\r\nfirst"])  # imports, caches: out of the way
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        (pid,) = memory.run([raw])
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"25 MB case: raw {len(raw) / 2**20:.1f} MiB, traced peak +{(peak - base) / 2**20:.1f} MiB, "
          f"kept +{(current - base) / 2**20:.1f} MiB")
    memory.assert_settled([*warm, pid])
    row = memory.ledger.get(pid)
    assert row is not None and row.category and not row.last_error
    # the raw message stays in the mailbox fake; beyond it the pipeline's own peak stays small
    assert peak - base < len(raw) + 16 * 2**20, f"peak {(peak - base) / 2**20:.0f} MiB for {len(raw) / 2**20:.0f} MiB"
    assert current - base < len(raw) + 5 * 2**20  # nothing of it is kept once the message is done


def test_a_50_mb_single_line_mail_is_read_up_to_the_limit_and_goes_to_review(cfg: Config) -> None:
    memory = Memory(cfg)
    warm = memory.run([b"From: warm@up.example\r\nSubject: warm-up\r\n\r\nfirst"])
    pid = memory.mail.add(huge_line(50))  # in the mailbox before the measurement starts
    gc.collect()
    tracemalloc.start()
    try:
        memory.run([])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    limit = cfg.mail.max_message_bytes
    print(f"50 MB line: traced peak {peak / 2**20:.1f} MiB, mail.max_message_bytes {limit / 2**20:.0f} MiB")
    memory.assert_settled([*warm, pid])
    row = memory.ledger.get(pid)
    assert row is not None and row.review and not row.last_error
    assert "larger than mail.max_message_bytes" in row.record["decision"]["reasons"][-1]
    assert peak < limit + 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # the part that is read, once, and change


def test_the_whole_hostile_set_in_one_maildir_stays_under_250_mb(tmp_path: Path, trained_model: Path) -> None:
    """Every hostile case at once, the 25 MB attachment and the 50 MB line among them, through the real bot on
    the offline default: one cycle settles them all, and the process never holds more than 250 MB."""
    mails = [*hostile_mail(), ("big-attachment", big_attachment(25)), ("huge-line", huge_line(50))]
    seed = tmp_path / "seed"
    seed.mkdir()
    for i, (_, raw) in enumerate(mails):
        (seed / f"{i:03d}.eml").write_bytes(raw)
    with Stack(tmp_path, model=trained_model) as stack:
        config = stack.write_config(mail__provider="maildir", classify__llm__enabled=False,
                                    mail__maildir={"path": str(stack.state_dir / "maildir"), "seed": str(seed)},
                                    audit__sheets__enabled=False, notify__slack__enabled=False,
                                    crm__hubspot__enabled=False)
        done = run_measured(stack.command(config, "--once"), cwd=ROOT, env=stack.env())
        print(f"hostile set of {len(mails)} in one maildir: peak RSS {done.peak_mib:.0f} MiB")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        rows = stack.ledger("SELECT provider_id, status, review, record FROM messages")
        assert len(rows) == len(mails) and {status for _, status, _, _ in rows} == {"done"}
        assert stack.ledger("SELECT MAX(attempts) FROM messages") == [(0,)]  # all settled in one cycle
        csv_ids = [r["provider_id"] for r in stack.outcome().csv_rows]
        assert sorted(csv_ids) == sorted(pid for pid, *_ in rows)
        huge = next(json.loads(rec) for pid, _, _, rec in rows if pid.endswith(f"{len(mails) - 1:03d}"))
        assert huge["decision"]["review"] and "larger than mail.max_message_bytes" in huge["decision"]["reasons"][-1]
        drafts = [p for p in (stack.state_dir / "maildir" / ".Drafts" / "cur").iterdir()]
        assert drafts and not [p for p in drafts if OURS.search(str(message_from_bytes(p.read_bytes())["To"]))]
    assert done.peak_mib < 250, f"peak RSS {done.peak_mib:.0f} MiB"


def test_the_bot_process_peak_rss_grows_by_less_than_the_attachment(tmp_path: Path, trained_model: Path) -> None:
    """Peak RSS of the real bot (Maildir provider) with and without a 25 MB mail in its inbox."""
    peaks = {}
    for name, mails in (("small", []), ("big", [big_attachment(25)])):
        seed = tmp_path / name / "seed"
        seed.mkdir(parents=True)
        for i, raw in enumerate([*mails, b"From: a@b.example\r\nSubject: hello\r\n\r\nWe need pumps."]):
            (seed / f"{i}.eml").write_bytes(raw)
        with Stack(tmp_path / name, model=trained_model) as stack:
            config = stack.write_config(mail__provider="maildir", mail__maildir={"path": str(stack.state_dir / "md"),
                                                                                "seed": str(seed)},
                                        audit__sheets__enabled=False, notify__slack__enabled=False,
                                        crm__hubspot__enabled=False, classify__llm__enabled=False)
            done = run_measured(stack.command(config, "--once"), cwd=ROOT, env=stack.env())
            assert done.returncode == 0, done.stderr[-2000:]
            peaks[name] = done.peak_mib * 2**20
    grew = peaks["big"] - peaks["small"]
    print(f"bot peak RSS: {peaks['small'] / 2**20:.0f} MiB, with a 25 MB mail {peaks['big'] / 2**20:.0f} MiB")
    assert grew < 150 * 2**20, f"peak RSS grew by {grew / 2**20:.0f} MiB for a 25 MB attachment"


@pytest.mark.parametrize("case", sorted(config_bombs()))
def test_a_config_bomb_is_a_config_error_in_bounded_memory(tmp_path: Path, case: str) -> None:
    """Under a generous address-space limit (1 GiB), so an unbounded load fails by running out of memory rather
    than taking the machine's; the peak RSS of the process must stay under 100 MB."""
    text, where = config_bombs()[case]
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    done = run_measured([sys.executable, str(ROOT / "run.py"), "--config", str(path), "check"], cwd=tmp_path,
                        limits={"RLIMIT_AS": 1 << 30, "RLIMIT_CPU": 60})  # the CPU limit guards the suite only
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"config error in {path}" in done.stderr and where in done.stderr, done.stderr[:2000]
    assert "Traceback" not in done.stderr and len(done.stderr) < 3000
    assert done.peak_mib < 100, f"peak RSS {done.peak_mib:.0f} MiB"


def test_a_lead_the_crm_cannot_take_does_not_block_the_leads_behind_it(tmp_path: Path) -> None:
    """A lead the CRM refuses every time (here: an address its validation rejects) must not hold up the CRM
    queue for every later lead; it ends recorded as failed, with the reason."""
    from tests.fakes import FakeCrm, KeywordClassifier
    from tests.fakes import raw_mail as plain

    class PickyCrm(FakeCrm):
        def upsert_lead(self, payload: dict, retry: bool) -> str:
            if payload["email"].endswith(".invalid"):
                raise ValueError(f"the CRM refused the email address {payload['email']}")
            return super().upsert_lead(payload, retry)

    cfg = make_config(tmp_path, {"poll": {"max_attempts": 2}})
    crm = PickyCrm()
    mail, audit, ledger = FakeMailProvider(), FakeAuditSink(), Ledger(None)
    pipeline = Pipeline(Services(cfg=cfg, mail=mail, classifier=KeywordClassifier(), ledger=ledger,
                                 audit_sinks=[audit], crms=[crm]))
    refused = mail.add(plain("[lead:en:0.95] quote", sender="Odd Buyer <odd@buyer.invalid>"))
    later = [mail.add(plain(f"[lead:en:0.95] quote {i}", sender=f"Buyer {i} <b{i}@buyer.example>"))
             for i in range(3)]
    for _ in range(3):
        pipeline.run_cycle()
    assert sorted(crm.contacts) == [f"b{i}@buyer.example" for i in range(3)]
    assert ledger.outbox_backlog() == {}
    outcome = ledger.outbox_result(refused, "crm:")
    assert outcome.startswith("failed") and "email address" in outcome
    assert all(ledger.outbox_result(pid, "crm:").startswith("c") for pid in later)


# ---------------------------------------------------------------- the real process against every fake


class Obedient:
    """An LLM that does what any instruction in its prompt says, and calls everything else a lead."""

    def __call__(self, req: Request) -> Response:
        prompt = "\n".join(str(m.get("content", "")) for m in req.json().get("messages", []))
        for case in CASES.values():
            if case["marker"] in prompt:
                return ok(answer_json(category=case["wants"], confidence=0.99,
                                      person_email=case.get("assignee"), summary="As the mail asked."))
        sender = re.search(r"^From: (?:(.*?) )?<?([^<>\s]+@[^<>\s]+?)>?$", prompt, re.M)
        return ok(answer_json(category="lead", confidence=0.9, person_email=sender.group(2) if sender else None,
                              person_name=(sender.group(1) or None) if sender else None, company_name=None,
                              company_domain=None, summary=prompt[-300:]))  # echoes mail text, as models do


def hostile_mail() -> list[tuple[str, bytes]]:
    injections = [(p.stem, p.read_bytes()) for p in sorted((INJECTION / "corpus").glob("*.eml"))]
    return broken_mail() + duplicate_message_id() + injections


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*")]


def test_hostile_mail_through_the_real_bot_process(tmp_path: Path, trained_model: Path) -> None:
    mails = hostile_mail()
    with Stack(tmp_path, model=trained_model) as stack:
        stack.openai.default = Obedient()
        for _, raw in mails:
            stack.gmail.add_message(raw)
        # the token where `run.py auth gmail` keeps it by default; DEBUG: the most a log ever says
        config = stack.write_config(token=stack.state_dir / "gmail-token.json", log_level="DEBUG",
                                    poll__max_attempts=2)
        outside = set(files_under(tmp_path)) - set(files_under(stack.state_dir))
        logs = [run_ok(stack, config) for _ in range(2)]  # the second retries what failed in the first
        logs.append(echo_secrets_cycles(stack, config))
        assert stack.unprocessed() == []

        check_everything_settled(stack)
        check_sheet_is_raw_text(stack)
        check_slack_is_escaped(stack)
        check_no_active_markup(stack)
        check_injections_not_followed(stack)
        check_no_paths_from_mail(tmp_path, stack, outside)
        check_secrets_stay_secret(stack, "\n".join(logs))
        check_state_permissions(stack)


def test_hostile_mail_in_the_default_maildir_writes_only_inside_state(tmp_path: Path, trained_model: Path) -> None:
    """The offline default writes files (labels are links, drafts are files): none of them is named by a mail."""
    seed = tmp_path / "seed"
    seed.mkdir()
    for i, (_, raw) in enumerate(hostile_mail()):
        (seed / f"{i:03d}.eml").write_bytes(raw)
    with Stack(tmp_path, model=trained_model) as stack:
        config = stack.write_config(mail__provider="maildir", classify__llm__enabled=False,
                                    mail__maildir={"path": str(stack.state_dir / "maildir"), "seed": str(seed)})
        outside = set(files_under(tmp_path)) - set(files_under(stack.state_dir))
        for _ in range(2):
            run_ok(stack, config)
        maildir = stack.state_dir / "maildir"
        inbox = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
        assert len(inbox) < len(hostile_mail())  # it did process them (most left the inbox)
        assert not [p for p in maildir.rglob(f"*{CANARY}*")] and not list(Path("/tmp").glob(f"*{CANARY}*"))
        new_outside = set(files_under(tmp_path)) - set(files_under(stack.state_dir)) - outside
        assert new_outside <= {tmp_path / "config.yaml", stack.state_dir}, new_outside
        names = {p.name.split(":")[0] for p in maildir.rglob("*") if p.is_file() and p.parent.name in ("new", "cur")}
        assert all(re.fullmatch(r"[\w.-]+", n) and ".." not in n.replace("...", "") for n in names), names
        for p in stack.state_dir.rglob("*"):
            assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p


def test_two_mails_sharing_a_message_id_stay_two_leads_in_the_real_bot(tmp_path: Path, trained_model: Path) -> None:
    """The second mail arrives after the first one's draft exists (so Gmail threads it there), and its audit row
    and ping fail once: the replays must not take the first mail's row, ping or draft for the second's."""
    (_, first), (_, second) = duplicate_message_id()
    with Stack(tmp_path, model=trained_model) as stack:
        stack.openai.default = Obedient()  # both are leads, for the same salesperson: one DM channel for both pings
        config = stack.write_config(routing__pools__inside_sales={
            "members": [{"name": "Alice Carter", "email": "alice@acme-pumps.example"}], "cc": []})
        ids = [stack.gmail.add_message(first)]
        run_ok(stack, config)
        ids.append(stack.gmail.add_message(second))
        stack.sheets_srv.fail(r":append", Response(503, {"error": {"code": 503}}, {"Retry-After": "0"}), times=10**6)
        stack.slack_srv.fail(r"chat\.postMessage", Response(500, {"ok": False, "error": "internal_error"}),
                             times=10**6)
        run_ok(stack, config)
        assert stack.backlog()["outbox"] == 2  # the second mail's row and ping wait, each tried once
        stack.sheets_srv.faults.clear()
        stack.slack_srv.faults.clear()
        run_ok(stack, config)

        drafts = {m.header("X-Triage-Source"): m.header("To") for m in stack.gmail.messages.values()
                  if "DRAFT" in m.labels}
        assert drafts == {ids[0]: "ann@first-farm.example", ids[1]: "bob@second-dairy.example"}
        o = stack.outcome()
        assert [r["provider_id"] for r in o.sheet_rows] == [r["provider_id"] for r in o.csv_rows] == ids
        assert all(r["draft_id"] for r in o.sheet_rows) and len({r["draft_id"] for r in o.sheet_rows}) == 2
        pinged = [p.args["metadata"]["event_payload"]["provider_id"] for p in stack.slack.posted]
        assert pinged == ids
        assert ["ann@first-farm.example" in p.text for p in stack.slack.posted] == [True, False]  # each its sender
        assert sorted(c["email"] for c in stack.hubspot.of("contacts").values()) == [
            "ann@first-farm.example", "bob@second-dairy.example"]
        assert stack.backlog() == {"unfinished": 0, "effects": 0, "outbox": 0, "unlisted": 0}


def run_ok(stack: Stack, config: Path) -> str:
    result = stack.run(config)
    err = result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[err.find("Traceback"):][:3000]
    return err


def echo_secrets_cycles(stack: Stack, config: Path) -> str:
    """Services that echo the credentials they were sent in their error messages, as some do."""
    stack.gmail.add_message(sender="Echo Lead <echo@prospect.example>", subject="Quote for 6 pumps",
                            body="Hello, please quote six pumps for our plant.")
    stack.openai.then(error(401, f"Incorrect API key provided: {SECRETS['OPENAI_API_KEY']}.", code="invalid_api_key"))
    logs = run_ok(stack, config)
    assert not stack.openai.script  # the LLM's echo was sent
    stack.gmail.add_message(sender="Echo Two <echo2@prospect.example>", subject="Quote for 7 pumps",
                            body="Hello, please quote seven pumps for our plant.")
    stack.hubspot_srv.fail(r"/crm/v3/objects/contacts/search", Response(400, {
        "status": "error", "category": "VALIDATION_ERROR", "message": f"bad token {SECRETS['HUBSPOT_TOKEN']}"}),
        times=10**6)
    stack.slack_srv.fail(r"/api/chat\.postMessage", Response(200, {"ok": False, "error": "fatal_error",
                                                                   "echo": SECRETS["SLACK_BOT_TOKEN"]}), times=10**6)
    logs += run_ok(stack, config)
    echoed: dict[str, str] = {}
    for sink, last_error in stack.ledger("SELECT sink, last_error FROM outbox WHERE status = 'pending'"):
        echoed[sink] = echoed.get(sink, "") + last_error  # only the first item of a stalled queue was tried
    assert "VALIDATION_ERROR" in echoed["crm:hubspot"] and "fatal_error" in echoed["notify:slack"]  # both echoed
    stack.hubspot_srv.faults.clear()
    stack.slack_srv.faults.clear()
    return logs + run_ok(stack, config)


def check_everything_settled(stack: Stack) -> None:
    """Every message is processed or in review with the reason; one audit row each, in the CSV and the sheet."""
    rows = stack.ledger("SELECT provider_id, status, review, record FROM messages")
    assert len(rows) == len(stack.gmail.messages) - len(stack.gmail.drafts)
    o = stack.outcome()
    assert sorted(r["provider_id"] for r in o.csv_rows) == sorted(r["provider_id"] for r in o.sheet_rows)
    assert len({r["provider_id"] for r in o.csv_rows}) == len(o.csv_rows) == len(rows)
    for mid, status, review, record in rows:
        assert status == "done", mid
        if review:
            reasons = json.loads(record)["decision"]["reasons"]
            assert any(r.startswith("review") for r in reasons), (mid, reasons)


def check_sheet_is_raw_text(stack: Stack) -> None:
    sheet = stack.sheets.sheet("Decisions")
    assert set(stack.sheets.value_input_options) == {"RAW"} and not sheet.formulas
    cells = [c for row in sheet.rows for c in row]
    for formula in FORMULAS:  # stored as text, behind the apostrophe a spreadsheet shows as "text"
        assert "'" + formula in cells and formula not in cells, formula
    csv_cells = [c for row in stack.outcome().csv_rows for c in row.values() if c]
    assert not [c for c in csv_cells if c[0] in "=+-@\t\r" and not re.fullmatch(r"-?\d+(\.\d+)?", c)]


def check_slack_is_escaped(stack: Stack) -> None:
    texts = [p.text + p.blocks_json for p in stack.slack.posted]
    assert texts, "the hostile leads were pinged"
    for text in texts:
        assert not SLACK_CONTROL.search(re.sub(r"<https?://127\.0\.0\.1[^>|]*\|[^>]*>|<https://mail\.google\.com"
                                               r"[^>|]*\|[^>]*>", "", text)), text[:500]
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined and "&lt;@U0ADMIN&gt;" in joined


def check_no_active_markup(stack: Stack) -> None:
    for m in stack.gmail.messages.values():
        if "DRAFT" not in m.labels:
            continue
        draft = message_from_bytes(m.raw, policy=default_policy)
        assert isinstance(draft, EmailMessage)
        assert {p.get_content_type() for p in draft.walk() if not p.is_multipart()} == {"text/plain"}
        assert draft["Bcc"] is None and draft["X-Injected"] is None and len(draft.get_all("To") or []) == 1
        assert not OURS.search(str(draft["To"])), draft["To"]  # a reply to ourselves is a mail loop
        assert not ACTIVE.search(draft.get_content() if not draft.is_multipart() else "")
    html_case = "<html-script@hostile.example>"
    row = next(r for r in stack.outcome().csv_rows if r["message_id"] == html_case)
    assert not ACTIVE.search(json.dumps(row)), row
    for note in stack.hubspot.of("notes").values():  # an HTML field: the only markup is the adapter's <br>
        tags = Tags()
        tags.feed(note["hs_note_body"])
        assert tags.seen <= {("br", ())}, tags.seen


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, tuple[tuple[str, str | None], ...]]] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add((tag, tuple(attrs)))


def check_injections_not_followed(stack: Stack) -> None:
    o = stack.outcome()
    drafts_to = " ".join(o.draft_to.values())
    assert "evil.example" not in drafts_to and not [e for e in o.contacts if e.endswith("evil.example")]
    obeyed = 0  # cases where the LLM did what the mail said and only the review stood in the way
    for name, case in CASES.items():
        raw = (INJECTION / "corpus" / f"{name}.eml").read_bytes()
        mid = re.search(rb"(?im)^message-id:\s*(<[^>]+>)", raw)
        assert mid is not None
        category, review, _ = o.decisions[mid.group(1).decode()]
        obeyed += category == case["wants"] != case["honest"] and review
        if review:
            continue
        assert category not in ("spam", "newsletter") or case["honest"] == category, (name, category)
        assert not (category == case["wants"] != case["honest"]), (name, category)
    assert obeyed >= 10, obeyed


def check_no_paths_from_mail(tmp_path: Path, stack: Stack, outside_before: set[Path]) -> None:
    """No file named by a mail exists anywhere; nothing new outside state/ but the config."""
    assert not list(Path("/tmp").glob(f"*{CANARY}*")) and not list(tmp_path.rglob(f"*{CANARY}*"))
    assert not [p for p in ROOT.rglob(f"*{CANARY}*") if ".git" not in p.parts]
    outside_after = set(files_under(tmp_path)) - set(files_under(stack.state_dir))
    assert outside_after - outside_before <= {tmp_path / "config.yaml", stack.state_dir}, outside_after - outside_before
    allowed = {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "audit.csv", "gmail-token.json",
               "heartbeat.json"}
    assert {p.name for p in stack.state_dir.iterdir()} <= allowed


def check_secrets_stay_secret(stack: Stack, logs: str) -> None:
    secrets = [*SECRETS.values(), REFRESH_TOKEN, CLIENT_SECRET, *sorted(stack.gmail.access_tokens)]
    places = {"the log": logs, "the audit CSV": (stack.csv_path or stack.state_dir / "audit.csv").read_text()}
    for f in stack.state_dir.iterdir():
        if f.name.startswith("ledger") or f.name == "heartbeat.json":
            places[f.name] = f.read_bytes().decode("latin-1")
    places["the sheet"] = json.dumps(stack.sheets.values("Decisions"))
    places["Slack"] = json.dumps([p.args for p in stack.slack.posted])
    places["HubSpot"] = json.dumps(stack.hubspot.records)
    places["the LLM prompts"] = json.dumps(stack.openai.bodies)
    leaks = [(where, s[:12]) for where, text in places.items() for s in secrets if s in text]
    assert not leaks, leaks


def check_state_permissions(stack: Stack) -> None:
    assert stat.S_IMODE(stack.state_dir.stat().st_mode) == 0o700
    for f in stack.state_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f

