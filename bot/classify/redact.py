"""Mask personal numbers in mail text before it leaves the machine for an LLM.

Masked: IBANs, payment-card numbers, phone and fax numbers, German tax ids (Steuer-ID, Steuernummer) and US
social security numbers. IBANs and card numbers are masked by their shape, whether their check digits add up or
not: a mistyped account or card number is still someone's personal data (long order and tracking numbers are
masked with them). Email addresses are kept on purpose: the classifier extracts the contact's address and a
masked one would be useless. VAT ids (DE123456789) are kept too: they identify a company, not a person, and are
printed on every business letter.
"""

from __future__ import annotations

import re

# Starts only where a run of address characters starts and every part is bounded: an unbounded pattern takes
# quadratic time on a long run of letters without an "@", and mail text is attacker-controlled.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Card numbers never start with 0, and a "+" or "00" in front makes the digits a phone number.
_CARD = re.compile(r"(?<![\d+-])[1-9](?:[ -]?\d){12,18}(?![\d-])")
_TAX_LABELLED = re.compile(
    r"(?i)\b(steuer-?id(?:entifikationsnummer)?|identifikationsnummer|id-?nr\.?|steuer-?nr\.?|steuernummer|"
    r"st\.-?nr\.?|tax\s*id|tin)(\W{0,4})(\d[\d /]{6,16}\d)")
_STEUERNUMMER = re.compile(r"(?<![\d/])\d{2,3}/\d{3,4}/\d{4,5}(?![\d/])")
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
# A phone number either starts like one (+49, 0049, 030, (030)) or follows a label such as "Tel.:".
_PHONE_LABEL = (r"(?i:tel(?:efon|efone|éfono|ephone)?|phone|fax|mobil(?:e|telefon)?|handy|cell(?:ulare)?|"
                r"t[ée]l[ée]?phone|portable|cellulare|celular)\.?\s*[:.]?\s*")
_PHONE = re.compile(
    r"(?:(?<=[\s:(])|^)"
    r"(?:(?:\+|00)\d{1,3}[\s./-]?(?:\(0?\d{1,5}\)[\s./-]?)?|\(0\d{1,5}\)[\s./-]?|0\d{1,5}[\s./-]?)"
    r"\d[\d\s./-]{3,14}\d(?!\d)", re.MULTILINE)
# North American numbers written without a country code: (415) 555-0100, 415-555-0100, 415.555.0100.
_PHONE_NANP = re.compile(r"(?<![\w.+/-])(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}(?![\w/-])")
_PHONE_AFTER_LABEL = re.compile(r"(\b" + _PHONE_LABEL + r")(\d[\d\s./()-]{5,18}\d)(?!\d)")


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def _phone_like(s: str) -> bool:
    n = len(_digits(s.strip().removeprefix("00")))
    return 7 <= n <= 15 and not _DATE.fullmatch(s.strip())


def _iban(m: re.Match[str]) -> str:
    # The pattern may run on into the words after it ("... 3000 BIC COBADEFFXXX"): those hold no digit.
    parts = m.group().split(" ")
    while len(parts) > 1 and not any(ch.isdigit() for ch in parts[-1]):
        parts.pop()
    return "[IBAN]" + m.group()[len(" ".join(parts)):]


def _redact_segment(text: str) -> str:
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub("[CARD]", text)
    text = _TAX_LABELLED.sub(lambda m: f"{m.group(1)}{m.group(2)}[TAXID]", text)
    text = _STEUERNUMMER.sub("[TAXID]", text)
    text = _SSN.sub("[SSN]", text)
    text = _PHONE_AFTER_LABEL.sub(lambda m: m.group(1) + "[PHONE]" if _phone_like(m.group(2)) else m.group(), text)
    text = _PHONE.sub(lambda m: "[PHONE]" if _phone_like(m.group()) else m.group(), text)
    return _PHONE_NANP.sub("[PHONE]", text)


def redact(text: str) -> str:
    """The text with personal numbers replaced by [IBAN], [CARD], [TAXID], [SSN] and [PHONE]."""
    out: list[str] = []
    pos = 0
    for m in _EMAIL.finditer(text):  # addresses pass through untouched, digits and all
        out.append(_redact_segment(text[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(_redact_segment(text[pos:]))
    return "".join(out)
