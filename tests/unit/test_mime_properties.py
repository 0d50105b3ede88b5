"""parse_email must return a well-formed Email for any input whatsoever."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.mime import HEADER_CAP, html_to_text, parse_email, read_headers
from bot.models import Email

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEEDS = [
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@kunde.example>\r\nTo: sales@acme-pumps.example\r\n"
    b"Subject: =?iso-8859-1?q?Anfrage_f=FCr_Pumpen?=\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
    b"Message-ID: <s1@kunde.example>\r\nReferences: <r@x.example> <s0@kunde.example>\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Wir ben=F6tigen 20 Pumpen.\r\n\r\nMit freundlichen Gr=FC=DFen\r\nJ=FCrgen\r\n\r\n"
    b"Am 01.03.2026 schrieb Sales <sales@acme-pumps.example>:\r\n> Hallo\r\n",
    b'From: Lena <lena@buyer.example>\nSubject: RFQ\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"\n\n'
    b'--o\nContent-Type: multipart/alternative; boundary="i"\n\n--i\nContent-Type: text/plain; charset=utf-8\n\n'
    b"Please quote.\n--i\nContent-Type: text/html; charset=utf-8\n\n<p>Please <b>quote</b>&amp;</p><script>x</script>\n"
    b'--i--\n--o\nContent-Type: application/pdf; name="../../spec.pdf"\nContent-Disposition: attachment; '
    b'filename="../../spec.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--o\n'
    b"Content-Type: message/rfc822\n\nFrom: max@kunde.example\nSubject: inner\n\nforwarded text\n--o--\n",
    b"From: shop@vendor.example\nSubject: Offer\nContent-Type: text/html; charset=shift_jis\n"
    b"Content-Transfer-Encoding: base64\n\nPHA+g3yDk4N2PC9wPg==\n",
]

TOKENS = [b"\r\n", b"\n\n", b"--o\n", b"--o--", b"=?utf-8?b?", b"?=", b"Content-Type: multipart/mixed; boundary=o\n",
          b"Content-Type: message/rfc822\n\n", b"charset=x-unknown", b"\x00", b"\xff\xfe", b"<", b">", b":", b";",
          b"Content-Transfer-Encoding: base64\n", b"=\n", b"<script>", b"From: ", b"> ", b"-- \n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with structural damage: cut, duplicated, spliced or truncated pieces."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(raw)))
        j = draw(st.integers(i, min(len(raw), i + 200)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert_token", "insert_bytes", "truncate", "lf"]))
        if op == "delete":
            del raw[i:j]
        elif op == "duplicate":
            raw[i:i] = raw[i:j] * draw(st.integers(1, 20))
        elif op == "insert_token":
            raw[i:i] = draw(st.sampled_from(TOKENS))
        elif op == "insert_bytes":
            raw[i:i] = draw(st.binary(max_size=50))
        elif op == "truncate":
            del raw[i:]
        else:
            raw = bytearray(bytes(raw).replace(b"\r\n", b"\n"))
    return bytes(raw)


def check(email: Email, raw: bytes, text_chars: int) -> None:
    for name in ("provider_id", "thread_id", "message_id", "from_addr", "from_name", "reply_to", "subject",
                 "in_reply_to", "body", "text", "quoted", "signature"):
        assert isinstance(getattr(email, name), str), name
    assert len(email.text) <= HEADER_CAP + text_chars + 2
    assert email.text.startswith(email.subject)
    assert email.message_id.startswith("<") and email.message_id.endswith(">")
    assert email.thread_id
    assert email.raw_size == len(raw)
    for value in (email.subject, email.from_name, email.from_addr, *email.headers.values()):
        assert "\r" not in value and "\n" not in value
    assert all(isinstance(a, str) and "@" in a for a in (*email.to, *email.cc))
    assert all(isinstance(d, str) for d in email.defects)
    # the last-resort handler is for the stdlib parser's own limits, never for mistakes in the module
    assert not any(d.startswith("unparseable message") for d in email.defects)
    for attachment in email.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert not attachment.filename.startswith(".") and len(attachment.filename) <= 120
        assert 0 <= attachment.size <= len(raw)  # an estimate of the decoded bytes: never more than the mail
    assert email.date is None or email.date.utcoffset() == timedelta(0)


@SETTINGS
@given(st.binary(max_size=4000), st.integers(0, 300))
def test_arbitrary_bytes(raw: bytes, text_chars: int) -> None:
    check(parse_email(raw, text_chars=text_chars), raw, text_chars)
    assert isinstance(read_headers(raw), dict)


@SETTINGS
@given(mutated(), st.integers(0, 300))
def test_mutated_messages(raw: bytes, text_chars: int) -> None:
    check(parse_email(raw, text_chars=text_chars), raw, text_chars)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("<>/!-=&;#x\"' abcpdivscrthead\n")), max_size=300))
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)


def test_seeds_are_meaningful() -> None:
    """The mutation seeds parse cleanly, so the mutations start from real structure."""
    first, second, third = (parse_email(raw) for raw in SEEDS)
    assert "Wir benötigen 20 Pumpen." in first.body and first.defects == ()
    assert "Please quote." in second.body and "forwarded text" in second.body
    assert [(a.filename, a.size) for a in second.attachments] == [("spec.pdf", 9)]  # "%PDF-1.4\n"
    assert third.html_only and third.body == "ポンプ"
