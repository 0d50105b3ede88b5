"""Raw RFC 822 bytes -> Email: headers, charsets, MIME structure, HTML, quoted replies, signatures, footers.

parse_email never raises: whatever is wrong with a message ends up in Email.defects, and a message without usable
text goes to review. The stdlib feedparser builds the MIME tree with the compat32 policy and this module decodes
the headers itself: on real mail, the modern policy's header objects cost about 1 ms per message (ten times the
compat32 parse) and raise on some malformed headers, and the bot must read hundreds of messages a second.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

from bot.models import Attachment, Email, HeadersOnly

__all__ = ["clean_body", "header_date", "html_to_text", "parse_email", "read_headers", "safe_filename", "thread_key"]

HEADER_CAP = 998  # RFC 5322 line limit; also the subject cap
MAX_HEADERS = 200
MAX_ADDRESSES = 100
MAX_DEPTH = 20
MAX_PARTS = 200
MAX_TEXT = 200_000  # characters of decoded text read from all text parts together
MAX_HTML = 200_000  # characters of HTML source converted per part
MAX_DEFECTS = 20
MAX_LINKS = 60  # links kept per message for the phishing rules
ELIDE_ABOVE = 2_000_000  # bytes; larger messages have their big bodies shortened before parsing
ELIDE_RUN = 1_000_000  # a body longer than this is shortened...
ELIDE_KEEP = 2 * MAX_TEXT + 100_000  # ...to this much, more than a text part is ever read
HEADER_BYTES = 1_000_000  # a large message whose headers do not end within this is read only this far
FORWARD_MARK = "---------- Forwarded message ---------"

_PARSER = BytesParser(policy=policy.compat32)
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)
_CTRL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BODY_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines() splits on
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_MSGID = re.compile(r"<[^<>\s]{1,500}>")
_BARE_ID = re.compile(r"[^<>\s@]{1,250}@[^<>\s@]{1,250}")
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ANGLE_ADDR = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")
_FORWARD_SUBJECT = re.compile(r"^\s*(\[[^\]]{0,40}\]\s*)?(fwd?|wg|tr|rv|enc|doorst|fs|vs|i)\s*:", re.I)
_LIST_HEADERS = ("list-id", "list-unsubscribe")
_BULK = ("bulk", "list", "junk")
# The per-process token makes the marker impossible to forge from inside a message.
_ELIDE_TOKEN = secrets.token_hex(8)
_ELIDED = re.compile(r"\n=elided-" + _ELIDE_TOKEN + r" (\d+)=\s*$")
# Charsets mail clients declare that Python does not know, or knows under a narrower name.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "gb2312": "gb18030", "gbk": "gb18030",
    "iso-8859-8-i": "iso8859-8", "x-mac-roman": "mac_roman", "windows-874": "cp874", "x-euc-jp": "euc_jp",
}
_WESTERN = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})


# ---------------------------------------------------------------- charsets and headers


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """Python codec name of a declared charset, None when unknown or not a text encoding (base64, zlib...)."""
    name = charset.strip().strip("\"'").strip().lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except Exception:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text and a problem description; wrong or unknown charsets fall back to UTF-8, then cp1252."""
    name = _codec(charset) if charset else None
    problem = f"undecodable charset {charset.strip()[:40]}" if charset and name is None else None
    if name is not None and name not in _WESTERN:
        try:
            return data.decode(name), None
        except UnicodeDecodeError:
            return data.decode(name, "replace"), f"invalid {name} bytes"
        except Exception:  # a broken codec (e.g. a multibyte table) must not stop the message
            problem = f"undecodable charset {name}"
    try:
        return data.decode("utf-8"), problem
    except UnicodeDecodeError:
        pass
    if name == "utf-8" and problem is None:
        problem = "invalid utf-8 bytes, read as cp1252"
    # iso-8859-1 and us-ascii are read as cp1252, as browsers do: mailers mislabel smart quotes that way.
    return data.decode("cp1252", "replace"), problem


