"""Every header the bot parses, fuzzed through the listing and the whole pipeline, on both mail providers.

Dates (years 1 to 9999 and beyond, any offset), addresses (encoded words, quotes, groups, several at once),
subjects in encoded words of any charset, Message-ID, In-Reply-To and References: whatever a mail carries, the
listing must list it, the cycle must not fail, the message must end processed or in review with its reason,
and the ordinary lead delivered next to it must be processed in the first cycle. The Maildir provider reads the
files directly; Gmail is the real client library against the local fake.

RESILIENCE_EXAMPLES=<n> runs more examples (default 12 per provider).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.adapters.gmail import GmailProvider
from bot.adapters.maildir import MaildirProvider
from bot.bootstrap import build_classifier
from bot.config import Config
from bot.models import Classification, Email, PrefilterResult
from bot.pipeline import Pipeline, Services
from bot.ports import Classifier, MailProvider
from bot.state import Ledger
from tests.contract.fake_gmail import FakeGmail
from tests.fakes import FakeAuditSink, FakeCrm, FakeNotifier, make_config, raw_mail

EXAMPLES = int(os.environ.get("RESILIENCE_EXAMPLES", "12"))
CONTROL = raw_mail("Quote for four pumps", sender="Ordinary Lead <lead@customer.example>",
                   body="Hello, please send us a quote for four centrifugal pumps, 10 m3/h. Regards, Lead")
NINE_THOUSANDS = "Fri, 31 Dec 9999 23:59:59 -1200"

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
_ATOM = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='<>()[]\\,;:@"'),
                min_size=1, max_size=20)
_DOMAIN = st.sampled_from(["customer.example", "acme-pumps.example", "ACME-PUMPS.EXAMPLE", "x", "", "[127.0.0.1]",
                           "sub.acme-pumps.example", "ünïcode.example", "a" * 300])


@st.composite
def encoded_word(draw: st.DrawFn) -> str:
    charset = draw(st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "x-unknown", "utf-16", "base64", "", "utf-8*en"]))
    kind = draw(st.sampled_from("BbQqXx"))
    payload = draw(st.one_of(_TEXT.map(lambda t: t.replace("?", "")),
                             st.sampled_from(["sales=40acme-pumps.example", "=0D=0ABcc:_x@y.example", "!!!=",
                                              "c2FsZXNAYWNtZS1wdW1wcy5leGFtcGxl", "=FF=FE=00", "____"])))
    return f"=?{charset}?{kind}?{payload}?="


_PHRASE = st.one_of(_TEXT, encoded_word(), st.lists(encoded_word(), min_size=2, max_size=4).map(" ".join),
                    _TEXT.map(lambda t: '"' + t.replace('"', '\\"') + '"'))


@st.composite
def address(draw: st.DrawFn) -> str:
    addr = f"{draw(st.one_of(_ATOM, encoded_word(), st.just('sales')))}@{draw(_DOMAIN)}"
    form = draw(st.sampled_from(["bare", "angle", "named", "comment", "broken"]))
    if form == "bare":
        return addr
    if form == "angle":
        return f"<{addr}>"
    if form == "named":
        return f"{draw(_PHRASE)} <{addr}>"
    if form == "comment":
        return f"{addr} ({draw(_TEXT).replace(')', '')})"
    return draw(st.sampled_from([f"<{addr}", f"{addr}>", f"<<{addr}>>", f"\"{addr}\" <>", "undisclosed-recipients:;",
                                 f"group: {addr}, {addr};", "@", "<>", f"{addr}, {addr}"]))


_ADDRESSES = st.one_of(address(), st.lists(address(), min_size=2, max_size=5).map(", ".join), _TEXT)


@st.composite
def date(draw: st.DrawFn) -> str:
    day = draw(st.sampled_from(["Mon, ", "Fri, ", "Xyz, ", ""]))
    year = draw(st.sampled_from(["1", "0001", "69", "70", "99", "100", "1900", "1969", "1970", "2038", "2026", "9998",
                                 "9999", "10000", "99999"]))
    zone = draw(st.sampled_from(["-1200", "-2359", "-9999", "-0001", "+0000", "+1400", "+9959", "GMT", "UT", "EST",
                                 "Z", "", "-12", "+01:00", "(comment)"]))
    month = draw(st.sampled_from(["Jan", "Dec", "Foo", "13", ""]))
    dom = draw(st.sampled_from(["1", "31", "00", "32", "99"]))
    clock = draw(st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "25:61:99", "12:00", ""]))
    return draw(st.one_of(st.just(f"{day}{dom} {month} {year} {clock} {zone}"), _TEXT))


_ID = st.one_of(st.builds(lambda a, d: f"<{a}@{d}>", _ATOM, _DOMAIN),
                st.sampled_from(["<>", "<dup@x.example>", "<" + "i" * 600 + "@x.example>", "no-brackets@x.example",
                                 "<a@b><c@d>", "<<nested>@x>"]),
                _TEXT)
_IDS = st.one_of(_ID, st.lists(_ID, min_size=2, max_size=30).map(" ".join))
_HEADERS: dict[str, st.SearchStrategy[str]] = {
    "Date": date(), "From": _ADDRESSES, "Reply-To": _ADDRESSES, "To": _ADDRESSES, "Cc": _ADDRESSES,
    "Subject": st.one_of(_PHRASE, st.lists(encoded_word(), max_size=6).map(" ".join)), "Message-ID": _IDS,
    "In-Reply-To": _IDS, "References": _IDS,
}


@st.composite
def hostile_headers(draw: st.DrawFn) -> bytes:
    """A mail whose parsed headers are drawn from the strategies above (each may be missing or doubled)."""
    names = draw(st.lists(st.sampled_from(sorted(_HEADERS)), min_size=1, max_size=12))
    lines = [f"{name}: {draw(_HEADERS[name])}" for name in names]
    if draw(st.booleans()):  # a folded header, as long ones arrive
        lines = [line.replace(" ", "\r\n ", 1) for line in lines]
    head = "\r\n".join(line.replace("\r\n\r\n", " ") for line in lines)
    return head.encode("utf-8", "surrogateescape") + b"\r\n\r\nWe would like a quote for pumps.\r\n"


class EveryMailALead:
    """The real classifier runs (its own header handling is fuzzed too), then every mail is a sure lead: each one
    goes the longest way through the pipeline (thread check, routing, draft, ping, CRM)."""

    name = "fuzz"

    def __init__(self, inner: Classifier) -> None:
        self.inner = inner

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        return replace(self.inner.classify(email, hint), category="lead", confidence=0.95, review_reason=None)


class Inbox:
    """One provider's mailbox with the pipeline over it (in-memory ledger and sinks, the real offline model)."""

    def __init__(self, cfg: Config, mail: MailProvider, deliver: Callable[[bytes], str]) -> None:
        self.cfg, self.mail, self.deliver = cfg, mail, deliver
        self.ledger = Ledger(None)
        self.audit, self.notifier, self.crm = FakeAuditSink(), FakeNotifier(), FakeCrm()
        classifier = EveryMailALead(build_classifier(cfg, self.ledger))
        self.pipeline = Pipeline(Services(cfg=cfg, mail=mail, classifier=classifier, ledger=self.ledger,
                                          audit_sinks=[self.audit], notifiers=[self.notifier], crms=[self.crm]))

    def settle(self, raws: list[bytes]) -> None:
        ids = [self.deliver(raw) for raw in raws]
        control = self.deliver(CONTROL)
        report = self.pipeline.run_cycle()
        # A header is data: it never fails a message (nor, through it, the rest of the inbox).
        assert report.failed == 0 and report.processed == len(ids) + 1, [
            (pid, row.last_error) for pid in ids if (row := self.ledger.get(pid)) and row.last_error]
        self.pipeline.run_cycle()
        rows = [r["provider_id"] for r in self.audit.rows]
        assert sorted(rows) == sorted([*ids, control]), "one audit row per message"
        for pid in [*ids, control]:
            row = self.ledger.get(pid)
            assert row is not None and row.status == "done" and row.attempts == 0, (pid, row and row.last_error)
            if row.review:
                assert any(r.startswith("review") for r in row.record["decision"]["reasons"]), row.record


