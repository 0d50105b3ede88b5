"""Mail larger than mail.max_message_bytes on Gmail, with the real google-api-python-client against the fake.

Its size is known before anything of it is downloaded: a search names the small mail, whose lookup is its download
(5 units, as before); any other message is looked up with format=metadata, and its sizeEstimate decides. Of one over
the limit only the headers are read, and the pipeline sends it to review with the reason, as it does with the
Maildir provider, which reads no more of a message than the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.gmail import BATCH_BYTES, GmailUnavailable, header_block
from bot.bootstrap import build_mail, open_ledger
from bot.mime import parse_email
from bot.models import Classification, Email, HeadersOnly, MessageRef, PrefilterResult
from bot.pipeline import Pipeline, Services
from bot.ports import MailError
from bot.prefilter import prefilter
from tests.contract.fake_gmail import FakeGmail, gerror
from tests.contract.test_gmail import Sleeps, make_provider
from tests.contract.test_gmail_pipeline import GmailBot
from tests.fakes import FakeAuditSink, FakeCrm, FakeNotifier, KeywordClassifier, make_config, raw_mail

LIMIT = 64 * 1024  # the smallest mail.max_message_bytes the config accepts
OVERSIZE_LEAD = "Our full requirements list [lead:en:0.95]"


@pytest.fixture
def gm() -> Iterator[FakeGmail]:
    with FakeGmail() as fake:
        yield fake
        assert fake.sent() == []


def big_mail(subject: str = OVERSIZE_LEAD, size: int = 3 * LIMIT, extra: str = "",
             sender: str = "Long Liner <long@prospect.example>") -> bytes:
    """A mail of about `size` bytes whose body is one line (nothing a parser could skip cheaply)."""
    return raw_mail(subject, sender=sender, body="pump " * (size // 5), extra=extra)


def units_by_message(gm: FakeGmail) -> Counter[str]:
    spent: Counter[str] = Counter()
    for _, method, target, units in gm.call_log:
        if method.startswith("messages.") and target:
            spent[target] += units
    return spent


# ---------------------------------------------------------------- the provider


def test_a_message_over_the_limit_is_never_downloaded_and_comes_as_its_headers(gm: FakeGmail, tmp_path: Path) -> None:
    small = gm.add_message(raw_mail("Pumps please [lead:en:0.9]"))
    big = gm.add_message(big_mail())
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT)

    got = {ref.provider_id: raw for ref, raw in provider.fetch(provider.list_new(100))}

    assert got[small] == gm.messages[small].raw
    head = got[big]
    assert isinstance(head, HeadersOnly) and head.size == len(gm.messages[big].raw) > LIMIT
    assert len(head) < 2_000 and head.endswith(b"\r\n\r\n")
    # the small one's lookup was its download; the large one was looked up by its headers, never downloaded
    assert sorted(gm.reads) == sorted([(small, "raw"), (big, "metadata")])
    assert units_by_message(gm) == {small: 5, big: 5}
    (search,) = [r for r in gm.server.requests(r"/messages$") if "smaller:" in str(r.arg("q"))]
    assert str(search.arg("q")).endswith(f" smaller:{LIMIT}")

    email, whole = parse_email(head, big, max_bytes=LIMIT), parse_email(gm.messages[big].raw, big, max_bytes=LIMIT)
    assert email.headers_only and email.raw_size == head.size and email.body == ""
    for field in ("from_addr", "from_name", "subject", "message_id", "date", "to"):
        assert getattr(email, field) == getattr(whole, field), field
    assert email.defects[0] == f"{head.size:,} bytes: only its headers were read"


def test_ordinary_mail_costs_one_lookup_that_is_its_download_and_the_search_runs_once_for_a_backlog(
        gm: FakeGmail, tmp_path: Path) -> None:
    mids = [gm.add_message(raw_mail(f"Question {i}")) for i in range(5)]
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT)

    got: dict[str, Any] = {}
    for _ in range(3):  # two at a time: the listing leaves the rest for the next cycles
        got |= {ref.provider_id: raw for ref, raw in provider.fetch(provider.list_new(2))}
        provider.checkpoint()

    assert got == {m: gm.messages[m].raw for m in mids}
    assert sorted(gm.reads) == sorted((m, "raw") for m in mids)
    assert units_by_message(gm) == dict.fromkeys(mids, 5)
    searches = [r for r in gm.server.requests(r"/messages$") if "smaller:" in str(r.arg("q"))]
    assert len(searches) == 1  # what it found is kept: a message's size never changes


def test_mail_the_search_does_not_find_is_looked_up_by_its_headers_first(gm: FakeGmail, tmp_path: Path) -> None:
    """Gmail's search may not have indexed new mail yet: a message it does not name is never taken to be small."""
    small, big = gm.add_message(raw_mail("Pumps please [lead:en:0.9]")), gm.add_message(big_mail())
    operator = gm._operator

    def not_indexed(op: str, value: str) -> Any:
        return (lambda m: False) if op == "smaller" else operator(op, value)

    gm._operator = not_indexed  # type: ignore[method-assign]
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT)

    got = {ref.provider_id: raw for ref, raw in provider.fetch(provider.list_new(100))}

    assert got[small] == gm.messages[small].raw and isinstance(got[big], HeadersOnly)
    assert gm.reads == [(small, "metadata"), (big, "metadata"), (small, "raw")]
    assert units_by_message(gm) == {small: 10, big: 5}

    gm.reset_counters()  # listed again (not processed here): the search is not asked again about the same mail
    assert [ref.provider_id for ref in provider.list_new(100)] == [small, big]
    assert gm.calls.count("messages.list") == 1  # the listing itself