def _unescape_8bit(value: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes: read them as UTF-8, else cp1252."""
    if value.isascii():
        return value
    try:
        return _decode_bytes(value.encode("utf-8", "surrogateescape"), None)[0]
    except UnicodeEncodeError:  # a surrogate that no byte produced
        return value.encode("utf-8", "replace").decode("utf-8")


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    data = _NOT_B64.sub(b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; adjacent words in one charset are joined before decoding (split UTF-8)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_charset = ""
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        charset = m.group(1).split("*", 1)[0].lower()
        if (gap and not (pos and gap.isspace())) or (pending and charset != pending_charset):
            out.append(_decode_bytes(bytes(pending), pending_charset)[0])
            pending.clear()
            if not (pos and gap.isspace()):
                out.append(gap)
        pending += _word_bytes(m.group(2), m.group(3))
        pending_charset = charset
        pos = m.end()
    out.append(_decode_bytes(bytes(pending), pending_charset)[0])
    out.append(value[pos:])
    return "".join(out)


def _header_text(value: object, cap: int = HEADER_CAP) -> str:
    """One header value: unfolded, RFC 2047 decoded, without control characters (no header injection), capped."""
    text = _CTRL.sub(" ", _unescape_8bit(str(value)[: cap * 8]))
    text = _INVISIBLE.sub("", _CTRL.sub(" ", _decode_words(text)))
    return " ".join(text.split())[:cap]


def _header_as_written(raw_value: str) -> str:
    """A header unfolded and RFC 2047 decoded, and nothing else: spacing and invisible characters stay, so a
    reply can repeat it exactly (mail clients thread on it). Anything Python reads as a line break becomes a
    space (no header injection; the email package refuses such a header)."""
    return _LINE_BREAKS.sub(" ", _decode_words(re.sub(r"\r?\n(?=[ \t])", "", raw_value)))


def _header_map(items: Iterable[tuple[str, object]]) -> tuple[dict[str, str], dict[str, str]]:
    """(decoded, raw) first value of every header by lower-case name."""
    decoded: dict[str, str] = {}
    raw: dict[str, str] = {}
    for name, value in items:
        key = _CTRL.sub("", str(name)).strip().lower()[:100]
        if key and key not in decoded and len(decoded) < MAX_HEADERS:
            raw[key] = _unescape_8bit(str(value)[: HEADER_CAP * 8])
            decoded[key] = _header_text(raw[key])
    return decoded, raw


def read_headers(raw: bytes) -> dict[str, str]:
    """Decoded headers of a message without reading its body; {} for anything unparseable."""
    try:
        limit = min(len(raw), 1_000_000)
        ends = [i for i in (raw.find(b"\n\n", 0, limit), raw.find(b"\r\n\r\n", 0, limit)) if i >= 0]
        return _header_map(_HEADER_PARSER.parsebytes(raw[: min(ends, default=limit)]).raw_items())[0]
    except Exception:
        return {}


# ---------------------------------------------------------------- addresses, dates, ids


def _address(value: str) -> str:
    addr = _CTRL.sub("", value).strip().strip("<>").strip().lower()
    return addr[:254] if "@" in addr and not any(c.isspace() for c in addr) else ""


def _addresses(raw_value: str) -> tuple[str, ...]:
    found = (_address(a) for _, a in getaddresses([raw_value]))
    return tuple(a for a in found if a)[:MAX_ADDRESSES]


def _sender(raw_value: str) -> tuple[str, str]:
    """(address, display name) of the first mailbox; an angle address wins over an unquoted name that looks like one."""
    pairs = getaddresses([raw_value])
    angles = _ANGLE_ADDR.findall(_QUOTED_STRING.sub('""', raw_value))
    addr = _address(angles[0]) if angles else next((_address(a) for _, a in pairs if _address(a)), "")
    name = next((n for n, a in pairs if _address(a) == addr and n), "")
    return addr, _header_text(name, 200)


def header_date(value: str | None) -> datetime | None:
    """A Date header as an aware UTC datetime; None for anything unreadable or out of range (never raises).

    parsedate_to_datetime accepts year 9999 with a negative offset, which then overflows in astimezone().
    """
    try:
        parsed = parsedate_to_datetime(value or "")
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except Exception:
        return None


def _msg_ids(value: str) -> list[str]:
    """Ids in angle brackets; a bare id-looking token is bracketed."""
    return _MSGID.findall(value) or [f"<{bare}>" for bare in _BARE_ID.findall(value)[:1]]


def thread_key(message_id: str, in_reply_to: str, references: Iterable[str]) -> str:
    """The thread a message belongs to: the first id of References, else In-Reply-To, else its own Message-ID."""
    return next(iter(references), "") or in_reply_to or message_id


# ---------------------------------------------------------------- MIME tree


def _raw_payload(part: Message) -> object:
    """The payload as parsed: get_payload() would re-decode 8-bit text with the declared charset, losing bytes."""
    return part._payload  # type: ignore[attr-defined]


def _payload_bytes(part: Message, limit: int) -> bytes:
    """Transfer-decoded bytes of a leaf, reading about `limit` characters of it."""
    payload = _raw_payload(part)
    if not isinstance(payload, str):
        return b""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    window = payload[: limit * 2 if cte == "base64" else limit]
    if cte == "base64":
        data = _word_bytes("b", window)
    else:
        data = window.encode("utf-8", "surrogateescape")
        data = binascii.a2b_qp(data) if cte == "quoted-printable" else data
    if len(window) < len(payload) and b"\n" in data:
        data = data[: data.rindex(b"\n")]  # never end inside a multibyte character
    return data


def _after_blank_lines(raw: bytes) -> Iterator[int]:
    """Offsets just after each blank line; bytes.find, because a regex crawls through 30 MB of base64."""
    following = {sep: raw.find(sep) for sep in (b"\n\n", b"\n\r\n")}
    while any(p >= 0 for p in following.values()):
        found, sep = min((p, sep) for sep, p in following.items() if p >= 0)
        yield found + len(sep)
        following[sep] = raw.find(sep, found + 1)


def _elide_large_payloads(raw: bytes) -> bytes:
    """Shorten huge bodies before parsing, leaving a marker line with the number of bytes left out.

    The feedparser keeps every line of a part as a Python object and copies a long line several times: a 25 MB
    attachment would cost ~200 MB of memory and a 50 MB one-line text body ~450 MB, only to be counted (an
    attachment) or read for its first MAX_TEXT characters (a text). Bodies are found as the text between a blank
    line and the next line starting with "--" (a boundary); what is kept of each is more than is ever read.
    """
    if len(raw) <= ELIDE_ABOVE:
        return raw
    out: list[bytes] = []
    pos = end = 0
    for start in _after_blank_lines(raw):
        if start < pos:
            continue
        if end < start:
            found = raw.find(b"\n--", start)
            end = len(raw) if found < 0 else found
        if end - start < ELIDE_RUN:
            continue
        cut = raw.rfind(b"\n", start, start + ELIDE_KEEP) + 1 or start + ELIDE_KEEP
        newline = b"" if raw[cut - 1:cut] == b"\n" else b"\n"  # the marker is a line of its own
        out += [raw[pos:cut], newline + b"=elided-%s %d=" % (_ELIDE_TOKEN.encode(), end - cut)]
        pos = end
    out.append(raw[pos:])
    return b"".join(out)


def _bounded(raw: bytes, max_bytes: int | None) -> tuple[bytes, list[str]]:
    """The part of a message that is parsed, and what was left out: at most max_bytes of it, and of a large
    message without an end of its headers only the first HEADER_BYTES."""
    defects = []
    if max_bytes is not None and len(raw) > max_bytes:
        raw = raw[:max_bytes]
        defects.append(f"larger than {max_bytes:,} bytes: the rest was not read")
    if len(raw) > ELIDE_ABOVE:
        ends = [i for i in (raw.find(b"\n\n", 0, HEADER_BYTES), raw.find(b"\n\r\n", 0, HEADER_BYTES)) if i >= 0]
        if not ends:
            raw = raw[: raw.rfind(b"\n", 0, HEADER_BYTES) + 1 or HEADER_BYTES]
            defects.append(f"no end of the headers in the first {HEADER_BYTES:,} bytes: the rest was not read")
    return _elide_large_payloads(raw), defects


def _encoded_size(part: Message) -> int:
    """Decoded size of an attachment, estimated from its encoded form (never decoded)."""
    payload = _raw_payload(part)
    if not isinstance(payload, str):
        return 0
    elided = _ELIDED.search(payload[-100:])
    extra = int(elided.group(1)) if elided else 0
    payload = payload[: len(payload) - 100 + elided.start()] if elided else payload
    if str(part.get("content-transfer-encoding", "")).strip().lower() != "base64":
        return len(payload) + extra
    chars = len(payload) - payload.count("\n") - payload.count("\r")
    return (chars + extra * chars // max(1, len(payload))) * 3 // 4


def safe_filename(name: str) -> str:
    """A display name for an attachment: basename only, no control or bidi characters, no leading dots, <= 120."""
    name = _decode_words(_unescape_8bit(name[:2000]))
    name = " ".join("".join(c for c in name if unicodedata.category(c)[0] != "C").split())
    name = name.replace("\\", "/").rsplit("/", 1)[-1].replace(":", "_").strip().lstrip(".").strip()
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 119 - len(ext)] + dot + ext if dot and 0 < len(ext) <= 10 else name[:120]
    return name


class _Walker:
    """Collects text segments ("plain", "html", "forward") and attachments from a MIME tree, within limits."""

    def __init__(self) -> None:
        self.parts = 0
        self.budget = MAX_TEXT
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.links: list[tuple[str, str]] = []

    def defect(self, text: str) -> None:
        if text not in self.defects:
            self.defects.append(text)

    def segments(self, part: Message, depth: int) -> list[tuple[str, str]]:
        self.parts += 1
        if depth > MAX_DEPTH or self.parts > MAX_PARTS:
            self.defect("too many MIME parts or too deeply nested; the rest was not read")
            return []
        ctype = part.get_content_type()
        payload = _raw_payload(part)
        if isinstance(payload, list):
            children = [c for c in payload if isinstance(c, Message)]
            if ctype in ("message/rfc822", "message/global"):
                return self.forwarded(children[0], depth) if children else []
            if ctype == "multipart/alternative":
                return self.alternative(children, depth)
            if ctype.startswith("message/"):
                return []  # delivery-status and the like: machine data, not text
            return [seg for child in children for seg in self.segments(child, depth + 1)]
        if ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            return self.text(part, ctype == "text/html")
        if ctype.startswith("multipart/"):  # a multipart without a usable boundary: its source is all we have
            return self.text(part, False)
        self.attachments.append(Attachment(safe_filename(part.get_filename() or ""), ctype[:100],
                                           _encoded_size(part)))
        return []

    def alternative(self, children: list[Message], depth: int) -> list[tuple[str, str]]:
        for child in sorted(children, key=lambda c: c.get_content_type() != "text/plain"):
            segs = self.segments(child, depth + 1)
            if any(text.strip() for _, text in segs):
                if child.get_content_type() == "text/plain":  # the HTML twin is not read, but its links are
                    for twin in children:
                        if twin.get_content_type() == "text/html" and not isinstance(_raw_payload(twin), list):
                            self.scan_links(twin)
                return segs
        return []

    def scan_links(self, part: Message) -> None:
        """(visible text, target) of the anchors of an HTML part that is not otherwise read."""
        if len(self.links) >= MAX_LINKS:
            return
        html, _ = _decode_bytes(_payload_bytes(part, MAX_HTML), part.get_content_charset())
        self.links += html_links(html)[: MAX_LINKS - len(self.links)]

    def forwarded(self, inner: Message, depth: int) -> list[tuple[str, str]]:
        headers = _header_map(inner.raw_items())[0]
        intro = [f"{k.title()}: {headers[k]}" for k in ("from", "date", "subject", "to") if headers.get(k)]
        body, _ = _assemble(self.segments(inner, depth + 1))
        return [("forward", "\n".join([FORWARD_MARK, *intro, "", body]))]

    def text(self, part: Message, html: bool) -> list[tuple[str, str]]:
        if self.budget <= 0:
            return []
        data = _payload_bytes(part, MAX_HTML if html else self.budget)
        text, problem = _decode_bytes(data, part.get_content_charset())
        if problem:
            self.defect(problem)
        text, controls = _BODY_CTRL.subn("", text.replace("\r\n", "\n").replace("\r", "\n"))
        if controls + text.count("\ufffd") > max(8, len(text) // 20):
            self.defect("binary data in a text part; part skipped")
            return []
        if html and len(self.links) < MAX_LINKS:
            self.links += html_links(text)[: MAX_LINKS - len(self.links)]
        text = _INVISIBLE.sub("", html_to_text(text) if html else text)[: self.budget]
        self.budget -= len(text)
        return [("html" if html else "plain", text)]


def _assemble(segments: list[tuple[str, str]]) -> tuple[str, bool]:
    """(text, html_only): plain text where the sender wrote some, else the HTML's text; forwarded mail always."""
    has_plain = any(kind == "plain" and text.strip() for kind, text in segments)
    wanted = "plain" if has_plain else "html"
    text = "\n\n".join(text for kind, text in segments if kind in (wanted, "forward"))
    return text, not has_plain and any(kind == "html" and text.strip() for kind, text in segments)


# ---------------------------------------------------------------- HTML -> text


_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe"})
_BLOCK_TAGS = frozenset({
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "hr",
    "section", "article", "header", "footer", "pre", "dd", "dt", "dl", "form", "address", "center", "main", "nav",
    "aside", "figure", "figcaption", "tbody", "thead", "tfoot",
})
_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n{3,}")


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skip = 0  # an unclosed <head> must not swallow the whole message
        elif tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img" and not self.skip:
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:  # <br/> is one line break; <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(_WS.sub(" ", data))


_ANCHOR = re.compile(r"<a\b[^>]*?\bhref\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>", re.I | re.S)


def html_links(html: str) -> list[tuple[str, str]]:
    """(visible text, href) of the anchors of an HTML document, entities decoded, tags in the text dropped."""
    out = []
    for m in _ANCHOR.finditer(html[:MAX_HTML]):
        href = unescape(m.group(1) or m.group(2) or m.group(3) or "").strip()
        text = " ".join(unescape(_TAG.sub(" ", m.group(4))).split())
        if href:
            out.append((text[:200], href[:500]))
        if len(out) >= MAX_LINKS:
            break
    return out


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: no scripts or styles, blocks on their own lines, entities decoded."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # html.parser gives up on some broken markup; a crude tag strip is still readable
        text = unescape(_TAG.sub(" ", html))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


# ---------------------------------------------------------------- quotes, signatures, footers


QUOTED_CAP = 4_000
SIGNATURE_CAP = 1_000
_FORWARD_LINE = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|mensaje reenviado"
    r"|messaggio inoltrato|mensagem encaminhada|doorgestuurd bericht)\s*-{2,}"
    r"|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:|d[ée]but du message r[ée]exp[ée]di[ée]\s*:"
    r"|inicio del mensaje reenviado\s*:|inizio messaggio inoltrato\s*:|in[íi]cio da mensagem reencaminhada\s*:"
    r"|begin doorgestuurd bericht\s*:)", re.I | re.M)