def fuzzed(test: Callable[..., None]) -> Callable[..., None]:
    """The same examples for both providers: the 9999 date always among them."""
    test = example([f"Date: {NINE_THOUSANDS}\r\nFrom: a@customer.example\r\n\r\nquote".encode()])(test)
    test = example([b"Date: Sat, 01 Jan 0001 00:00:00 +2359\r\nFrom: b@customer.example\r\n\r\nquote"])(test)
    test = given(st.lists(hostile_headers(), min_size=1, max_size=3))(test)
    return settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(test)


def config(tmp: Path, model: Path, **patch: Any) -> Config:
    cfg: Config = make_config(tmp, {"classify": {"model_path": str(model)}, "poll": {"max_attempts": 2}, **patch})
    return cfg


@fuzzed
def test_any_header_through_the_maildir_listing_and_pipeline(trained_model: Path, raws: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp), trained_model)
        mail = MaildirProvider(cfg.mail.maildir.path, processed_label=cfg.labels.processed)
        counter = iter(range(10**6))

        def deliver(raw: bytes) -> str:
            key = f"fuzz.{next(counter)}"
            (cfg.mail.maildir.path / "new" / key).write_bytes(raw)
            return key

        Inbox(cfg, mail, deliver).settle(raws)


@fuzzed
def test_any_header_through_the_gmail_listing_and_pipeline(trained_model: Path, raws: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeGmail() as gm:
        cfg = config(Path(tmp), trained_model, mail={"provider": "gmail", "gmail": {
            "api_endpoint": gm.api_endpoint, "batch_uri": gm.batch_uri, "token_uri": gm.token_uri}})
        inbox = Inbox(cfg, None, gm.add_message)  # type: ignore[arg-type]
        inbox.mail = GmailProvider(cfg.mail.gmail, gm.credentials(), cfg.labels, inbox.ledger, sleep=lambda s: None)
        inbox.pipeline.s.mail = inbox.mail
        inbox.settle(raws)
