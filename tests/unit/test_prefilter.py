from __future__ import annotations

import pytest

from bot.config import PrefilterConfig
from bot.mime import parse_email
from bot.models import Email, PrefilterResult
from bot.prefilter import EVIDENCE_CHARS, prefilter

CFG = PrefilterConfig(
    own_domains=("acme-pumps.example",),
    block_senders=("@spammer.example", "pest@freemail.example"),
    allow_senders=("@key-account.example", "buyer@mailchimp.com"),
    marketing_domains=("mailchimp.com", "mcsv.net", "newsletter.example"),
    auto_reply_subjects=(r"^\[auto\]",),
)


def mail(sender: str = "Jane Buyer <jane@customer.example>", subject: str = "Quote for 20 pumps",
         headers: str = "", body: str = "Please send a quote.") -> Email:
    raw = (f"From: {sender}\r\nTo: sales@acme-pumps.example\r\nSubject: {subject}\r\n"
           f"Message-ID: <t1@customer.example>\r\n{headers}\r\n{body}\r\n").encode()
    return parse_email(raw)


def run(email: Email, colleagues: frozenset[str] = frozenset(), mailbox: str = "") -> PrefilterResult:
    return prefilter(email, CFG, colleagues, mailbox)


def test_ordinary_mail_is_classified() -> None:
    result = run(mail())
    assert (result.outcome, result.rule, result.category) == ("classify", None, None)
    assert result.reason == "no pre-filter rule matched"  # the audit row says why it went to the classifier


def test_own_draft_is_skipped() -> None:
    result = run(mail(sender="sales@acme-pumps.example", headers="X-Triage-Source: <t0@customer.example>\r\n"))
    assert (result.outcome, result.rule) == ("skip", "own_draft")
    assert "X-Triage-Source: <t0@customer.example>" in result.reason


def test_source_header_from_outside_is_not_trusted() -> None:
    forged = mail(sender="x@spammer.example", headers="X-Triage-Source: <t0@customer.example>\r\n")
    assert run(forged).rule == "block_list"


@pytest.mark.parametrize("sender", ["alice@acme-pumps.example", "Bob <BOB@ACME-PUMPS.EXAMPLE>",
                                    "noreply@eu.mail.acme-pumps.example"])
def test_internal_sender_is_skipped(sender: str) -> None:
    result = run(mail(sender=sender))
    assert (result.outcome, result.rule) == ("skip", "internal")
    assert "acme-pumps.example" in result.reason


def test_web_form_from_our_domain_with_customer_reply_to_is_not_internal() -> None:
    form = mail(sender="WordPress <wordpress@acme-pumps.example>", subject="New contact form entry",
                headers="Reply-To: Jane Buyer <jane@customer.example>\r\n")
    assert run(form).outcome == "classify"
    colleague = mail(sender="alice@acme-pumps.example", headers="Reply-To: bob@acme-pumps.example\r\n")
    assert run(colleague).rule == "internal"


def test_lookalike_domain_is_not_internal() -> None:
    assert run(mail(sender="x@evilacme-pumps.example")).rule is None
    assert run(mail(sender="x@acme-pumps.example.evil.example")).rule is None


def test_colleague_and_shared_mailbox_are_internal() -> None:
    colleague = run(mail(sender="Agency <Anna@Agency.example>"), colleagues=frozenset({"anna@agency.example"}))
    assert (colleague.outcome, colleague.rule) == ("skip", "internal")
    assert colleague.reason == "sender anna@agency.example is one of our people"
    shared = run(mail(sender="team@gmail.example"), mailbox="Team@gmail.example")
    assert (shared.rule, shared.reason) == ("internal", "sender team@gmail.example is one of our people")


def test_internal_beats_every_rule_but_own_draft() -> None:
    noisy = mail(sender="MAILER-DAEMON@acme-pumps.example", subject="Out of Office: Undelivered Mail",
                 headers="Auto-Submitted: auto-replied\r\nList-Id: <x.acme-pumps.example>\r\n")
    assert run(noisy).rule == "internal"


def test_allow_list_skips_the_rules_below_it() -> None:
    result = run(mail(sender="buyer@sub.key-account.example", subject="Automatic reply: Quote",
                      headers="Auto-Submitted: auto-replied\r\nList-Unsubscribe: <mailto:u@x.example>\r\n"))
    assert (result.outcome, result.rule) == ("classify", "allow_list")
    assert "@key-account.example" in result.reason
    # an allowed address in a marketing domain
    assert run(mail(sender="buyer@mailchimp.com")).rule == "allow_list"
    assert run(mail(sender="other@mailchimp.com")).rule == "marketing_domain"


@pytest.mark.parametrize("sender", ["x@spammer.example", "x@mx1.spammer.example", "PEST@freemail.example"])
def test_block_list_is_spam(sender: str) -> None:
    result = run(mail(sender=sender))
    assert (result.outcome, result.rule, result.category) == ("category", "block_list", "spam")


def test_block_list_address_does_not_block_its_domain() -> None:
    assert run(mail(sender="friend@freemail.example")).rule is None