_SEPARATOR_LINE = re.compile(
    r"^\s*-{2,}\s*(?:original message|urspr[üu]ngliche nachricht|original-nachricht|message d'origine"
    r"|mensaje original|messaggio originale|mensagem original|oorspronkelijk bericht)\s*-{2,}\s*$", re.I)
# "On <date>, <name> wrote:" and its translations; two cheap tests instead of one backtracking pattern.
_ATTRIBUTION_START = re.compile(r"^\s*(?:on|am|le|el|il|em|op)\s", re.I)
_ATTRIBUTION_VERB = re.compile(
    r"\s(?:wrote|writes|schrieb|a [ée]crit|escribi[óo]|ha scritto|escreveu|schreef)\b", re.I)
# "Jane Doe wrote:" without a date: a quote header only when quoted lines follow.
_LOOSE_ATTRIBUTION = re.compile(r"^.{0,150}" + _ATTRIBUTION_VERB.pattern + r"\s*:\s*$", re.I)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:from|von|de|van|da|od)\s?\*?\s?:\s*\S", re.I)
_OUTLOOK_SENT = re.compile(
    r"^\s*\*?(?:sent|date|gesendet|datum|envoy[ée]|enviado(?: el)?|fecha|inviato|data|verzonden|verstuurd)"
    r"\s?\*?\s?:\s*\S", re.I)
