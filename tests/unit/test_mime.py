from __future__ import annotations

import base64
import random
import tracemalloc
from datetime import UTC, datetime

import pytest

from bot.mime import HEADER_CAP, MAX_TEXT, html_to_text, parse_email, read_headers, safe_filename, thread_key


def plain(body: str, subject: str = "Pumps", extra: str = "", charset: str = "utf-8", encoding: str = "") -> bytes:
    head = (f"From: Jane Buyer <jane@customer.example>\r\nTo: sales@acme-pumps.example\r\nSubject: {subject}\r\n"
            f"Date: Tue, 03 Mar 2026 10:00:00 +0100\r\nMessage-ID: <m1@customer.example>\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n\r\n")
    return head.encode() + body.replace("\n", "\r\n").encode(encoding or charset)


# ---------------------------------------------------------------- headers


def test_rfc2047_subject_and_name_are_decoded() -> None:
    raw = (b"From: =?utf-8?q?M=C3=BCller=2C_J=C3=BCrgen?= <Juergen.Mueller@Kunde.DE>\r\n"
           b"To: sales@acme-pumps.example, \"Bob\" <Bob@Acme-Pumps.example>\r\n"
           b"Cc: =?iso-8859-1?q?Ren=E9?= <rene@kunde.de>\r\n"
           b"Subject: =?iso-8859-1?q?Anfrage_f=FCr?= =?utf-8?b?UHVtcGVu?=\r\n"
           # one UTF-8 character (U+00FC) split across two encoded words
           b" =?utf-8?b?w7w=?=\r\n"
           b"Message-ID: <a1@kunde.de>\r\n\r\nHallo\r\n")
    e = parse_email(raw)
    assert e.subject == "Anfrage fürPumpenü"
    assert e.from_addr == "juergen.mueller@kunde.de"
    assert e.from_name == "Müller, Jürgen"  # the encoded comma did not split the address list
    assert e.to == ("sales@acme-pumps.example", "bob@acme-pumps.example")
    assert e.cc == ("rene@kunde.de",)
    assert e.headers["cc"] == "René <rene@kunde.de>"


def test_encoded_word_split_inside_a_multibyte_character() -> None:
    word = "Überprüfung".encode()
    first, second = base64.b64encode(word[:1]).decode(), base64.b64encode(word[1:]).decode()
    e = parse_email(plain("x", subject=f"=?UTF-8?B?{first}?= =?UTF-8?B?{second}?="))
    assert e.subject == "Überprüfung"


def test_raw_8bit_utf8_header_is_read() -> None:
    raw = "From: José <jose@cliente.example>\r\nSubject: Cotización bomba\r\n\r\nHola\r\n".encode()
    e = parse_email(raw)
    assert (e.subject, e.from_name) == ("Cotización bomba", "José")


def test_crlf_injection_in_display_name_is_neutralised() -> None:
    raw = (b"From: =?utf-8?q?Evil=0D=0ABcc=3A_victim=40x=2Eexample=0D=0A?= <evil@attacker.example>\r\n"
           b"Subject: =?utf-8?q?Hi=0D=0AX-Injected=3A_1?=\r\nMessage-ID: <i@x>\r\n\r\nbody\r\n")
    e = parse_email(raw)
    assert e.from_addr == "evil@attacker.example"
    for value in (e.from_name, e.subject, *e.headers.values()):
        assert "\r" not in value and "\n" not in value and "\x00" not in value
    assert e.from_name == "Evil Bcc: victim@x.example"
    assert "x-injected" not in e.headers


def test_ten_thousand_character_subject_is_capped() -> None:
    e = parse_email(plain("Need a quote", subject="Quote " * 2000), text_chars=50)
    assert len(e.subject) <= HEADER_CAP
    assert e.subject.startswith("Quote Quote")
    assert len(e.text) <= HEADER_CAP + 2 + 50
    assert e.text.endswith("Need a quote")


def test_unquoted_display_name_that_looks_like_an_address_does_not_win() -> None:
    raw = b"From: sales@acme-pumps.example <attacker@evil.example>\r\nSubject: x\r\n\r\nhi\r\n"
    assert parse_email(raw).from_addr == "attacker@evil.example"
    raw = b'From: "<boss@acme-pumps.example>" <attacker@evil.example>\r\nSubject: x\r\n\r\nhi\r\n'
    assert parse_email(raw).from_addr == "attacker@evil.example"


