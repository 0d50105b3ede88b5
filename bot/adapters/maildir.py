"""A local Maildir++ tree as the mailbox: the offline default, readable by any mail client.

Layout, with Gmail's semantics mapped onto plain files:
  INBOX         the root's new/ and cur/
  label "A/B"   the folder ".A.B" (Maildir++ naming, non-ASCII in IMAP modified UTF-7); a label on a message is a
                hard link of the same file there, so one message carries many labels
  archive       the INBOX link is removed; a message left without any link goes to ".Archive", never lost
  trash         the message moves to ".Trash" (recoverable, nothing is ever deleted)
  drafts        ".Drafts", flag D; ".Sent" and any other folder are read for threads as well
A message's provider_id is its maildir key (the file name without the ":2,flags" info), the same on every link.
Files are only renamed by mail clients (flag changes), never rewritten, so headers are cached per key forever.

Not thread-safe: one provider per process, used by one thread (the daemon's poll loop).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from bot.mime import header_date, read_headers, thread_key
from bot.models import MessageRef
from bot.ports import MailError, MailUnavailable, ThreadMessage

log = logging.getLogger(__name__)

INBOX = ""  # folder id of the root
ARCHIVE, TRASH, DRAFTS = ".Archive", ".Trash", ".Drafts"
_SYSTEM = {"inbox", "archive", "trash", "drafts", "sent", "junk"}
_IDS = re.compile(r"<[^<>\s]{1,500}>")
_FROM_LINE = re.compile(rb"^from[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_ANGLE = re.compile(r"<\s*([^<>\s]+@[^<>\s]+?)\s*>")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\*%.]")
_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
_HEADER_LIMIT = 1 << 20


def _mutf7_encode(text: str) -> str:
    """IMAP modified UTF-7 (RFC 3501 5.1.3), the folder-name encoding Dovecot and Courier use on disk."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _mutf7_decode(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        b64 = m.group(1).replace(",", "/")
        return "&" if not b64 else base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")

    try:
        return re.sub(r"&([A-Za-z0-9+,]*)-", one, text)
    except ValueError:  # not ours and not valid: show it as it is on disk
        return text


def folder_for_label(label: str) -> str:
    """The Maildir++ folder name of a label ("Triage/Lead" -> ".Triage.Lead"); ValueError for unsafe names."""
    parts = label.split("/")
    if not label.strip() or label.strip().lower() in _SYSTEM or any(not p.strip() for p in parts):
        raise ValueError(f"label {label!r} is empty, has an empty part or is a system folder name")
    bad = [p for p in parts if _FORBIDDEN.search(p) or p != p.strip()]
    if bad:  # "." separates levels in Maildir++; control characters and wildcards confuse mail clients
        raise ValueError(f"label {label!r}: a part contains '.', '\\', '*', '%', a control character or edge spaces")
    name = "." + ".".join(_mutf7_encode(p) for p in parts)
    if len(name.encode()) > 200:
        raise ValueError(f"label {label!r} is too long for a folder name")
    return name


def label_for_folder(folder: str) -> str:
    return "/".join(_mutf7_decode(p) for p in folder[1:].split("."))


@dataclass(frozen=True, slots=True)
class _Meta:
    when: datetime  # the Date header, or the file time when it has none
    has_date: bool
    thread_id: str
    from_addr: str
    source_id: str | None  # X-Triage-Source of a draft
    draft_thread: str | None  # X-Triage-Thread of a draft


def _file_time(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)


def _make_dirs(folder: Path) -> None:
    for sub in ("", "cur", "new", "tmp"):
        (folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _new_key() -> str:
    host = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:40] or "localhost"
    now = time.time()
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}R{secrets.token_hex(8)}.{host}"


def sender_of(header_block: bytes) -> str:
    """The lower-case From address, read before RFC 2047 decoding so an encoded name cannot pose as an address."""
    m = _FROM_LINE.search(header_block)
    if not m:
        return ""
    value = m.group(1).decode("latin-1")
    angles = _ANGLE.findall(_QUOTED.sub('""', value))
    addr = angles[0] if angles else parseaddr(value)[1]
    return addr.strip().lower() if "@" in addr and not any(c.isspace() for c in addr.strip()) else ""