# Every quote header or quoted line matches this; most mail does not, and skips the per-line tests.
_QUOTE_HINT = re.compile(
    r"^[ \t]*(?:>|-{2,}|\*?(?:from|von|de|van|da|od)\s?\*?\s?:)|" + _ATTRIBUTION_VERB.pattern, re.I | re.M)
# A line that can start a quote header; one test per line before the specific ones.
_QUOTE_START = re.compile(r"^\s*(?:-{2,}|(?:on|am|le|el|il|em|op)\s|\*?(?:from|von|de|van|da|od)\s?\*?\s?:)", re.I)
_RULE_LINE = re.compile(r"^\s*[-_=*~]{3,}\s*$")
_LEGAL_LINE = re.compile(
    r"\b(?:gesch[äa]ftsf[üu]hr(?:er|erin|ende|ung)|vorstand|aufsichtsrat\w*|registergericht|amtsgericht"
    r"|handelsregister|sitz der gesellschaft|sitz|ust-?id(?:-?nr)?\.?|steuer-?nr\.?"
    r"|vat (?:reg\w*\.? )?(?:no|number|id)\.?"
    r"|company (?:reg\w*\.? )?(?:no|number)\.?|registered office|siret|rcs|capital social)\s*:"
    r"|\bHR[AB]\s*\d+|\bsitz der gesellschaft\b|\bregistered in (?:england|scotland|ireland)\b"
    r"|\bamtsgericht\s+[\w-]+(?:\s+[\w-]+)?\s*(?:[,;|]|$)", re.I)
