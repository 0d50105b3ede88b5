"""Field extraction: who wrote, at which address to answer, for which company; nothing invented."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify.extract import (
    company_from_domain,
    company_in_text,
    company_near_domain,
    extract_fields,
    is_automated_sender,
    is_free_mail,
    person_like,
    technical_rfq,
)
from bot.mime import parse_email
from bot.models import Email

OWN = {"own_names": ("Acme Pumps GmbH",), "own_domains": ("acme-pumps.example",)}


def mail(body: str, sender: str, subject: str = "Anfrage", headers: str = "") -> Email:
    raw = (f"From: {sender}\nTo: sales@acme-pumps.example\nSubject: {subject}\nMessage-ID: <1@x.example>\n"
           f"{headers}Content-Type: text/plain; charset=utf-8\n\n{body}\n")
    return parse_email(raw.encode())


@pytest.mark.parametrize(("text", "expected"), [
    ("Jürgen Weber", "Jürgen Weber"),
    ("Weber, Jürgen", "Jürgen Weber"),
    ("JÜRGEN WEBER", "Jürgen Weber"),
    ("Dr. Katrin Obermeier", "Katrin Obermeier"),
    ("Dipl.-Ing. (FH) Florian Baumgartner", "Florian Baumgartner"),
    ("Gareth Pryce CEng MIMechE", "Gareth Pryce"),
    ("Kees van der Meer", "Kees van der Meer"),
    ("Gavin O'Neill", "Gavin O'Neill"),
    ("Emre Yıldız", "Emre Yıldız"),
    ("Sales Team", None),
    ("Kreditorenbuchhaltung Stadtwerke Lauterbach", None),
    ("Ufficio Acquisti", None),
    ("Jürgen", None),
    ("info@brauerei.example", None),
    ("", None),
])
def test_person_like(text: str, expected: str | None) -> None:
    assert person_like(text) == expected


@pytest.mark.parametrize(("body", "expected"), [
    ("Bitte um ein Angebot.\n\nMit freundlichen Grüßen\nJürgen Weber\nBrauerei Weber", "Jürgen Weber"),
    ("Merci de nous faire un devis.\n\nCordialement,\nMarie Dubois", "Marie Dubois"),
    ("Necesitamos un presupuesto.\n\nSaludos cordiales,\nCarmen Olmedo Ruiz", "Carmen Olmedo Ruiz"),
    ("Vorremmo un preventivo.\n\nCordiali saluti\nDavide Colombo", "Davide Colombo"),
    ("Gostaríamos de um orçamento.\n\nCom os melhores cumprimentos\n\nJoaquim Ferreira", "Joaquim Ferreira"),
    ("Graag een offerte.\n\nMet vriendelijke groet,\nBram Koster", "Bram Koster"),
    ("Could you quote this?\n\nRegards,\nHannah\n\nHannah Oyelaran\nMaintenance Planner", "Hannah Oyelaran"),
    ("Grazie mille\nAnna Maria Rinaldi", "Anna Maria Rinaldi"),
])
def test_name_from_the_closing_when_from_has_none(body: str, expected: str) -> None:
    fields = extract_fields(mail(body, "info@kunde.example"), **OWN)
    assert fields.person_name == expected


def test_from_display_name_wins_and_keeps_the_order_the_signature_uses() -> None:
    fields = extract_fields(mail("Buongiorno,\npreventivo per 2 pompe.\n\nSaluti\nPaolo Zanetti\nZanetti Srl",
                                 "Zanetti Paolo <p.zanetti@zanetti.example>"), **OWN)
    assert fields.person_name == "Paolo Zanetti"


def test_no_name_is_invented() -> None:
    fields = extract_fields(mail("Price for 2 pumps?", "mike.t.brannigan@gmail.com"), **OWN)
    assert fields.person_name is None
    assert fields.person_email == "mike.t.brannigan@gmail.com"
    assert fields.company is None and fields.company_domain is None


def test_web_form_person_comes_from_reply_to() -> None:
    email = mail("Neue Anfrage über das Kontaktformular\n\nNachricht: Wir suchen eine Pumpe.",
                 "Acme Pumps Website <notifications@formmailer.example>",
                 headers="Reply-To: Monika Sauter <info@gaertnerei-sauter.example>\n")
    fields = extract_fields(email, **OWN)
    assert (fields.person_name, fields.person_email) == ("Monika Sauter", "info@gaertnerei-sauter.example")
    assert fields.company_domain == "gaertnerei-sauter.example"


def test_web_form_fields_when_there_is_no_reply_to() -> None:
    body = ("Nuevo envío del formulario\n\nNombre: Sergio Villalba Ortega\nEmpresa: Depuradoras del Ebro S.L.\n"
            "Email: svillalba@depuradoras-ebro.example\nMensaje: necesitamos presupuesto")
    fields = extract_fields(mail(body, "Acme Pumps Web <no-reply@acme-pumps.example>"), **OWN)
    assert fields.person_name == "Sergio Villalba Ortega"
    assert fields.person_email == "svillalba@depuradoras-ebro.example"
    assert fields.company == "Depuradoras del Ebro"  # as people and CRMs name it, without the legal form
    assert fields.company_domain == "depuradoras-ebro.example"


def test_forwarded_request_names_its_author() -> None:
    body = ("Forwarding the below, Priya is the person to talk to.\n\n-----Original Message-----\n"
            "From: Priya Raman <priya.raman@corvid-chem.example>\nSent: 03 February 2026 11:12\n"
            "To: Tom Hesketh <tom.hesketh@corvid-chem.example>\n\nWe need two dosing pumps.")
    fields = extract_fields(mail(body, "Tom Hesketh <tom.hesketh@corvid-chem.example>", subject="FW: Dosing pumps"),
                            **OWN)
    assert (fields.person_name, fields.person_email) == ("Priya Raman", "priya.raman@corvid-chem.example")


def test_company_from_the_signature_as_written() -> None:
    body = "Please quote.\n\nThanks\nHannah Oyelaran\nMaintenance Planner | Tidewell Paper Mills\n+44 1642 555 771"
    fields = extract_fields(mail(body, "Hannah Oyelaran <hannah@tidewell-paper.example>"), **OWN)
    assert fields.company == "Tidewell Paper Mills"


@pytest.mark.parametrize(("text", "domain", "expected"), [
    ("Ingeniero de Procesos – Planta\nCompañía Minera Atacama\n+56 55", "minera-atacama.example",
     "Compañía Minera Atacama"),
    ("Beatriz Lozano\nHidrus Ingeniería, Zaragoza", "ingenieria-hidrus.example", "Hidrus Ingeniería"),
    ("Colin Ng\nBlueCurrent Water Treatment Ltd", "bluecurrent-wt.example", "BlueCurrent Water Treatment"),
    ("Service maintenance – Peintures de Loire, Saumur", "peintures-loire.example", "Peintures de Loire"),
    ("Zuckerfabrik Gäu AG", "zuckerfabrik-gaeu.example", "Zuckerfabrik Gäu"),
    ("Nothing about the sender here", "peintures-loire.example", None),
])
def test_company_near_domain(text: str, domain: str, expected: str | None) -> None:
    assert company_near_domain(text, domain) == expected


def test_company_with_legal_form_in_the_body_and_never_our_own() -> None:
    text = "Wir, die Brauerei Müller GmbH, suchen eine Pumpe.\nIhr Angebot an Acme Pumps GmbH haben wir erhalten."
    assert company_in_text(text) == "Brauerei Müller"
    assert company_in_text("Dear Acme Pumps GmbH team,", exclude=["Acme Pumps GmbH"]) is None
    assert company_in_text("Merci, la société Rochat SARL vous remercie", exclude=[]) == "Rochat"


def test_company_derived_from_the_domain_only_for_company_domains() -> None:
    assert company_from_domain("brauerei-mueller.example") == "Brauerei Mueller"
    assert company_from_domain("mail.stadtwerke-lauterbach.de") == "Stadtwerke Lauterbach"
    assert company_from_domain("pumpen-gmbh.co.uk") == "Pumpen GmbH"
    for free in ("gmail.com", "gmx.de", "web.de", "yahoo.es", "hotmail.co.uk", "outlook.fr", "libero.it",
                 "orange.fr", "t-online.de"):
        assert is_free_mail(free)
        assert company_from_domain(free) is None
    assert not is_free_mail("brauerei-mueller.example")


def test_own_domain_is_not_the_customer() -> None:
    fields = extract_fields(mail("Bitte Angebot.", "Eva Schulz <eva@acme-pumps.example>"), **OWN)
    assert fields.company_domain is None
    assert fields.company != "Acme Pumps"


@pytest.mark.parametrize("addr", ["no-reply@x.example", "noreply@x.example", "rfq-noreply@portal.example",
                                  "donotreply@x.example", "wordpress@x.example", "forms@x.example",
                                  "anyone@typeform.com"])
def test_automated_senders(addr: str) -> None:
    assert is_automated_sender(addr)


def test_people_are_not_automated() -> None:
    assert not is_automated_sender("juergen.weber@brauerei.example")
    assert not is_automated_sender("sales@kunde.example")


@pytest.mark.parametrize("text", [
    "RFQ: 2 centrifugal pumps, 40 m3/h at 3 bar, DN80 PN16, casing 1.4404",
    "Anfrage: Kreiselpumpe 25 m³/h, Förderhöhe 30 m, DN65, ATEX Zone 1, bitte mit Datenblatt",
    "Demande de devis : pompe doseuse 50 l/h, 10 bar, PVDF, fiche technique SVP",
    "Solicitamos presupuesto: bomba 18 m³/h a 4,5 bar, AISI 316L, con ficha técnica",
    "Richiesta di offerta: pompa 12 m3/h, 6 bar, tenuta in EPDM, scheda tecnica",
    "Pedido de orçamento: bomba 30 m3/h, 5 bar, 316L, desenho anexo",
])
def test_technical_rfq(text: str) -> None:
    assert technical_rfq(text)


@pytest.mark.parametrize("text", [
    "Could you send us your price list?",  # a request, but no technical requirements
    "Our pump (DN80, 3 bar) is leaking at the seal, please send a technician",  # specs, but no request for a quote
    "Danke für die schnelle Lieferung!",
])
def test_not_a_technical_rfq(text: str) -> None:
    assert not technical_rfq(text)


@settings(max_examples=80, deadline=None)
@given(body=st.text(max_size=400), name=st.text(max_size=40), subject=st.text(max_size=40))
def test_extraction_never_raises(body: str, name: str, subject: str) -> None:
    base = mail("x", "a@b.example")
    email = Email(**{**base.__dict__, "body": body, "signature": body[-100:], "from_name": name,
                     "subject": subject, "text": f"{subject}\n{body}", "quoted": body[:60]})
    fields = extract_fields(email, **OWN)
    assert fields.person_email == "a@b.example" or fields.person_email is None or "@" in fields.person_email