def _header_block(path: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(65536)
        while len(data) < _HEADER_LIMIT and b"\n\n" not in data and b"\r\n\r\n" not in data:
            more = fh.read(65536)
            if not more:
                break
            data += more
    end = min((i for i in (data.find(b"\n\n"), data.find(b"\r\n\r\n")) if i >= 0), default=len(data))
    return data[:end] + b"\n\n"


class MaildirProvider:
    """MailProvider over a Maildir++ tree. One directory scan per list_new(); everything else is O(1) per message."""

    def __init__(self, root: Path, processed_label: str, max_message_bytes: int | None = None) -> None:
        """max_message_bytes: fetch() reads at most one byte more of a message (enough to tell it is larger)."""
        self.root = Path(root)
        self._read_limit = -1 if max_message_bytes is None else max_message_bytes + 1
        self.processed_folder = folder_for_label(processed_label)
        _make_dirs(self.root)
        self._links: dict[str, dict[str, str]] = {}  # key -> folder id -> current file path
        self._meta: dict[str, _Meta] = {}
        self._threads: dict[str, list[str]] | None = None
        self._scanned = False
        self._scanned_at = 0.0

    # ------------------------------------------------------------ index

    def _folder_dir(self, folder: str) -> Path:
        return self.root / folder if folder else self.root

    def _scan(self) -> None:
        links: dict[str, dict[str, str]] = {}
        folders = [INBOX] + sorted(e.name for e in os.scandir(self.root)
                                   if e.name.startswith(".") and e.name not in (".", "..") and e.is_dir())
        for folder in folders:
            for sub in ("new", "cur"):
                try:
                    entries = os.scandir(self._folder_dir(folder) / sub)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                with entries:
                    for e in entries:
                        if not e.name.startswith("."):
                            links.setdefault(e.name.split(":", 1)[0], {})[folder] = e.path
        if self._threads is not None and links.keys() != self._links.keys():
            self._threads = None
        self._links, self._scanned, self._scanned_at = links, True, time.monotonic()

    def _stale(self) -> bool:
        """Whether a rescan may help: bounds rescans to one a second however many files went missing."""
        return time.monotonic() - self._scanned_at > 1.0

    def _links_of(self, key: str) -> dict[str, str]:
        if key not in self._links:
            self._scan()
        links = self._links.get(key)
        if not links:
            raise MailError(f"message {key!r} is not in the maildir")
        return links

    def _read_meta(self, key: str) -> _Meta:
        meta = self._meta.get(key)
        if meta is not None:
            return meta
        for attempt in (1, 2):
            links = self._links.get(key) or {}
            path = links.get(INBOX) or next(iter(links.values()), None)
            try:
                if path is None:
                    raise FileNotFoundError(key)
                meta = self._parse_meta(key, path)
            except FileNotFoundError:
                if attempt == 1 and self._stale():
                    self._scan()  # renamed by a mail client since the last scan
                    continue
                break
            except OSError:
                break
            self._meta[key] = meta
            return meta
        # Unreadable right now: sort it last and let fetch() report the error; nothing is cached.
        return _Meta(datetime.now(UTC), False, f"<{key}@maildir>", "", None, None)

    @staticmethod
    def _parse_meta(key: str, path: str) -> _Meta:
        block = _header_block(path)
        try:
            h = read_headers(block)
            when = header_date(h.get("date"))
            refs = _IDS.findall(h.get("references", ""))
            reply_to = (_IDS.findall(h.get("in-reply-to", "")) or [""])[0]
            message_id = (_IDS.findall(h.get("message-id", "")) or [""])[0]
            tid = thread_key(message_id, reply_to, refs) or f"<{key}@maildir>"
            return _Meta(when=when or _file_time(path), has_date=when is not None, thread_id=tid,
                         from_addr=sender_of(block), source_id=h.get("x-triage-source") or None,
                         draft_thread=h.get("x-triage-thread") or None)
        except Exception as exc:  # no header may keep a message, or the rest of the inbox, from being listed
            log.warning("maildir: the headers of %s cannot be read (%s); it is listed by its file time",
                        key, type(exc).__name__)
            return _Meta(_file_time(path), False, f"<{key}@maildir>", "", None, None)

    def _thread_of(self, key: str) -> str:
        meta = self._read_meta(key)
        # Only our own drafts may name their thread; inbound mail cannot join a thread by a header.
        if meta.draft_thread and DRAFTS in self._links.get(key, {}):
            return meta.draft_thread
        return meta.thread_id

    def _thread_index(self) -> dict[str, list[str]]:
        if not self._scanned:
            self._scan()
        if self._threads is None:
            index: dict[str, list[str]] = {}
            for key in self._links:
                index.setdefault(self._thread_of(key), []).append(key)
            self._threads = index
        return self._threads

    def _labels(self, links: dict[str, str]) -> frozenset[str]:
        names = {label_for_folder(f) for f in links if f and f[1:].lower() not in _SYSTEM}
        return frozenset(names | ({"INBOX"} if INBOX in links else set()))

    def locate(self, provider_id: str) -> Path | None:
        """The file of a message (its INBOX link if it has one), for audit links."""
        links = self._links.get(provider_id) or {}
        path = links.get(INBOX) or next(iter(links.values()), None)
        return Path(path) if path else None

    # ------------------------------------------------------------ MailProvider

    def list_new(self, limit: int) -> list[MessageRef]:
        self._scan()
        keys = [k for k, links in self._links.items() if INBOX in links and self.processed_folder not in links]
        keys.sort(key=lambda k: (self._read_meta(k).when, k))
        return [MessageRef(provider_id=k, thread_id=self._thread_of(k), labels=self._labels(self._links[k]),
                           internal_date=self._read_meta(k).when) for k in keys[:limit]]

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes | Exception]]:
        rescanned = False
        for ref in refs:
            path = self.locate(ref.provider_id)
            try:
                try:
                    if path is None:
                        raise FileNotFoundError(ref.provider_id)
                    data = self._read(path)
                except FileNotFoundError:
                    # Renamed by a mail client (a flag change) since the scan: look again, at most once a second.
                    if rescanned and not self._stale():
                        raise
                    self._scan()
                    rescanned = True
                    path = self.locate(ref.provider_id)
                    if path is None:
                        raise
                    data = self._read(path)
            except FileNotFoundError:
                yield ref, MailError(f"message {ref.provider_id!r} is not in the maildir")
                continue
            except OSError as exc:  # the disk or its permissions, not this message: it waits, no attempt used
                yield ref, MailUnavailable(f"cannot read message {ref.provider_id!r}: {exc.strerror}")
                continue
            yield ref, data

    def _read(self, path: Path) -> bytes:
        with open(path, "rb") as fh:
            return fh.read(self._read_limit)

    def thread(self, thread_id: str) -> list[ThreadMessage]:
        keys = [k for k in self._thread_index().get(thread_id, []) if k in self._links]
        keys.sort(key=lambda k: (self._read_meta(k).when, k))
        out = []
        for k in keys:
            meta, is_draft = self._read_meta(k), DRAFTS in self._links[k]
            out.append(ThreadMessage(provider_id=k, from_addr=meta.from_addr,
                                     date=meta.when if meta.has_date else None, is_draft=is_draft,
                                     source_id=meta.source_id if is_draft else None))
        return out

    def ensure_labels(self, names: Iterable[str]) -> None:
        for name in names:
            folder = self.root / folder_for_label(name)
            _make_dirs(folder)
            marker = folder / "maildirfolder"
            if not marker.exists():
                os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o600))

    def modify(self, provider_id: str, add: Sequence[str], remove: Sequence[str], archive: bool) -> None:
        def folder(name: str) -> str:
            return INBOX if name.upper() == "INBOX" else folder_for_label(name)

        adding = {folder(n) for n in add}
        removing = {folder(n) for n in remove} | ({INBOX} if archive else set())
        self._retarget(provider_id, lambda have: (have | adding) - removing)

    def trash(self, provider_ids: Sequence[str]) -> None:
        for key in provider_ids:
            try:
                self._retarget(key, lambda have: {TRASH})
            except MailError:
                continue  # already gone (a person deleted it): there is nothing left to trash

    def create_draft(self, raw: bytes, thread_id: str) -> str:
        folder = self.root / DRAFTS
        key = _new_key()
        eol = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
        safe_thread = re.sub(r"[^\x21-\x7e]", "", thread_id).encode("ascii")
        tmp = folder / "tmp" / key
        try:
            _make_dirs(folder)
            _write_new(tmp, b"X-Triage-Thread: " + safe_thread + eol + raw)
            final = folder / "cur" / f"{key}:2,D"
            os.rename(tmp, final)
        except OSError as exc:
            raise MailUnavailable(f"cannot store the draft: {exc.strerror}") from exc
        self._links[key] = {DRAFTS: str(final)}
        if self._threads is not None:
            self._threads.setdefault(self._thread_of(key), []).append(key)
        return key

    def checkpoint(self) -> None:
        """Nothing to do: list_new() always reads the current state of the folders."""

    def ids_with_label(self, label: str) -> set[str]:
        """The keys in the label's folder, read from disk now (a person may have moved files since the scan)."""
        folder = self.root / folder_for_label(label)
        keys: set[str] = set()
        for sub in ("new", "cur"):
            try:
                with os.scandir(folder / sub) as entries:
                    keys.update(e.name.split(":", 1)[0] for e in entries if not e.name.startswith("."))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return keys

    # ------------------------------------------------------------ links

    def _retarget(self, key: str, target: Callable[[set[str]], set[str]]) -> None:
        """Give a message exactly the links target(current) names; new links first, so it is never unreachable."""
        for attempt in (1, 2):
            links = self._links_of(key)
            want = target(set(links)) or {ARCHIVE}
            try:
                for f in sorted(want - set(links)):
                    self._link(key, links, f)
                for f in sorted(set(links) - want):
                    os.unlink(links[f])
                    del links[f]
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise MailError(f"message {key!r} changed on disk while being labelled") from None
                self._scan()  # a mail client renamed a file (flag change) or a person removed a folder
            except OSError as exc:
                raise MailUnavailable(f"cannot label message {key!r}: {exc.strerror}") from exc

    def _link(self, key: str, links: dict[str, str], folder: str) -> None:
        src = links.get(INBOX) or next(iter(links.values()))
        sub, name = Path(src).parent.name, Path(src).name
        target_dir = self._folder_dir(folder)
        if not (target_dir / sub).is_dir():  # first use, or a person removed the folder
            _make_dirs(target_dir)
            if folder != INBOX:
                os.close(os.open(target_dir / "maildirfolder", os.O_WRONLY | os.O_CREAT, 0o600))
        dest = target_dir / sub / name
        try:
            os.link(src, dest)
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in _LINK_FALLBACK:
                raise
            shutil.copyfile(src, target_dir / "tmp" / name)  # no hard links here: a copy keeps the same key
            os.chmod(target_dir / "tmp" / name, 0o600)
            os.rename(target_dir / "tmp" / name, dest)
        links[folder] = str(dest)