_DISCLAIMER = re.compile(
    r"this (?:e-?mail|message|communication)(?: and any (?:attachments?|files)[^.]{0,40})? (?:is|are|may be|may contain"
    r"|contains?) (?:strictly )?(?:confidential|privileged|intended)"
    r"|the information (?:contained )?in this (?:e-?mail|message|communication)"
    r"|confidentiality (?:notice|note|statement)|^\W*disclaimer\W*$|^\W*disclaimer:"
    r"|diese (?:e-?mail|nachricht)[^.]{0,60}vertraulich"
    r"|(?:ce|le pr[ée]sent) (?:message|courriel|e-?mail)[^.]{0,80}confidenti"
    r"|este (?:mensaje|correo)[^.]{0,80}confidencial"
    r"|(?:questo messaggio|questa e-?mail)[^.]{0,80}(?:riservat|confidenzial)"
    r"|(?:esta mensagem|este e-?mail)[^.]{0,80}confidencia"
    r"|(?:dit (?:e-?mail)?bericht|deze e-?mail)[^.]{0,80}vertrouwelijk"
    r"|consider the environment before printing|denken sie an die umwelt|pensez [àa] l'environnement"
    r"|antes de imprimir|prima di stampare"
    r"|originated from outside (?:of )?(?:the|your|our) (?:organi[sz]ation|company)",
    re.I)
