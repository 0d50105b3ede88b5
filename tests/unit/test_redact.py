"""Personal numbers are masked before mail text goes to an LLM; what classification needs stays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.classify.redact import redact


@pytest.mark.parametrize(("text", "expected"), [
    ("Tel.: +49 (0)30 1234567", "Tel.: [PHONE]"),
    ("Fax 030/1234568, mobil 0171 2345678", "Fax [PHONE], mobil [PHONE]"),
    ("Call me at (030) 12345678.", "Call me at [PHONE]."),
    ("US office +1 (415) 555-0100", "US office [PHONE]"),
    ("Téléphone : +33 1 23 45 67 89", "Téléphone : [PHONE]"),
    ("Teléfono: 91 123 45 67", "Teléfono: [PHONE]"),
    ("Phone 555 0100 123", "Phone [PHONE]"),
    ("IBAN: DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "IBAN: [IBAN] BIC COBADEFFXXX"),
    ("pay to GB82WEST12345698765432 please", "pay to [IBAN] please"),
    ("NL91 ABNA 0417 1643 00", "[IBAN]"),
    ("Card 4111 1111 1111 1111 exp 12/27", "Card [CARD] exp 12/27"),
    ("card: 5500-0000-0000-0004", "card: [CARD]"),
    ("Steuer-ID: 12 345 678 901", "Steuer-ID: [TAXID]"),
    ("Steuernummer 21/815/08150", "Steuernummer [TAXID]"),
    ("SSN 123-45-6789", "SSN [SSN]"),
    # Masked by their shape: check digits that fail (a typo) make them no less personal.
    ("IBAN PT50 0035 0000 0000 1234 5678 9 BIC BCOMPTPL", "IBAN [IBAN] BIC BCOMPTPL"),
    ("DE00 1234 5678 9012 3456 78 is not a valid IBAN", "[IBAN] is not a valid IBAN"),
    ("IBAN: PT50 0035 0000 0000 1234 5678 (one digit short)", "IBAN: [IBAN] (one digit short)"),
    ("Card 4111 1111 1111 1112, fails the Luhn check", "Card [CARD], fails the Luhn check"),
    ("call 415-555-0100, (415) 555-0100 or 415.555.0100", "call [PHONE], [PHONE] or [PHONE]"),
    ("Tel 0049 30 12345678 90", "Tel [PHONE]"),
])
def test_personal_numbers_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "Write to john.0301234567@buyer.example or jane+0049301234567@acme-pumps.example",
    "Delivery on 01.02.2025 or 2025-03-04, offer valid until 31/12/2026",
    "DN 100, 45 m3/h at 10 bar, qty 2500, budget 40,000 EUR per year",
    "Our VAT id is DE123456789",
    "Invoice 2024-000123, article 7001234",
    "Offer 2024-0815, 3 pumps at 1.250.000 EUR, drawing 12-345-6789-A",
])
def test_what_classification_needs_is_kept(text: str) -> None:
    assert redact(text) == text


@given(st.text(max_size=300))
def test_redact_never_fails_and_keeps_addresses(text: str) -> None:
    out = redact(text + " contact: sales.4711@acme-pumps.example")
    assert out.endswith(" contact: sales.4711@acme-pumps.example")