def test_addresses_reply_to_and_headers_map() -> None:
    raw = plain("hi", extra="Reply-To: Orders <ORDERS@Customer.example>\r\nX-Spam-Flag: NO\r\n"
                             "X-Spam-Flag: YES\r\n")
    e = parse_email(raw)
    assert e.reply_to == "orders@customer.example"
    assert e.headers["x-spam-flag"] == "NO"  # the first occurrence
    assert e.headers["message-id"] == "<m1@customer.example>"
    assert all(name == name.lower() for name in e.headers)


def test_date_is_aware_utc() -> None:
    e = parse_email(plain("hi"))
    assert e.date == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    naive = parse_email(b"From: a@b.example\r\nDate: Tue, 03 Mar 2026 10:00:00 -0000\r\n\r\nx")
    assert naive.date == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    bad = parse_email(b"From: a@b.example\r\nDate: yesterday-ish\r\n\r\nx")
    assert bad.date is None and "unparseable Date" in bad.defects


def test_missing_message_id_is_synthesized_stably() -> None:
    raw = b"From: a@b.example\r\nSubject: no id\r\n\r\nhello\r\n"
    first, second = parse_email(raw), parse_email(raw)
    assert first.message_id == second.message_id
    assert first.message_id.startswith("<") and first.message_id.endswith("@triage.invalid>")
    assert "no Message-ID" in first.defects
    assert parse_email(raw + b"!").message_id != first.message_id
    assert first.thread_id == first.message_id


def test_thread_id_comes_from_references_then_in_reply_to() -> None:
    refs = parse_email(plain("x", extra="In-Reply-To: <p2@acme.example>\r\nReferences: <root@acme.example>\r\n"
                                        " <p2@acme.example>\r\n"))
    assert refs.thread_id == "<root@acme.example>"
    assert refs.references == ("<root@acme.example>", "<p2@acme.example>")
    assert refs.in_reply_to == "<p2@acme.example>"
    reply = parse_email(plain("x", extra="In-Reply-To: <p2@acme.example>\r\n"))
    assert reply.thread_id == "<p2@acme.example>"
    given = parse_email(plain("x"), provider_id="17", thread_id="gmail-thread-9")
    assert (given.thread_id, given.provider_id) == ("gmail-thread-9", "17")


def test_message_id_without_brackets_is_bracketed() -> None:
    e = parse_email(b"From: a@b.example\r\nMessage-ID: abc123@mail.b.example\r\n\r\nx")
    assert e.message_id == "<abc123@mail.b.example>"
    assert "no Message-ID" not in e.defects


def test_thread_key() -> None:
    assert thread_key("<m>", "<p>", ["<r>", "<p>"]) == "<r>"
    assert thread_key("<m>", "<p>", []) == "<p>"
    assert thread_key("<m>", "", ()) == "<m>"