# Every line a footer pattern matches contains one of these (lower-case) words.
_FOOTER_WORDS = (
    "gesch", "vorstand", "aufsichtsrat", "gericht", "handelsregister", "sitz", "ust-id", "ustid", "ust id",
    "steuer", "vat ", "company reg", "company no", "company number", "registered", "siret", "rcs", "capital social",
    "hrb", "hra ", "confidenti", "privileged", "intended", "information contained", "information in this",
    "disclaimer", "vertraulich", "riservat", "vertrouwelijk", "environment", "umwelt", "environnement", "imprimir",
    "stampare", "originated from outside",
)
_UNSUBSCRIBE_WORDS = (
    "unsubscribe", "abmelden", "abbestellen", "sabonner", "sinscri", "de baja", "iscrizione", "disiscriviti",
    "descadastr", "uitschrijven", "afmelden",
)
_UNSUBSCRIBE_RX = (r"unsubscribe|abmelden|abbestellen|d[ée]sabonner|d[ée]sinscri\w*|darse de baja|darte de baja"
                   r"|cancellare l'iscrizione|disiscriviti|descadastr\w*|uitschrijven|afmelden")
_UNSUBSCRIBE = re.compile(r"\b(?:" + _UNSUBSCRIBE_RX + r")\b", re.I)
# The way out of a mailing that bulk senders must print at its end (CAN-SPAM, the EU's ePrivacy rules). With a
# link, or in the impersonal form a list footer uses, it marks mail sent to a list even when no header says so.
_BULK_FOOTER = re.compile(
    r"\b(?:you are|you're) receiving this (?:e-?mail|message|newsletter|mailing)\b"
    r"|\bto be removed from (?:our|this|the|future) (?:\w+ )?(?:list|mailings?)\b"
    r"|\b(?:manage|update) (?:your )?(?:e-?mail |subscription )?(?:preferences|subscriptions?)\b"
    r"|\bcancelar (?:la |su |a )?(?:suscripci[óo]n|inscri[çc][ãa]o|subscri[çc][ãa]o)\b"
    r"|\bannulla(?:re)? (?:l'|la )?iscrizione\b|\b(?:" + _UNSUBSCRIBE_RX + r"|opt[- ]out)\b", re.I)
_LINK = re.compile(r"https?://|\bwww\.|\[|\b(?:click|here|hier|ici|aqu[ií]|qui|klik|link)\b", re.I)
FOOTER_LINES = 25
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|warmest|kindest|with kind|thanks and|thanks &|many thanks and)? ?regards|best wishes"
    r"|yours (?:sincerely|truly|faithfully)|mit (?:freundlichen|besten|herzlichen|sonnigen) gr[üu](?:ß|ss)en"
    r"|(?:viele|beste|liebe|freundliche|herzliche) gr[üu](?:ß|ss)e|(?:bien )?cordialement|bien [àa] vous"
    r"|(?:sinc[èe]res |meilleures )?salutations(?: distingu[ée]es)?|saludos(?: cordiales)?|un (?:cordial )?saludo"
    r"|atentamente|cordiali saluti|distinti saluti|un saluto|atenciosamente|(?:com os )?(?:melhores )?cumprimentos"
    r"|abra[çc]os|(?:met )?(?:vriendelijke|hartelijke) groet(?:en)?)[\s,.!]*(?:[^\W\d_][\w .'-]{0,40})?$"
    r"|^(?:thanks|thank you|many thanks|best|cheers|sincerely|gr[üu](?:ß|ss)e|mfg|merci|gracias|grazie"
    r"|obrigad[oa]|groeten|saluti)[\s,.!]*$", re.I)
_SENT_FROM = re.compile(
    r"^(?:sent from my |sent from (?:outlook|mail) for |get outlook for |von meinem .{0,40}gesendet"
    r"|gesendet von (?:meinem )?|envoy[ée] (?:de|depuis) (?:mon |l'application )|enviado desde mi "
    r"|inviato da(?:l mio)? |enviado do meu |verzonden (?:vanaf|met) (?:mijn )?)", re.I)


def _attribution(lines: list[str], i: int) -> int:
    """How many lines the quote header starting at line i spans (0: none)."""
    line = lines[i][:500]
    if not _QUOTE_START.match(line):
        return 0
    if _SEPARATOR_LINE.match(line):
        return 1
    if _ATTRIBUTION_START.match(line):
        for n, text in ((1, line), (2, line + " " + (lines[i + 1][:300] if i + 1 < len(lines) else ""))):
            if text.rstrip().endswith(":") and _ATTRIBUTION_VERB.search(text):
                return n
    if _OUTLOOK_FROM.match(line):
        following = [text for text in lines[i + 1 : i + 8] if text.strip()][:4]
        return 1 if any(_OUTLOOK_SENT.match(text) for text in following) else 0
    return 0


def _trim_rules(lines: list[str]) -> list[str]:
    while lines and (not lines[-1].strip() or _RULE_LINE.match(lines[-1])):
        lines = lines[:-1]
    return lines