def test_delivery_report_is_a_bounce() -> None:
    report = mail(sender="Mail Delivery System <MAILER-DAEMON@mx.customer.example>",
                  subject="Undelivered Mail Returned to Sender",
                  headers='MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; '
                          'boundary="b"\r\n',
                  body="--b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver.\r\n--b--")
    result = run(report)
    assert (result.outcome, result.rule, result.category) == ("category", "bounce", "other")
    assert "multipart/report" in result.reason


@pytest.mark.parametrize(("sender", "subject"), [
    ("postmaster@customer.example", "Hello"),
    ("Mail Delivery Subsystem <daemon@customer.example>", "Returned"),
    ("x@customer.example", "Delivery Status Notification (Failure)"),
    ("x@customer.example", "Unzustellbar: Angebot"),
    ("x@customer.example", "Mail delivery failed: returning message to sender"),
    ("x@customer.example", "Undeliverable: Quote"),
])
def test_bounce_by_sender_or_subject(sender: str, subject: str) -> None:
    assert run(mail(sender=sender, subject=subject)).rule == "bounce"


@pytest.mark.parametrize("headers", [
    "Auto-Submitted: auto-replied\r\n",
    "Auto-Submitted: auto-notified\r\n",
    "X-Autoreply: yes\r\n",
    "X-Autorespond: Out of office\r\n",
    "Precedence: auto_reply\r\n",
])
def test_auto_reply_by_header(headers: str) -> None:
    result = run(mail(subject="Re: Quote", headers=headers))
    assert (result.outcome, result.rule, result.category) == ("category", "auto_reply", "other")
    assert headers.split(":")[0].lower() in result.reason.lower()


def test_auto_submitted_no_is_not_an_auto_reply() -> None:
    assert run(mail(headers="Auto-Submitted: no\r\n")).rule is None
    assert run(mail(headers="Auto-Submitted: No\r\n")).rule is None


def test_machine_made_mail_that_relays_a_person_is_left_to_the_classifier() -> None:
    """A website form or a procurement portal sends "auto-generated" mail; the request in it is a person's."""
    result = run(mail(subject="New form submission", headers="Auto-Submitted: auto-generated\r\n"))
    assert result.rule is None and result.outcome == "classify"
    assert run(mail(headers="X-Autoreply: no\r\n")).rule is None


def test_outlook_suppress_header_alone_is_not_an_auto_reply() -> None:
    assert run(mail(headers="X-Auto-Response-Suppress: All\r\n")).rule is None
    assert run(mail(headers="X-Auto-Response-Suppress: OOF, DR, RN, NRN, AutoReply\r\n")).rule is None


@pytest.mark.parametrize("subject", [
    "Out of Office: Quote for 20 pumps", "Automatic reply: Quote", "Abwesenheitsnotiz: Angebot",
    "Automatische Antwort: Angebot", "Réponse automatique : Devis", "Absence du bureau", "Respuesta automática: Oferta",
    "Fuera de la oficina", "Risposta automatica: Offerta", "Fuori ufficio", "Resposta automática: Cotação",
    "Ausente", "Afwezig: Offerte", "AW: Abwesenheitsnotiz", "[auto] I am travelling",
])
def test_auto_reply_by_subject(subject: str) -> None:
    result = run(mail(subject=subject))
    assert result.rule == "auto_reply"
    assert subject[:20] in result.reason


def test_out_of_office_words_inside_a_subject_do_not_match() -> None:
    assert run(mail(subject="Pumps for our new office")).rule is None
    assert run(mail(subject="Leave of absence cover: quote needed")).rule is None


@pytest.mark.parametrize(("sender", "headers", "reason"), [
    ("news@mailchimp.com", "", "sender news@mailchimp.com is in the marketing domain mailchimp.com"),
    ("news@us5.mcsv.net", "", "sender news@us5.mcsv.net is in the marketing domain mcsv.net"),
    ("Shop <news@shop.example>", "Return-Path: <bounce-123@mail.newsletter.example>\r\n",
     "Return-Path bounce-123@mail.newsletter.example is in the marketing domain newsletter.example"),
    ("Shop <news@shop.example>", "Sender: Shop <shop=newsletter.example@mcsv.net>\r\n",
     "Sender shop=newsletter.example@mcsv.net is in the marketing domain mcsv.net"),
])
def test_marketing_domain_is_newsletter(sender: str, headers: str, reason: str) -> None:
    result = run(mail(sender=sender, headers=headers))
    assert (result.outcome, result.rule, result.category) == ("category", "marketing_domain", "newsletter")
    assert result.reason == reason


def test_marketing_domain_needs_a_domain_boundary() -> None:
    assert run(mail(sender="x@notmailchimp.com")).rule is None


@pytest.mark.parametrize(("headers", "reason"), [
    ("List-Id: Pump Users <pump-users.lists.example>\r\n", "header List-Id: Pump Users <pump-users.lists.example>"),
    ("List-Unsubscribe: <https://lists.example/u?id=1>\r\n", "header List-Unsubscribe: <https://lists.example/u?id=1>"),
    ("Precedence: bulk\r\n", "header Precedence: bulk"),
    ("Precedence: list\r\n", "header Precedence: list"),
    ("Precedence: junk\r\n", "header Precedence: junk"),
])
def test_list_mail_is_a_newsletter_hint(headers: str, reason: str) -> None:
    result = run(mail(headers=headers))
    assert (result.outcome, result.rule, result.category) == ("hint", "list_mail", "newsletter")
    assert result.reason == reason