def test_a_message_fetch_did_not_list_is_looked_up_before_it_is_downloaded(gm: FakeGmail, tmp_path: Path) -> None:
    small, big = gm.add_message(raw_mail("Question")), gm.add_message(big_mail())
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT)  # as the follow-up and `learn` fetch by id

    got = dict(provider.fetch([MessageRef(big, ""), MessageRef(small, "")]))

    assert isinstance(got[MessageRef(big, "")], HeadersOnly) and got[MessageRef(small, "")] == gm.messages[small].raw
    assert gm.reads == [(big, "metadata"), (small, "metadata"), (small, "raw")]


def test_a_missing_size_estimate_means_a_download_alone(gm: FakeGmail, tmp_path: Path) -> None:
    """Gmail always sends sizeEstimate; a message without one is read, in a request of its own (a batch response
    is parsed in several copies). No raw mail is kept from the lookups here, so each is looked up by its headers."""
    mids = [gm.add_message(raw_mail(f"Question {i}")) for i in range(5)]
    render = gm._render

    def without_size(msg: Any, fmt: str, wanted: list[str] | None = None) -> dict[str, Any]:
        answer = render(msg, fmt, wanted)
        return {k: v for k, v in answer.items() if not (k == "sizeEstimate" and msg.id == mids[2])}

    gm._render = without_size  # type: ignore[method-assign]
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT, prefetch_bytes=0)

    got = [raw for _, raw in provider.fetch(provider.list_new(100))]

    assert got == [gm.messages[m].raw for m in mids]
    plain = [r.path.rsplit("/", 1)[-1] for r in gm.server.requests(r"^/gmail/v1/users/me/messages/")]
    assert plain == [mids[2]]  # the two before it and the two after it are downloaded two to a batch request