def _seed_key(stem: str) -> str:
    return "seed." + (re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "message")


def seed_maildir(path: Path, seed_dir: Path) -> int:
    """Create the maildir with a copy of each seed_dir/*.eml in INBOX; does nothing if it exists. Returns the count."""
    path, seed_dir = Path(path), Path(seed_dir)
    if path.exists():
        return 0
    if not seed_dir.is_dir():
        raise FileNotFoundError(f"seed folder {seed_dir} does not exist")
    building = path.parent / f".{path.name}.seeding"
    if building.exists():  # left by an interrupted earlier run
        shutil.rmtree(building)
    files = sorted(seed_dir.glob("*.eml"))
    try:
        _make_dirs(building)
        for src in files:
            dest = building / "new" / _seed_key(src.stem)
            _write_new(dest, src.read_bytes())
            when = header_date(read_headers(_header_block(str(dest))).get("date"))
            if when is not None:  # mail clients show the file time as the arrival time
                with contextlib.suppress(OverflowError, ValueError, OSError):
                    os.utime(dest, (when.timestamp(), when.timestamp()))
    except OSError:
        shutil.rmtree(building, ignore_errors=True)  # a full disk gets its space back
        raise
    os.rename(building, path)  # all or nothing: a crash never leaves a half-seeded maildir that counts as existing
    return len(files)