def _cut_quotes(lines: list[str], forwarded: bool) -> tuple[list[str], list[str], list[str]]:
    """(own text, quoted text, forwarded text kept in the body)."""
    if not _QUOTE_HINT.search("\n".join(lines)):
        return lines, [], []
    own: list[str] = []
    quoted: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        chevron = line.lstrip().startswith(">") and not forwarded  # a forward quoted with ">" is the payload
        n = 0 if chevron else _attribution(lines, i)
        loose = not chevron and n == 0 and bool(_LOOSE_ATTRIBUTION.match(line[:200]))
        if chevron or (n == 0 and not loose):
            (quoted if chevron else own).append(line)
            i += 1
            continue
        n = n or 1
        following = next((text for text in lines[i + n :] if text.strip()), "")
        if following.lstrip().startswith(">") and not forwarded:  # interleaved or bottom posting: answers stay
            quoted += lines[i : i + n]
            i += n
            continue
        if loose:
            own.append(line)
            i += 1
            continue
        if forwarded or not any(text.strip() for text in own):
            return own, quoted, lines[i:]  # a forward, or nothing of the sender's own before it: keep it all
        return _trim_rules(own), quoted + lines[i:], []
    return own, quoted, []


def _strip_footers(lines: list[str], list_mail: bool) -> list[str]:
    """Drop company-register lines, disclaimers and (outside list mail) unsubscribe lines, but never everything."""
    out = _without_footers(lines, list_mail)
    return out if any(line.strip() for line in out) else lines


def _without_footers(lines: list[str], list_mail: bool) -> list[str]:
    low_text = "\n".join(lines).lower()
    candidates = _FOOTER_WORDS if list_mail else _FOOTER_WORDS + _UNSUBSCRIBE_WORDS
    words = [word for word in candidates if word in low_text]  # substring tests are far cheaper than patterns
    if not words:
        return lines
    out: list[str] = []
    skipping = False
    for i, line in enumerate(lines):
        if skipping and line.strip():
            continue
        skipping = False
        probe = line[:500]
        low = probe.lower()
        if not any(word in low for word in words):
            out.append(line)
        elif len(line) <= 300 and (_LEGAL_LINE.search(probe)
                                   or (not list_mail and len(lines) - i <= 10 and _UNSUBSCRIBE.search(probe))):
            continue
        elif not _DISCLAIMER.search(probe):
            out.append(line)
        elif any(text.strip() for text in out):
            return _trim_rules(out)  # after the message: a footer, and the rest of it follows
        else:
            skipping = True  # before the message: a banner paragraph ("originated from outside...")
    return out


def bulk_footer(lines: list[str], html: bool = False) -> str:
    """The unsubscribe line among the last lines of a sender's own text, or "": a sign of mail sent to a list.
    A person asking in passing to be taken off a list writes no link and no "you are receiving this"; in an
    HTML-only mail the words are the text of a link (the conversion to text keeps no addresses)."""
    tail = [line.strip() for line in lines if line.strip()][-FOOTER_LINES:]
    for i, line in enumerate(tail):
        found = _BULK_FOOTER.search(line[:500])
        if found and (html or not _UNSUBSCRIBE.match(found.group(0)) and not found.group(0).lower().startswith("opt")
                      or _LINK.search(" ".join(tail[i:i + 2])[:600])):
            return line[:200]
    return ""


def _cut_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """(text, signature): cut at a "-- " line, or at a closing followed by a short block."""
    content = [i for i, line in enumerate(lines) if line.strip()]
    for i in content[1:]:
        if lines[i] == "--" and len(content) - content.index(i) <= 25:  # "-- " minus the stripped space
            return _trim_rules(lines[:i]), lines[i + 1 :]
    for i in content[-12:]:
        if i == content[0] or len(lines[i]) > 80:
            continue
        remainder = sum(1 for line in lines[i + 1 :] if line.strip())
        text = lines[i].strip()
        if remainder <= 10 and (_CLOSING.match(text) or _SENT_FROM.match(text)):
            return lines[:i], lines[i:]
    return lines, []


def clean_body(text: str, forwarded: bool, list_mail: bool, html: bool = False) -> tuple[str, str, str, str]:
    """(body, quoted, signature, bulk footer line) of a message's text; forwarded content stays in the body."""
    lines = [line.rstrip() for line in text.split("\n")]
    marker = _FORWARD_LINE.search(text)
    fwd = text.count("\n", 0, marker.start()) if marker else len(lines)
    own, quoted, kept = _cut_quotes(lines[:fwd], forwarded)
    footer = bulk_footer(own, html)  # the sender's own text only: a quoted newsletter says nothing about this mail
    own, signature = _cut_signature(_strip_footers(own, list_mail))
    tail = _strip_footers(kept + lines[fwd:], list_mail)
    body = _BLANKS.sub("\n\n", "\n".join([*own, "", *tail])).strip()
    return body, "\n".join(quoted).strip()[:QUOTED_CAP], "\n".join(signature).strip()[:SIGNATURE_CAP], footer


