"""The shapes of sales-inbox mail recognised by rule: web forms, read receipts, absence notices written like
ordinary mail, a person's unsubscribe or data-protection request, mail about something already bought, technical
requests for quotation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.classify import extract, shapes
from bot.mime import parse_email
from bot.prefilter import prefilter
from bot.replies import reply_address
from tests.fakes import make_config as _make_config

OURS = ("acme-pumps.example",)


def make_config() -> object:
    from pathlib import Path

    return _make_config(Path("/nonexistent-state"))


def mail(body: str, subject: str = "Hello", sender: str = "Anna Clarke <anna@northwind.example>",
         headers: str = "") -> bytes:
    return (f"From: {sender}\nTo: sales@acme-pumps.example\nSubject: {subject}\nMessage-ID: <x@northwind.example>\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0100\n{headers}MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


WORDPRESS = mail("Von: Dominik Reischl <d.reischl@reischl-lt.example>\nFirma: Reischl GmbH\nTelefon: 0871 555\n"
                 "Nachricht:\nWir brauchen 20 Drehteile aus 1.4404, was würde das kosten?",
                 subject="[Acme Pumps] Neue Anfrage über das Kontaktformular",
                 sender='"Acme Pumps Website" <wordpress@acme-pumps.example>')
FORM_SERVICE = mail("You have a new submission.\n\nName: Lotte Janssens\nE-mail: lotte@dataharbor.example\n"
                    "Company: DataHarbor BV\nMessage: Could you send us a price for 3 pumps?",
                    subject="New form submission on Acme Pumps", sender="Webflow <no-reply-forms@webflow.example>")
NO_ADDRESS = mail("You have a new submission.\n\nName: Lotte Janssens\nCompany: DataHarbor BV\nPhone: 555 0101\n"
                  "Message: Please call me about 3 pumps.", subject="New form submission on Acme Pumps",
                  sender="Webflow <no-reply-forms@webflow.example>")


def test_a_form_from_our_own_website_is_a_customers_mail_not_ours() -> None:
    cfg = make_config()
    email = parse_email(WORDPRESS)
    assert extract.is_form_notification(email, OURS)
    result = prefilter(email, cfg.prefilter, frozenset(cfg.routing.colleagues), cfg.company.mailbox)
    assert result.rule != "internal" and result.outcome == "classify"
    assert extract.person_email(email, OURS) == "d.reischl@reischl-lt.example"
    assert reply_address(cfg, email)[0] == "d.reischl@reischl-lt.example"


def test_a_colleagues_own_mail_is_still_internal() -> None:
    cfg = make_config()
    email = parse_email(mail("Hi team, lunch at 12?", sender="Bob Nguyen <bob@acme-pumps.example>"))
    assert not extract.is_form_notification(email, OURS)
    assert prefilter(email, cfg.prefilter, frozenset(), cfg.company.mailbox).rule == "internal"


def test_a_form_service_notification_is_answered_to_the_customer_never_to_the_service() -> None:
    cfg = make_config()
    email = parse_email(FORM_SERVICE)
    assert extract.is_form_notification(email, OURS)
    assert reply_address(cfg, email)[0] == "lotte@dataharbor.example"
    assert reply_address(cfg, parse_email(NO_ADDRESS)) == ("", "a web form without the customer's address")


def test_reply_to_the_customer_wins_for_a_form() -> None:
    cfg = make_config()
    email = replace(parse_email(FORM_SERVICE), reply_to="lotte.private@gmail.example")
    assert reply_address(cfg, email)[0] == "lotte.private@gmail.example"


def test_an_ordinary_mail_is_answered_to_its_sender() -> None:
    cfg = make_config()
    assert reply_address(cfg, parse_email(mail("Please quote 3 pumps.")))[0] == "anna@northwind.example"


@pytest.mark.parametrize("subject", ["Read: Your quote 4711", "Gelesen: Angebot 4711", "Lu : Devis 4711",
                                     "Leído: Presupuesto 4711", "Letto: Offerta 4711", "Gelezen: Offerte 4711"])
def test_read_receipts_in_the_sales_languages(subject: str) -> None:
    email = parse_email(mail("Your message was read on 3 March 2026 10:12.", subject=subject))
    assert shapes.read_receipt(email)
    cfg = make_config()
    assert prefilter(email, cfg.prefilter, frozenset(), cfg.company.mailbox).rule == "read_receipt"


def test_a_disposition_notification_is_a_read_receipt_whatever_its_subject() -> None:
    email = parse_email(mail("x", headers='Content-Type: multipart/report; report-type="disposition-notification";'
                                          ' boundary="b"\n'))
    assert shapes.read_receipt(email)


def test_asking_for_a_read_receipt_is_not_one() -> None:
    email = parse_email(mail("Please quote 3 pumps.", subject="Reading pumps for our plant",
                             headers="Disposition-Notification-To: anna@northwind.example\n"))
    assert shapes.read_receipt(email) is None


@pytest.mark.parametrize("body", [
    "Thank you for your email. I am out of the office until 12 March and will reply on my return.",
    "Guten Tag, ich bin bis zum 12.03. nicht im Büro. In dringenden Fällen wenden Sie sich an Herrn Weber.",
    "Bonjour, je suis absente jusqu'au 12 mars. Cordialement",
    "Hola, estoy fuera de la oficina hasta el 12 de marzo.",
    "Buongiorno, sono fuori ufficio fino al 12 marzo.",
    "Olá, estou ausente até dia 12 de março.",
    "Goedendag, ik ben afwezig tot en met 12 maart.",
])
def test_absence_notices_without_auto_reply_headers(body: str) -> None:
    email = parse_email(mail(body, subject="Re: Your quote"))
    assert shapes.out_of_office(email)
    cfg = make_config()
    assert prefilter(email, cfg.prefilter, frozenset(), cfg.company.mailbox).rule == "auto_reply"


def test_a_lead_that_mentions_a_holiday_is_not_an_absence_notice() -> None:
    email = parse_email(mail("Hello, we are looking for 4 pumps for our new plant. I will be on holiday until 12 "
                             "March, please send the quote to my colleague. " + "Details follow. " * 200))
    assert shapes.out_of_office(email) is None


@pytest.mark.parametrize("body", [
    "Please remove me from your mailing list.",
    "Bitte nehmen Sie mich aus Ihrem Verteiler, und löschen Sie meine Daten gemäß DSGVO.",
    "Merci de me désinscrire de votre liste.",
    "Por favor, darme de baja de sus correos.",
    "Vi chiedo di cancellare i miei dati (art. 17 GDPR).",
    "Peço que removam os meus dados da vossa lista.",
    "Graag uitschrijven graag, verwijder mijn gegevens.",
])
def test_a_person_asking_to_unsubscribe_or_for_their_data(body: str) -> None:
    assert shapes.personal_request(parse_email(mail(body)))


def test_a_newsletters_own_unsubscribe_footer_is_not_a_persons_request() -> None:
    email = parse_email(mail("Our spring offers.\n\nTo unsubscribe, click here.",
                             headers="List-Unsubscribe: <mailto:u@news.example>\n"))
    assert shapes.personal_request(email) is None


@pytest.mark.parametrize(("body", "existing"), [
    ("Our pump SN 4711-22 is leaking again, please send a quote for the repair.", True),
    ("Error E4 on the controller since this morning. Urgent technical support needed!", True),
    ("The portal is down for all our users since 9:00 (outage).", True),
    ("Please refund invoice 2026-0042, it was charged twice.", True),
    ("We need a quote for 3 new pumps for our new plant.", False),
    ("Our pump SN 4711 works fine; we need 2 additional units for the new line.", False),
])
def test_mail_about_something_already_bought(body: str, existing: bool) -> None:
    assert bool(shapes.support_signals(parse_email(mail(body)))) is existing


@pytest.mark.parametrize(("text", "attachments", "technical"), [
    ("Please quote 500 brackets as per drawing, tolerances ISO 2768-mK, S235JR, t = 3 mm.", (), True),
    ("Request for quotation: see the attached STEP file, material 1.4404.", ("part-7.step",), True),
    ("RFQ: 2 centrifugal pumps, 40 m3/h at 3 bar, DN80 PN16, 316L, ATEX zone 1.", (), True),
    ("Please send an offer for your pump AP-250 for our winery.", (), False),
    ("Quote for 3 pumps, 40 m3/h please.", (), False),
    ("We need a price for the wine transfer pump, 230 V, about 10 m3/h.", (), False),
])
def test_a_technical_rfq_states_requirements_a_specialist_must_read(text: str, attachments: tuple[str, ...],
                                                                     technical: bool) -> None:
    assert extract.technical_rfq(text, attachments) is technical