def test_downloads_are_grouped_by_size_and_a_large_message_goes_alone(gm: FakeGmail, tmp_path: Path) -> None:
    small = gm.add_message(raw_mail("s"))
    a, b, c, d, e = (gm.add_message(big_mail(s, size)) for s, size in (
        ("a", BATCH_BYTES // 4), ("b", BATCH_BYTES // 4), ("c", BATCH_BYTES // 4), ("d", BATCH_BYTES * 3 // 8),
        ("e", BATCH_BYTES * 2)))
    provider = make_provider(gm, tmp_path)  # the default limit, 25 MB: every one of them is read
    refs = provider.list_new(100)
    assert gm.reads.count((small, "raw")) == 1  # the one small message: downloaded by its lookup
    before = len(gm.server.requests(r"/batch/"))

    got = [(ref.provider_id, raw) for ref, raw in provider.fetch(refs)]

    assert got == [(m, gm.messages[m].raw) for m in (small, a, b, c, d, e)]
    # a, b and c fit in one batch request; d would pass BATCH_BYTES with them, and e is larger than that alone
    assert len(gm.server.requests(r"/batch/")) - before == 1
    plain = [r.path.rsplit("/", 1)[-1] for r in gm.server.requests(r"^/gmail/v1/users/me/messages/")]
    assert plain == [d, e]
    assert sorted(gm.reads) == sorted([(small, "raw")] + [(m, f) for m in (a, b, c, d, e) for f in ("metadata", "raw")])


def test_a_large_message_downloaded_alone_fails_on_its_own_and_a_failing_gmail_leaves_the_rest(
        gm: FakeGmail, tmp_path: Path) -> None:
    first, refused, after = (gm.add_message(big_mail(s, BATCH_BYTES * 2)) for s in "abc")
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    refs = provider.list_new(100)
    gm.server.fail(rf"/messages/{refused}$", gerror(400, "failedPrecondition", "Mail refused"))

    got = dict((r.provider_id, raw) for r, raw in provider.fetch(refs))

    assert got[first] == gm.messages[first].raw and got[after] == gm.messages[after].raw
    assert isinstance(got[refused], MailError) and "Mail refused" in str(got[refused])

    refs = provider.list_new(100)  # looked up again: the fault below hits the download only
    gm.server.fail(rf"/messages/{refused}$", gerror(503, "backendError"), times=50)
    got = dict((r.provider_id, raw) for r, raw in provider.fetch(refs))

    assert got[first] == gm.messages[first].raw
    assert isinstance(got[refused], GmailUnavailable) and got[after] is got[refused]  # not tried: Gmail is failing
    assert (after, "raw") not in gm.reads[-3:] and sleeps  # retried with back-off before giving up


# ---------------------------------------------------------------- the headers read instead


@pytest.mark.parametrize(("case", "extra", "sender"), [
    ("list mail", "List-Unsubscribe: <https://news.example/u?id=7>\r\n", "Pump News <news@pumpnews.example>"),
    ("auto-reply", "Auto-Submitted: auto-replied\r\n", "Jane Prospect <jane@prospect.example>"),
    ("our own draft", "X-Triage-Source: <root@customer.example>\r\n", "Acme Sales <sales@acme-pumps.example>"),
    ("autoresponder", "X-Autoreply: yes\r\n", "Jane Prospect <jane@prospect.example>"),
])
def test_an_oversize_message_meets_the_same_header_rules_as_any_other(gm: FakeGmail, tmp_path: Path, case: str,
                                                                      extra: str, sender: str) -> None:
    cfg = make_config(tmp_path)
    mid = gm.add_message(big_mail(f"[{case}] hello", extra=extra, sender=sender))
    provider = make_provider(gm, tmp_path, max_message_bytes=LIMIT)
    ((_, head),) = provider.fetch(provider.list_new(100))
    assert isinstance(head, HeadersOnly)

    def rule(email: Email) -> PrefilterResult:
        return prefilter(email, cfg.prefilter, frozenset(cfg.routing.colleagues), cfg.company.mailbox)

    whole = rule(parse_email(gm.messages[mid].raw, mid, max_bytes=LIMIT))
    assert whole.rule is not None, case  # the case does meet a header rule
    assert rule(parse_email(head, mid, max_bytes=LIMIT)) == whole


def test_a_header_value_gmail_decoded_to_line_breaks_cannot_forge_a_header() -> None:
    """Gmail hands out header values decoded; an encoded word can decode to a line break."""
    answer = {"payload": {"headers": [
        {"name": "From", "value": "Eve <eve@hostile.example>"},
        {"name": "Subject", "value": "Hi\r\nX-Triage-Source: <x@acme-pumps.example>\n\nbody"},
        {"name": "Bad Name", "value": "dropped"}, "not a header"]}}

    block = header_block(answer)
    email = parse_email(HeadersOnly(block, 10**8))

    assert block.count(b"\r\n\r\n") == 1 and block.endswith(b"\r\n\r\n")
    assert "x-triage-source" not in email.headers and "bad name" not in email.headers
    assert email.subject == "Hi X-Triage-Source: <x@acme-pumps.example> body"
    assert email.from_addr == "eve@hostile.example"


# ---------------------------------------------------------------- through the pipeline


class Unsure(KeywordClassifier):
    """Has a review reason of its own for the large lead: the size must still be named, first."""

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        c = super().classify(email, hint)
        if email.subject != OVERSIZE_LEAD:
            return c
        return Classification(c.category, c.confidence, c.language, c.classifier, person_email=c.person_email,
                              review_reason="may be a lead; a person looks")


def pipeline_on_maildir(tmp_path: Path, raws: list[bytes], classifier: KeywordClassifier) -> dict[str, Any]:
    seed = tmp_path / "seed"
    seed.mkdir(parents=True)
    for i, raw in enumerate(raws):
        (seed / f"{i}.eml").write_bytes(raw)
    cfg = make_config(tmp_path, {"mail": {"provider": "maildir", "max_message_bytes": LIMIT,
                                          "maildir": {"seed": str(seed)}}})
    ledger = open_ledger(cfg)
    audit = FakeAuditSink()
    Pipeline(Services(cfg=cfg, mail=build_mail(cfg, ledger), classifier=classifier, ledger=ledger,
                      audit_sinks=[audit], notifiers=[FakeNotifier()], crms=[FakeCrm()])).run_cycle()
    return {row["subject"]: row for row in audit.rows}


@pytest.mark.parametrize("classifier", [KeywordClassifier, Unsure])
def test_an_oversize_lead_goes_to_review_with_the_reason_on_gmail_as_on_maildir(gm: FakeGmail, tmp_path: Path,
                                                                                classifier: type) -> None:
    raws = [big_mail(), raw_mail("Pumps please [lead:en:0.9]", sender="Ann Buyer <ann@buyer.example>")]
    bot = GmailBot(gm, tmp_path / "gmail", {"mail": {"max_message_bytes": LIMIT}})
    bot.classifier = classifier()
    bot.pipeline = Pipeline(bot.services())
    big, small = (gm.add_message(raw) for raw in raws)

    report = bot.cycle()

    assert report.processed == 2 and report.failed == 0
    assert (big, "raw") not in gm.reads
    (row,) = bot.rows(big)
    said = "review: message larger than mail.max_message_bytes (65,536 bytes)"
    assert row["review"] == "yes" and row["category"] == "lead" and row["subject"] == OVERSIZE_LEAD
    assert row["from"] == "long@prospect.example" and row["assignee"] == "" and row["draft_id"] == ""
    reason = row["reasons"].split(" | ")[-1]
    assert reason.startswith(f"{said}: only its headers were read")
    if classifier is Unsure:
        assert reason.endswith("; may be a lead; a person looks")
    assert bot.labels(big) >= {bot.cfg.labels.processed, bot.cfg.labels.review} and bot.drafts_in(big) == []
    assert [p["message_id"] for p in bot.notifier.sent] == [bot.ledger.get(small).message_id]  # type: ignore[union-attr]

    on_maildir = pipeline_on_maildir(tmp_path / "maildir", raws, classifier())[OVERSIZE_LEAD]
    assert on_maildir["review"] == "yes" and on_maildir["category"] == "lead"
    assert on_maildir["reasons"].split(" | ")[-1].startswith(f"{said}: only that much of it was read")