def test_read_headers_reads_only_the_header_block() -> None:
    raw = plain("Subject: not a header\nFrom: nobody@else.example", subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
    h = read_headers(raw)
    assert h["subject"] == "Grüße"
    assert h["from"] == "Jane Buyer <jane@customer.example>"
    assert read_headers(b"") == {}
    assert read_headers(b"\xff\xfe\x00garbage") == {}


# ---------------------------------------------------------------- charsets


def test_iso_8859_1_body() -> None:
    e = parse_email(plain("Wir benötigen 20 Pumpen für Köln.", charset="iso-8859-1"))
    assert "benötigen 20 Pumpen für Köln" in e.body
    assert e.defects == ()


def test_windows_1252_smart_quotes() -> None:
    raw = plain("x", charset="windows-1252")[:-1] + "We’d like a “quote” – 20 units €".encode("cp1252")
    assert "We’d like a “quote” – 20 units €" in parse_email(raw).body


def test_iso_8859_1_label_on_cp1252_bytes_reads_as_browsers_do() -> None:
    raw = plain("x", charset="iso-8859-1")[:-1] + "It’s 5 € each".encode("cp1252")
    assert "It’s 5 € each" in parse_email(raw).body


def test_shift_jis_body() -> None:
    e = parse_email(plain("ポンプの見積もりをお願いします。", charset="shift_jis"))
    assert "ポンプの見積もりをお願いします" in e.body


def test_declared_utf8_with_latin1_bytes_falls_back() -> None:
    raw = plain("x")[:-1] + "Grüße aus München".encode("latin-1")
    e = parse_email(raw)
    assert "Grüße aus München" in e.body
    assert any("utf-8" in d for d in e.defects)


@pytest.mark.parametrize("charset", ["x-unknown", '"utf8 "', "base64", "unknown-8bit", "zlib"])
def test_unknown_or_non_text_charsets_do_not_crash(charset: str) -> None:
    raw = plain("Prix: 12 €", charset=charset, encoding="utf-8")
    e = parse_email(raw)
    assert "Prix: 12 €" in e.body


def test_undecodable_charset_is_reported() -> None:
    e = parse_email(plain("hello", charset="x-foo", encoding="ascii"))
    assert "undecodable charset x-foo" in e.defects
    assert "hello" in e.body


def test_quoted_printable_and_base64_bodies() -> None:
    qp = plain("x", extra="Content-Transfer-Encoding: quoted-printable\r\n")[:-1] + b"Gr=C3=BC=C3=9Fe, sch=\r\nade"
    assert "Grüße, schade" in parse_email(qp).body
    b64 = plain("x", extra="Content-Transfer-Encoding: base64\r\n")[:-1] + base64.encodebytes("Offre n°5".encode())
    assert "Offre n°5" in parse_email(b64).body


# ---------------------------------------------------------------- structure and HTML


HTML_ONLY = b"""From: shop@vendor.example
Subject: Offer
Message-ID: <h@vendor.example>
Content-Type: text/html; charset=utf-8

<html><head><title>Ignore the title</title><style>p { color: red }</style></head>
<body><script>alert('x')</script><h1>Spring&nbsp;offer</h1><p>Pumps from 99&euro; &amp; more.</p>
<p>Read <a href="https://vendor.example/x">the brochure</a>
now.<br>Line two</p><ul><li>one</li><li>two</li></ul></body></html>
"""


def test_html_only_mail_is_converted() -> None:
    e = parse_email(HTML_ONLY)
    assert e.html_only
    for gone in ("alert", "color: red", "Ignore the title", "<p>", "https://vendor.example"):
        assert gone not in e.body
    assert "Spring offer" in e.body
    assert "Pumps from 99€ & more." in e.body
    assert "Read the brochure now." in e.body
    assert "\nLine two" in e.body
    assert "one\n" in e.body and "\ntwo" in e.body


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<div>a<b>b</i></div><p>c") == "ab\n\nc"
    assert "text" in html_to_text("<head><title>t</title><body>text")  # unclosed head
    assert html_to_text("<![if !mso]><p>kept</p><![endif]><!-- hidden -->") == "kept"
    assert html_to_text("<script>never closed") == ""
    assert html_to_text("<p>a<br/>b<br>c<script/>d</p>") == "a\nb\ncd"


NESTED = b"""From: Lena <lena@buyer.example>
Subject: RFQ
Message-ID: <n@buyer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Please quote 40 centrifugal pumps.
--inner
Content-Type: text/html; charset=utf-8

<p>HTML VERSION should not be used</p>
--inner--
--outer
Content-Type: application/pdf; name="spec.pdf"
Content-Disposition: attachment; filename="spec.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl
--outer
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

attachment text must not be in the body
--outer--
"""


def test_nested_alternative_inside_mixed() -> None:
    e = parse_email(NESTED)
    assert e.body == "Please quote 40 centrifugal pumps."
    assert not e.html_only
    assert [(a.filename, a.content_type) for a in e.attachments] == [
        ("spec.pdf", "application/pdf"), ("notes.txt", "text/plain")]
    assert e.attachments[0].size == 57  # 76 base64 characters


def test_html_alternative_used_when_plain_part_is_empty() -> None:
    raw = NESTED.replace(b"Please quote 40 centrifugal pumps.", b"")
    e = parse_email(raw)
    assert "HTML VERSION" in e.body and e.html_only


def test_forwarded_message_attachment_is_included() -> None:
    raw = b"""From: colleague@partner.example
Subject: Fwd: Enquiry
Message-ID: <f@partner.example>
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

FYI, a lead for you.
--b
Content-Type: message/rfc822

From: Max Kunde <max@kunde.example>
Subject: Anfrage Pumpen
Date: Mon, 2 Mar 2026 09:00:00 +0100
Content-Type: text/html; charset=utf-8

<p>Wir brauchen ein Angebot f&uuml;r 12 Pumpen.</p>
--b--
"""
    e = parse_email(raw)
    assert "FYI, a lead for you." in e.body
    assert "Wir brauchen ein Angebot für 12 Pumpen." in e.body
    assert "From: Max Kunde <max@kunde.example>" in e.body
    assert "Subject: Anfrage Pumpen" in e.body
    assert e.quoted == ""


def test_too_deep_nesting_is_a_defect_not_a_crash() -> None:
    depth = 40
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    tail = "".join(f"\n--b{i}--" for i in reversed(range(depth)))
    e = parse_email(f"From: a@b.example\nSubject: deep\n{head}Content-Type: text/plain\n\ndeep text{tail}\n".encode())
    assert any("nested" in d for d in e.defects)


def test_nesting_beyond_the_stdlib_parser_is_reported() -> None:
    raw = b"From: a@b.example\nSubject: deep\n" + b"Content-Type: message/rfc822\n\nFrom: x@y.example\n" * 3000
    e = parse_email(raw + b"\ninner text\n")
    assert e.defects == ("unparseable message (RecursionError)",)
    assert e.subject == "deep" and e.headers["from"] == "a@b.example"
    assert e.message_id.endswith("@triage.invalid>") and e.raw_size > 3000


def test_part_count_is_limited() -> None:
    parts = "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(500))
    raw = f'From: a@b.example\nSubject: many\nContent-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'.encode()
    e = parse_email(raw)
    assert "part 0" in e.body and "part 499" not in e.body
    assert any("too many MIME parts" in d for d in e.defects)


def test_text_read_is_bounded() -> None:
    e = parse_email(plain("Bitte ein Angebot.\n" * 300_000))  # ~5.7 MB of text
    assert len(e.body) <= MAX_TEXT
    assert e.body.startswith("Bitte ein Angebot.")


def test_multipart_without_boundary_still_yields_text() -> None:
    raw = b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed\n\nplain words here\n"
    assert "plain words here" in parse_email(raw).body


def large_attachment_mail(size: int = 25 * 1024 * 1024) -> tuple[bytes, bytes]:
    """(the attachment's bytes, a mail carrying them base64-encoded); bench/component_speed.py times its parsing."""
    data = random.Random(7).randbytes(size)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    raw = (b"From: eng@customer.example\r\nSubject: drawings\r\nMessage-ID: <big@customer.example>\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
           b"Drawings attached, please quote.\r\n--XX\r\nContent-Type: application/zip; name=cad.zip\r\n"
           b"Content-Disposition: attachment; filename=cad.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + encoded + b"--XX--\r\n")
    return data, raw


def test_large_attachment_is_counted_not_decoded() -> None:
    data, raw = large_attachment_mail()
    e = parse_email(raw)
    assert e.body == "Drawings attached, please quote."
    assert e.raw_size == len(raw)
    [attachment] = e.attachments
    assert attachment.filename == "cad.zip"
    assert abs(attachment.size - len(data)) < len(data) * 0.01


def test_a_message_larger_than_max_bytes_is_read_up_to_it_and_says_so() -> None:
    raw = b"From: a@customer.example\nSubject: requirements\n\nPlease quote: " + b"pump " * 1_000_000
    e = parse_email(raw, max_bytes=1_000_000)
    assert e.raw_size == len(raw) and e.body.startswith("Please quote: pump pump")
    assert "larger than 1,000,000 bytes: the rest was not read" in e.defects
    assert not [d for d in parse_email(raw).defects if d.startswith("larger")]  # no limit, no such defect


def test_a_long_body_that_is_not_base64_is_shortened_before_parsing_and_still_counted() -> None:
    table = b"part;qty;price\n" * 800_000  # 12 MB of 8-bit CSV, one line after another
    raw = (b"From: buyer@customer.example\nSubject: bill of materials\nContent-Type: multipart/mixed; boundary=B\n\n"
           b"--B\nContent-Type: text/plain\n\nOur list is attached.\n--B\nContent-Type: text/csv\n"
           b"Content-Disposition: attachment; filename=bom.csv\nContent-Transfer-Encoding: 8bit\n\n"
           + table + b"--B\nContent-Type: text/plain\n\nThanks, Buyer\n--B--\n")
    tracemalloc.start()
    try:
        e = parse_email(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "Our list is attached." in e.body and "Thanks, Buyer" in e.body
    [attachment] = e.attachments
    assert abs(attachment.size - len(table)) < 100
    assert peak < len(table)  # the feedparser never held the whole table


def test_headers_that_never_end_are_read_for_their_first_megabyte() -> None:
    raw = b"From: a@customer.example\nSubject: odd\n" + b"X-Junk: " + b"y" * 3_000_000
    e = parse_email(raw)
    assert e.from_addr == "a@customer.example" and e.subject == "odd"
    assert any(d.startswith("no end of the headers in the first 1,000,000 bytes") for d in e.defects)


def test_elision_marker_cannot_be_forged() -> None:
    raw = (b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
           b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
           b"QUJD\n=elided-0000 999999999=\n--b--\n")
    [attachment] = parse_email(raw).attachments
    assert attachment.size < 100


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("C:\\Windows\\System32\\evil.exe", "evil.exe"),
    (".htaccess", "htaccess"),
    ("..", ""),
    ("re\u202eport\x07.pdf", "report.pdf"),
    ("=?utf-8?q?Angebot_M=C3=BCller.pdf?=", "Angebot Müller.pdf"),
])
def test_attachment_filenames_are_sanitized(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_filename_keeps_its_extension() -> None:
    name = safe_filename("x" * 300 + ".pdf")
    assert len(name) == 120 and name.endswith(".pdf")


def test_attachment_filename_from_the_message_is_sanitized() -> None:
    raw = (b"From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nsee file\n--b\nContent-Type: application/octet-stream\n"
           b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd\n\nAAAA\n--b\n"
           b"Content-Type: application/octet-stream; name=\"/abs/path.bin\"\n\nAAAA\n--b--\n")
    assert [a.filename for a in parse_email(raw).attachments] == ["passwd", "path.bin"]


# ---------------------------------------------------------------- broken input


def test_zero_bytes() -> None:
    e = parse_email(b"")
    assert {"empty message", "no From address", "no Message-ID", "no text body"} <= set(e.defects)
    assert e.text == "\n\n" and e.raw_size == 0


def test_binary_garbage() -> None:
    e = parse_email(random.Random(1).randbytes(20_000))
    assert e.defects
    assert "no text body" in e.defects
    assert isinstance(e.text, str)


# ---------------------------------------------------------------- quotes, forwards, signatures, footers


@pytest.mark.parametrize("attribution", [
    "On Mon, 2 Mar 2026 at 09:00, Sales <sales@acme-pumps.example> wrote:",
    "On Mon, 2 Mar 2026 at 09:00, Sales Team <\nsales@acme-pumps.example> wrote:",
    "Am 02.03.2026 um 09:00 schrieb Sales <sales@acme-pumps.example>:",
    "Le lun. 2 mars 2026 à 09:00, Sales <sales@acme-pumps.example> a écrit :",
    "El lun, 2 mar 2026 a las 09:00, Sales (<sales@acme-pumps.example>) escribió:",
    "Il giorno lun 2 mar 2026 alle ore 09:00 Sales <sales@acme-pumps.example> ha scritto:",
    "Em seg., 2 de mar. de 2026 às 09:00, Sales <sales@acme-pumps.example> escreveu:",
    "Op ma 2 mrt. 2026 om 09:00 schreef Sales <sales@acme-pumps.example>:",
    "-----Original Message-----\nFrom: Sales",
    "-----Ursprüngliche Nachricht-----\nVon: Sales",
    "________________________________\nFrom: Sales <sales@acme-pumps.example>\nSent: Monday, March 2, 2026 9:00"
    "\nTo: Jane\nSubject: Quote",
    "Von: Sales <sales@acme-pumps.example>\nGesendet: Montag, 2. März 2026 09:00\nAn: Jane",
    "De : Sales <sales@acme-pumps.example>\nEnvoyé : lundi 2 mars 2026 09:00\nÀ : Jane",
])
def test_quoted_reply_is_cut(attribution: str) -> None:
    body = f"Yes, please send the offer.\n\n{attribution}\nThanks for your enquiry, here is our price list.\n"
    e = parse_email(plain(body, subject="Re: Quote"))
    assert e.body == "Yes, please send the offer."
    assert "price list" in e.quoted


def test_chevron_quotes_are_cut_and_interleaved_answers_stay() -> None:
    body = ("On Mon, 2 Mar 2026, Sales <sales@acme-pumps.example> wrote:\n> How many units?\n"
            "40 units.\n> Which voltage?\n400 V.\n")
    e = parse_email(plain(body, subject="Re: Quote"))
    assert e.body == "40 units.\n400 V."
    assert "> How many units?" in e.quoted and "> Which voltage?" in e.quoted


def test_name_only_attribution_before_chevron_quotes_is_cut() -> None:
    body = "Colin Nevin wrote:\n> Which modem?\n\nA 56k one.\n"
    e = parse_email(plain(body, subject="Re: modem"))
    assert (e.body, e.quoted) == ("A 56k one.", "Colin Nevin wrote:\n> Which modem?")


def test_name_only_attribution_without_quotes_stays() -> None:
    body = "As the engineer wrote:\nthe pump needs 400 V.\n"
    assert parse_email(plain(body)).body == body.strip()


def test_forward_quoted_with_chevrons_is_kept() -> None:
    body = "See below.\n\n> Wir brauchen 12 Pumpen.\n> Gruss Max\n"
    assert "> Wir brauchen 12 Pumpen." in parse_email(plain(body, subject="Fwd: Anfrage")).body


def test_footer_rules_never_erase_the_whole_message() -> None:
    body = "Slang of the day: blimp. To unsubscribe, send UNSUBSCRIBE to the list server."
    assert parse_email(plain(body)).body == body


@pytest.mark.parametrize("marker", [
    "---------- Forwarded message ---------",
    "Begin forwarded message:",
    "-------- Weitergeleitete Nachricht --------",
    "-------- Message transféré --------",
])
def test_forwarded_content_is_kept(marker: str) -> None:
    body = (f"Lead for you.\n\n{marker}\nFrom: Max <max@kunde.example>\nSubject: Anfrage\n\n"
            "Wir brauchen 12 Pumpen.\n\nOn Sun, 1 Mar 2026, Someone wrote:\n> older text\n")
    e = parse_email(plain(body, subject="Fwd: Anfrage"))
    assert "Lead for you." in e.body
    assert "Wir brauchen 12 Pumpen." in e.body
    assert "> older text" in e.body


def test_outlook_forward_is_kept() -> None:
    body = ("Please handle.\n\nFrom: Max <max@kunde.example>\nSent: Monday, March 2, 2026 9:00\n"
            "Subject: Anfrage\n\nWir brauchen 12 Pumpen.\n")
    assert "Wir brauchen 12 Pumpen." in parse_email(plain(body, subject="FW: Anfrage")).body


def test_quote_header_with_nothing_before_it_is_kept() -> None:
    body = "-----Original Message-----\nFrom: Max <max@kunde.example>\nSent: today\n\nWir brauchen 12 Pumpen.\n"
    assert "Wir brauchen 12 Pumpen." in parse_email(plain(body)).body


@pytest.mark.parametrize("closing", [
    "Best regards,", "Kind regards", "Mit freundlichen Grüßen", "Viele Grüße", "Cordialement",
    "Bien cordialement,", "Saludos", "Un saludo,", "Atentamente", "Cordiali saluti", "Distinti saluti",
    "Atenciosamente,", "Met vriendelijke groet,", "Thanks,", "Best regards, Jane",
])
def test_signature_after_a_closing_is_cut(closing: str) -> None:
    body = (f"We need 20 pumps for a water plant.\nDelivery to Lyon.\n\n{closing}\nJane Buyer\nHead of Purchasing\n"
            "Customer SA\n+33 1 23 45 67 89\n")
    e = parse_email(plain(body))
    assert e.body == "We need 20 pumps for a water plant.\nDelivery to Lyon."
    assert e.signature.startswith(closing)
    assert "Customer SA" in e.signature


def test_dash_dash_signature_and_mobile_footer() -> None:
    e = parse_email(plain("Call me back please.\n\n-- \nJane Buyer\nCustomer GmbH\n"))
    assert (e.body, e.signature) == ("Call me back please.", "Jane Buyer\nCustomer GmbH")
    mobile = parse_email(plain("Call me back please.\n\nSent from my iPhone\n"))
    assert (mobile.body, mobile.signature) == ("Call me back please.", "Sent from my iPhone")


def test_dash_dash_line_at_the_top_is_not_a_signature() -> None:
    body = "--\nWe need a quote for 8 pumps.\n"
    assert parse_email(plain(body)).body == body.strip()


def test_closing_followed_by_a_long_block_is_not_a_signature() -> None:
    body = "Intro.\n\nBest regards\n" + "".join(f"Line {i} of the actual request.\n" for i in range(15))
    e = parse_email(plain(body))
    assert "Line 14 of the actual request." in e.body
    assert e.signature == ""


def test_closing_word_inside_a_sentence_is_not_cut() -> None:
    body = "Thanks for the quick reply, we need a second offer.\nIt is for 30 units.\n"
    assert parse_email(plain(body)).body == body.strip()


def test_legal_footer_and_register_lines_are_removed() -> None:
    body = ("Bitte um Angebot für 10 Pumpen.\n\nMit freundlichen Grüßen\nJürgen Müller\nKunde GmbH\n"
            "Geschäftsführer: Hans Meier\nAmtsgericht München, HRB 12345\nSitz der Gesellschaft: München\n\n"
            "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen.\n"
            "Wenn Sie nicht der richtige Adressat sind, informieren Sie bitte sofort den Absender.\n\n"
            "Please consider the environment before printing this e-mail.\n")
    e = parse_email(plain(body))
    assert e.body == "Bitte um Angebot für 10 Pumpen."
    assert e.signature == "Mit freundlichen Grüßen\nJürgen Müller\nKunde GmbH"
    for gone in ("Geschäftsführer", "HRB", "vertrauliche", "Adressat", "environment"):
        assert gone not in e.body + e.signature


def test_english_disclaimer_after_the_message_is_removed() -> None:
    body = ("Please send a quote for 5 pumps.\n\nJohn\n\nThis e-mail and any attachments are confidential and "
            "intended solely for the addressee.\nIf you are not the intended recipient, delete it.\n")
    e = parse_email(plain(body))
    assert e.body == "Please send a quote for 5 pumps.\n\nJohn"


def test_external_sender_banner_is_removed_but_the_message_stays() -> None:
    body = ("CAUTION: This email originated from outside of the organization.\nDo not click links.\n\n"
            "We need a quote for 8 pumps.\n")
    assert parse_email(plain(body)).body == "We need a quote for 8 pumps."


def test_unsubscribe_footer_removed_except_in_list_mail() -> None:
    body = "Our new catalogue is out.\n\nTo unsubscribe from these mails click here.\n"
    assert "unsubscribe" not in parse_email(plain(body)).body
    listed = parse_email(plain(body, extra="List-Unsubscribe: <mailto:u@vendor.example>\r\n"))
    assert "To unsubscribe" in listed.body


def test_text_is_subject_and_truncated_body() -> None:
    e = parse_email(plain("abcdefghij" * 50, subject="Hello"), text_chars=120)
    assert e.text == "Hello\n\n" + ("abcdefghij" * 12)
    assert len(e.body) == 500


def test_the_subject_as_written_keeps_spacing_and_invisibles_for_the_reply() -> None:
    raw = ("From: a@example.com\r\nMessage-ID: <s@example.com>\r\n"
           "Subject: Quote  for\u200b =?utf-8?q?f=C3=BCr?=\r\n  pumps\u2028now\r\n\r\nHello\r\n").encode()
    email = parse_email(raw)
    assert email.subject_header == "Quote  for\u200b für  pumps now"  # unfolded, decoded, line break -> space
    assert email.subject == "Quote for für pumps now"  # the cleaned form rules and classifiers read