def test_rule_order_bounce_before_auto_reply_before_marketing_before_list() -> None:
    everything = "Auto-Submitted: auto-replied\r\nList-Id: <l.example>\r\n"
    assert run(mail(sender="mailer-daemon@mcsv.net", headers=everything)).rule == "bounce"
    assert run(mail(sender="x@mcsv.net", headers=everything)).rule == "auto_reply"
    assert run(mail(sender="x@mcsv.net", headers="List-Id: <l.example>\r\n")).rule == "marketing_domain"
    assert run(mail(sender="x@spammer.example", headers=everything)).rule == "block_list"


@pytest.mark.parametrize(("extra", "quoted"), [
    (EVIDENCE_CHARS - 14, "Out of Office " + "x" * (EVIDENCE_CHARS - 14)),  # just fits: quoted whole
    (EVIDENCE_CHARS - 13, "Out of Office " + "x" * (EVIDENCE_CHARS - 15) + "…"),  # one over: cut to the limit
    (500, "Out of Office " + "x" * (EVIDENCE_CHARS - 15) + "…"),
])
def test_evidence_in_reasons_is_truncated_to_the_evidence_limit(extra: int, quoted: str) -> None:
    result = run(mail(subject="Out of Office " + "x" * extra))
    assert result.reason == f'subject "{quoted}" is an automatic reply'
    assert len(quoted) <= EVIDENCE_CHARS


def test_unparseable_sender_reaches_the_classifier() -> None:
    email = parse_email(b"Subject: hi\r\n\r\nno sender at all\r\n")
    assert email.from_addr == ""
    assert run(email).outcome == "classify"


def test_custom_pattern_that_is_invalid_does_not_raise() -> None:
    cfg = PrefilterConfig(own_domains=(), block_senders=(), allow_senders=(), marketing_domains=(),
                          auto_reply_subjects=("([unclosed",))
    assert prefilter(mail(), cfg).outcome == "classify"


NEWS = ("Our spring range is here: 20% off all garden pumps until Friday.\r\n\r\nShop now at https://shop.example\r\n"
        "\r\n--\r\nYou are receiving this email because you subscribed at shop.example.\r\n"
        "Unsubscribe: https://shop.example/u?id=1\r\n")


@pytest.mark.parametrize("footer", [
    "To unsubscribe, click here.",
    "Unsubscribe: https://shop.example/u?id=1",
    "You are receiving this email because you registered at shop.example.",
    "Newsletter abbestellen: https://shop.example/abmelden",
    "Se désinscrire : https://shop.example/d",
    "Para darse de baja haga clic aquí.",
    "Manage your email preferences",
])
def test_an_unsubscribe_footer_marks_bulk_mail_without_list_headers(footer: str) -> None:
    result = run(mail(body=f"Big news this month: new prices on all our garden pumps.\r\n\r\n{footer}\r\n"))
    assert (result.outcome, result.rule, result.category) == ("hint", "bulk_footer", "newsletter")
    assert "unsubscribe footer" in result.reason


@pytest.mark.parametrize("body", [
    # a person asking in passing to be taken off a list writes no link and no "you are receiving this"
    "Please unsubscribe me from your newsletter, and send a quote for 2 pumps.",
    "We would like to opt out of the paper catalogue. Please quote the pump below.",
    # the footer of a newsletter the customer quotes in a reply says nothing about the reply itself
    "Please quote 3 of the pumps from your mailing.\r\n\r\nOn Mon, 2 Mar 2026, Acme wrote:\r\n> Offers!\r\n"
    "> Unsubscribe: https://acme-pumps.example/u",
    # unsubscribe words early in a long text are not its footer
    "Unsubscribe links do not work in your last mail, see https://x.example.\r\n" + "Details follow.\r\n" * 30,
])
def test_a_person_mentioning_unsubscribing_is_not_bulk_mail(body: str) -> None:
    assert run(mail(body=body)).outcome == "classify"


def test_list_headers_win_over_the_footer() -> None:
    result = run(mail(headers="List-Unsubscribe: <https://shop.example/u>\r\n", body=NEWS))
    assert result.rule == "list_mail" and "List-Unsubscribe" in result.reason


def test_an_html_only_newsletter_is_recognised_by_its_link_text() -> None:
    html = ("<html><body><p>Spring offers on all garden pumps.</p><p><a href='https://t.example/c?q=1'>unsubscribe</a>"
            " | <a href='https://t.example/p'>privacy</a></p></body></html>")
    raw = ("From: Shop <news@shop.example>\r\nTo: sales@acme-pumps.example\r\nSubject: Offers\r\n"
           "Message-ID: <n1@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + html + "\r\n").encode()
    result = run(parse_email(raw))
    assert (result.outcome, result.rule) == ("hint", "bulk_footer")