# ---------------------------------------------------------------- the message


_BARE_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)


def _text_links(text: str, room: int) -> tuple[tuple[str, str], ...]:
    """Bare URLs written in the text: what the reader sees is where it goes."""
    if room <= 0 or "http" not in text and "www." not in text:
        return ()
    return tuple((u, u) for u in _BARE_URL.findall(text[:MAX_TEXT])[:room])


def _synthetic_id(raw: bytes) -> str:
    return f"<{hashlib.sha256(raw).hexdigest()}@triage.invalid>"


def parse_email(raw: bytes, provider_id: str = "", thread_id: str = "", text_chars: int = 1500,
                max_bytes: int | None = None) -> Email:
    """Parse and clean one raw message; never raises (problems are listed in Email.defects).

    Only the first max_bytes of the message are read (raw_size still says how many there were). Of a message
    handed out as HeadersOnly there are only the headers; raw_size is the whole message's size.
    """
    try:
        data = raw if isinstance(raw, bytes) else bytes(raw)
    except Exception:
        data = b""
    try:
        email = _parse(data, provider_id, thread_id, max(0, text_chars), max_bytes)
    except Exception as exc:  # the last line of defence: one message must never stop a cycle
        headers = read_headers(data)
        subject = headers.get("subject", "")
        message_id = _synthetic_id(data)
        email = Email(provider_id=provider_id, thread_id=thread_id or message_id, message_id=message_id,
                      from_addr="", from_name="", reply_to="", to=(), cc=(), subject=subject, date=None,
                      in_reply_to="", references=(), headers=headers, body="", text=subject + "\n\n", quoted="",
                      raw_size=len(data), defects=(f"unparseable message ({type(exc).__name__})",))
    if not isinstance(raw, HeadersOnly):
        return email
    unread = f"{raw.size:,} bytes: only its headers were read"
    return replace(email, raw_size=raw.size, headers_only=True,
                   defects=(unread, *(d for d in email.defects if d != "no text body"))[:MAX_DEFECTS])


def _parse(raw: bytes, provider_id: str, thread_id: str, text_chars: int, max_bytes: int | None) -> Email:
    defects: list[str] = ["empty message"] if not raw or raw.isspace() else []
    read, left_out = _bounded(raw, max_bytes)
    defects += left_out
    msg = _PARSER.parsebytes(read)
    headers, raw_headers = _header_map(msg.raw_items())
    from_addr, from_name = _sender(raw_headers.get("from", ""))
    if not from_addr:
        defects.append("no From address")
    ids = _msg_ids(headers.get("message-id", ""))
    message_id = ids[0] if ids else _synthetic_id(raw)
    if not ids:
        defects.append("no Message-ID")
    date = header_date(headers["date"]) if headers.get("date") else None
    if headers.get("date") and date is None:
        defects.append("unparseable Date")
    in_reply_to = next(iter(_msg_ids(headers.get("in-reply-to", ""))), "")
    references = tuple(_MSGID.findall(raw_headers.get("references", "")))[:MAX_ADDRESSES]

    walker = _Walker()
    text, html_only = _assemble(walker.segments(msg, 0))
    defects += walker.defects
    defects += sorted({f"malformed MIME: {type(d).__name__}" for d in msg.defects})
    if not text.strip():
        defects.append("no text body")
    subject = headers.get("subject", "")
    list_mail = any(h in headers for h in _LIST_HEADERS) or headers.get("precedence", "").lower() in _BULK
    body, quoted, signature, footer = clean_body(text, bool(_FORWARD_SUBJECT.match(subject)), list_mail, html_only)
    return Email(
        provider_id=provider_id,
        thread_id=thread_id or thread_key(message_id, in_reply_to, references),
        message_id=message_id,
        from_addr=from_addr,
        from_name=from_name,
        reply_to=_sender(raw_headers["reply-to"])[0] if "reply-to" in raw_headers else "",
        to=_addresses(raw_headers.get("to", "")),
        cc=_addresses(raw_headers.get("cc", "")),
        subject=subject,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        headers=headers,
        body=body,
        text=subject + "\n\n" + body[:text_chars],
        quoted=quoted,
        signature=signature,
        bulk_footer=footer,
        html_only=html_only,
        attachments=tuple(walker.attachments),
        raw_size=len(raw),
        links=tuple(walker.links) + _text_links(body, MAX_LINKS - len(walker.links)),
        defects=tuple(defects[:MAX_DEFECTS]),
        subject_header=_header_as_written(raw_headers.get("subject", "")),
    )
