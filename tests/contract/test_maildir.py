"""The mail contract on MaildirProvider and FakeMailProvider, plus what only a maildir on disk can show."""

from __future__ import annotations

import errno
import mailbox
import os
import re
import shutil
import stat
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from bot.adapters.maildir import MaildirProvider, folder_for_label, label_for_folder, seed_maildir
from bot.ports import MailError, MailProvider, MailUnavailable
from tests.contract.mail_contract import (
    LABELS,
    LEAD,
    OTHER,
    PROCESSED,
    REPLY,
    ROOT,
    Factory,
    MailProviderContract,
    draft_for,
    make_mail,
)
from tests.fake_mail import FakeMailProvider

DEMO = Path(__file__).resolve().parents[2] / "demo" / "inbox"


def _files_of(root: Path, key: str) -> dict[str, Path]:
    """Folder name ("" for INBOX) -> the file of this message in it, read straight from disk."""
    out = {}
    for folder in [root, *(p for p in root.iterdir() if p.name.startswith(".") and p.is_dir())]:
        for sub in ("new", "cur"):
            for f in (folder / sub).glob("*") if (folder / sub).is_dir() else []:
                if f.name.split(":", 1)[0] == key:
                    out["" if folder == root else folder.name] = f
    return out


def _store(root: Path, raws: Sequence[bytes], start: int = 0) -> list[str]:
    keys = []
    for i, raw in enumerate(raws, start):
        key = f"170000{i:04d}.M1P1.test"
        (root / "new").mkdir(parents=True, exist_ok=True)
        (root / "new" / key).write_bytes(raw)
        keys.append(key)
    return keys


class TestMaildirContract(MailProviderContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Factory:
        def build(raws: Sequence[bytes]) -> MailProvider:
            _store(tmp_path / "md", raws)
            return MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
        return build

    def deliver(self, provider: MailProvider, raw: bytes) -> None:
        assert isinstance(provider, MaildirProvider)
        _store(provider.root, [raw], start=9000)

    def mark_read(self, provider: MailProvider, provider_id: str) -> None:
        assert isinstance(provider, MaildirProvider)
        os.rename(provider.root / "new" / provider_id, provider.root / "cur" / f"{provider_id}:2,S")

    def delete_label(self, provider: MailProvider, name: str) -> None:
        assert isinstance(provider, MaildirProvider)
        shutil.rmtree(provider.root / folder_for_label(name))

    def labels_of(self, provider: MailProvider, provider_id: str) -> set[str]:
        assert isinstance(provider, MaildirProvider)
        folders = _files_of(provider.root, provider_id)
        return {label_for_folder(f) for f in folders if f and f not in (".Archive", ".Trash", ".Drafts")}

    def in_trash(self, provider: MailProvider, provider_id: str) -> bool:
        assert isinstance(provider, MaildirProvider)
        return ".Trash" in _files_of(provider.root, provider_id)


class TestFakeContract(MailProviderContract):
    @pytest.fixture
    def make(self) -> Factory:
        def build(raws: Sequence[bytes]) -> MailProvider:
            fake = FakeMailProvider(processed_label=PROCESSED)
            for raw in raws:
                fake.add(raw)
            return fake
        return build

    def deliver(self, provider: MailProvider, raw: bytes) -> None:
        assert isinstance(provider, FakeMailProvider)
        provider.add(raw)

    def mark_read(self, provider: MailProvider, provider_id: str) -> None:
        assert isinstance(provider, FakeMailProvider)
        provider.mark_read(provider_id)

    def delete_label(self, provider: MailProvider, name: str) -> None:
        assert isinstance(provider, FakeMailProvider)
        provider.delete_label(name)

    def labels_of(self, provider: MailProvider, provider_id: str) -> set[str]:
        assert isinstance(provider, FakeMailProvider)
        return provider.labels_of(provider_id) - {"INBOX", "UNREAD", "TRASH", "DRAFT"}

    def in_trash(self, provider: MailProvider, provider_id: str) -> bool:
        assert isinstance(provider, FakeMailProvider)
        return "TRASH" in provider.labels_of(provider_id)


# ---------------------------------------------------------------- the fake's own controls


def test_fake_modify_with_a_label_nobody_created_fails_like_gmail() -> None:
    fake = FakeMailProvider(processed_label=PROCESSED)
    pid = fake.add(ROOT)
    with pytest.raises(Exception, match="unknown label"):
        fake.modify(pid, [LEAD], [], archive=True)
    assert "INBOX" in fake.labels_of(pid)


def test_fake_failure_after_the_effect_lands() -> None:
    fake = FakeMailProvider(processed_label=PROCESSED)
    root = fake.add(ROOT)
    fake.fail_next("create_draft", RuntimeError("connection reset"), after=True)
    with pytest.raises(RuntimeError):
        fake.create_draft(draft_for("<root@customer.example>"), fake.messages[root].thread_id)
    assert [m.source_id for m in fake.thread(fake.messages[root].thread_id) if m.is_draft] == [
        "<root@customer.example>"]
    assert fake.create_draft(draft_for("<x@y.example>"), "t")  # the injected failure was used up


# ---------------------------------------------------------------- on disk


@pytest.fixture
def md(tmp_path: Path) -> MaildirProvider:
    _store(tmp_path / "md", [ROOT, OTHER, REPLY])
    provider = MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
    provider.ensure_labels(LABELS)
    return provider


def _ref(provider: MaildirProvider, msg_id: str) -> str:
    for ref, raw in provider.fetch(provider.list_new(100)):
        if isinstance(raw, bytes) and f"Message-ID: {msg_id}".encode() in raw:
            return ref.provider_id
    raise AssertionError(msg_id)


def test_a_label_is_a_hard_link_in_a_folder_any_client_can_open(md: MaildirProvider) -> None:
    key = _ref(md, "<root@customer.example>")
    md.modify(key, [PROCESSED, LEAD], [], archive=False)
    files = _files_of(md.root, key)
    assert set(files) == {"", ".Triage.Processed", ".Triage.Lead"}
    assert len({f.stat().st_ino for f in files.values()}) == 1 and files[""].stat().st_nlink == 3
    box = mailbox.Maildir(md.root, create=False)
    assert {"Triage.Lead", "Triage.Processed", "Triage.Review"} <= set(box.list_folders())
    assert box.get_folder("Triage.Lead")[key]["Message-ID"] == "<root@customer.example>"
    assert (md.root / ".Triage.Lead" / "maildirfolder").exists()


def test_archive_without_labels_keeps_the_file_in_archive(md: MaildirProvider) -> None:
    key = _ref(md, "<other@elsewhere.example>")
    md.modify(key, [], [], archive=True)
    files = _files_of(md.root, key)
    assert set(files) == {".Archive"} and md.locate(key) == files[".Archive"]
    # made on first use, and marked as a folder as every Maildir++ subfolder is; the root is no subfolder
    assert (md.root / ".Archive" / "maildirfolder").is_file() and not (md.root / "maildirfolder").exists()
    md.modify(key, [LEAD], [], archive=False)  # labelled later: still one message
    assert set(_files_of(md.root, key)) == {".Archive", ".Triage.Lead"}


def test_trash_keeps_exactly_one_copy_in_the_trash_folder(md: MaildirProvider) -> None:
    key = _ref(md, "<other@elsewhere.example>")
    md.modify(key, [PROCESSED, LEAD], [], archive=True)
    md.trash([key])
    files = _files_of(md.root, key)
    assert set(files) == {".Trash"} and files[".Trash"].stat().st_nlink == 1
    assert md.locate(key) == files[".Trash"]
    assert b"<other@elsewhere.example>" in files[".Trash"].read_bytes()


def test_draft_is_a_private_file_flagged_d_that_names_its_thread(md: MaildirProvider) -> None:
    raw = draft_for("<root@customer.example>")
    draft_id = md.create_draft(raw, "<root@customer.example>\r\nBcc: thief@evil.example")
    path = md.root / ".Drafts" / "cur" / f"{draft_id}:2,D"
    data = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first, rest = data.split(b"\r\n", 1)
    assert first == b"X-Triage-Thread: <root@customer.example>Bcc:thief@evil.example"
    assert rest == raw
    assert b"\nBcc:" not in data
    assert not list((md.root / ".Drafts" / "tmp").iterdir())


def test_inbound_mail_cannot_join_a_thread_by_header(tmp_path: Path) -> None:
    sneaky = make_mail("<sneaky@evil.example>", "x@evil.example", "hi", 27,
                       extra="X-Triage-Thread: <root@customer.example>\r\nX-Triage-Source: <root@customer.example>")
    _store(tmp_path / "md", [ROOT, sneaky])
    provider = MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
    root = next(r for r in provider.list_new(10) if r.thread_id == "<root@customer.example>")
    thread = provider.thread(root.thread_id)
    assert [m.provider_id for m in thread] == [root.provider_id]
    assert [(m.is_draft, m.source_id) for m in provider.thread("<sneaky@evil.example>")] == [(False, None)]


def test_renames_and_deletions_by_people_between_calls(md: MaildirProvider) -> None:
    key = _ref(md, "<root@customer.example>")
    refs = md.list_new(10)
    os.rename(md.root / "new" / key, md.root / "cur" / f"{key}:2,RS")  # a mail client marks it read + answered
    shutil.rmtree(md.root / ".Triage.Lead")  # and a person deletes a label folder
    ref = next(r for r in refs if r.provider_id == key)
    raw = next(iter(md.fetch([ref])))[1]
    assert isinstance(raw, bytes) and b"<root@customer.example>" in raw
    md.modify(key, [LEAD], [], archive=True)
    files = _files_of(md.root, key)
    assert set(files) == {".Triage.Lead"} and files[".Triage.Lead"].name == f"{key}:2,RS"


def test_non_ascii_label_names_use_imap_utf7_and_round_trip(md: MaildirProvider) -> None:
    label = "Triage/Anfragen Ü&Co"
    assert folder_for_label(label) == ".Triage.Anfragen &ANw-&-Co"
    key = _ref(md, "<root@customer.example>")
    md.modify(key, [label], [], archive=False)
    ref = next(r for r in md.list_new(10) if r.provider_id == key)
    assert label in ref.labels


@pytest.mark.parametrize("name", ["..", "../etc", "/etc", "Triage/../../x", "a//b", "Triage/", "Tri\nage", "Tri\x00age",
                                  "x.y", "Trash", "inbox", "drafts", "a\\b", "*", " ", "Triage/ Lead", "x" * 300])
def test_hostile_label_names_are_rejected_before_touching_the_disk(md: MaildirProvider, name: str) -> None:
    key = _ref(md, "<root@customer.example>")
    before = sorted(p.name for p in md.root.parent.rglob("*"))
    says_which = re.escape(repr(name))  # the ops person must learn which label of the config is wrong
    with pytest.raises(ValueError, match=says_which):
        md.ensure_labels([name])
    if name != "inbox":  # modify() takes "INBOX" as Gmail's system label: add = back to the inbox
        with pytest.raises(ValueError, match=says_which):
            md.modify(key, [name], [], archive=True)
    assert sorted(p.name for p in md.root.parent.rglob("*")) == before


def test_files_are_private_to_the_bot(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "01-root.eml").write_bytes(ROOT)
    old = os.umask(0o022)
    try:
        seed_maildir(tmp_path / "state" / "md", seed)
        provider = MaildirProvider(tmp_path / "state" / "md", processed_label=PROCESSED)
        provider.ensure_labels(LABELS)
        key = provider.list_new(1)[0].provider_id
        provider.modify(key, [PROCESSED], [], archive=True)
        provider.create_draft(draft_for("<root@customer.example>"), "<root@customer.example>")
        provider.trash([key])  # the trash folder is made on first use
    finally:
        os.umask(old)
    entries = [tmp_path / "state" / "md", *(tmp_path / "state" / "md").rglob("*")]
    assert len(entries) > 20
    for p in entries:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))


def test_seed_maildir_is_idempotent_and_its_keys_are_stable(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    for name, raw in (("01-root.eml", ROOT), ("02 other!.eml", OTHER), ("03-reply.eml", REPLY)):
        (seed / name).write_bytes(raw)
    (seed / "README.md").write_text("not mail")
    target = tmp_path / "md"
    assert seed_maildir(target, seed) == 3
    keys = sorted(p.name for p in (target / "new").iterdir())
    assert keys == ["seed.01-root", "seed.02_other_", "seed.03-reply"]
    root_file = target / "new" / "seed.01-root"
    assert root_file.read_bytes() == ROOT
    assert root_file.stat().st_mtime == parsedate_to_datetime("Mon, 23 Nov 2026 09:00:00 +0000").timestamp()
    MaildirProvider(target, processed_label=PROCESSED).ensure_labels(LABELS)
    assert seed_maildir(target, seed) == 0
    assert sorted(p.name for p in (target / "new").iterdir()) == keys
    shutil.rmtree(target)
    assert seed_maildir(target, seed) == 3
    assert sorted(p.name for p in (target / "new").iterdir()) == keys
    assert not [p for p in tmp_path.iterdir() if "seeding" in p.name]
    with pytest.raises(FileNotFoundError):
        seed_maildir(tmp_path / "other", tmp_path / "missing")


def test_a_cycle_over_a_thousand_messages_processes_each_once(tmp_path: Path) -> None:
    raws = [make_mail(f"<m{i}@bulk.example>", f"sender{i}@bulk.example", f"Quote {i}", 1 + i % 28, i % 24)
            for i in range(1000)]
    _store(tmp_path / "md", raws)
    provider = MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
    provider.ensure_labels(LABELS)
    refs = provider.list_new(2000)
    for ref, raw in provider.fetch(refs):
        assert isinstance(raw, bytes)
        provider.modify(ref.provider_id, [PROCESSED, LEAD], [], archive=True)
        provider.thread(ref.thread_id)
    assert len(refs) == 1000 and provider.list_new(2000) == []
    # its speed is a figure of bench/component_speed.py


# ---------------------------------------------------------------- the bundled demo inbox


def test_the_demo_inbox_seeds_lists_and_threads(tmp_path: Path) -> None:
    count = seed_maildir(tmp_path / "md", DEMO)
    assert count >= 32
    provider = MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
    refs = provider.list_new(1000)
    assert len(refs) == count
    dates = [r.internal_date for r in refs]
    assert all(d is not None and (d.year, d.month) == (2026, 11) and 9 <= d.day <= 16 for d in dates)
    assert dates == sorted(dates)  # type: ignore[type-var]
    by_key = {r.provider_id: r for r in refs}
    first, reply, follow = (by_key[k] for k in ("seed.19-thread-customer-first", "seed.20-thread-bob-replies",
                                                 "seed.21-thread-customer-follow-up"))
    assert first.thread_id == reply.thread_id == follow.thread_id
    thread = provider.thread(first.thread_id)
    assert [m.from_addr for m in thread] == ["pieter@vandijk-brewery.example", "bob@acme-pumps.example",
                                             "pieter@vandijk-brewery.example"]
    assert len({r.thread_id for r in refs}) == count - 2  # only the three thread files share one
    senders = {r.provider_id: provider.thread(r.thread_id)[0].from_addr for r in refs}
    assert all("@" in a for a in senders.values())
    assert senders["seed.02-lead-en-web-form"] == "no-reply@formmailer.example"
    assert b"Reply-To: Priya Raman" in (DEMO / "02-lead-en-web-form.eml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        (DEMO / "07-lead-de-latin1-umlauts.eml").read_bytes().decode("utf-8")


# ---------------------------------------------------------------- labels, drafts and people on disk


def test_a_label_may_fill_a_folder_name_of_200_bytes_and_no_more(md: MaildirProvider) -> None:
    longest = "x" * 199  # ".xxx…": 200 bytes
    assert folder_for_label(longest) == "." + longest
    md.ensure_labels([longest])
    assert (md.root / ("." + longest) / "cur").is_dir()
    with pytest.raises(ValueError, match="too long"):
        folder_for_label(longest + "x")


def test_the_inbox_label_puts_an_archived_message_back_in_the_inbox(md: MaildirProvider) -> None:
    key = _ref(md, "<other@elsewhere.example>")
    md.modify(key, [PROCESSED], [], archive=True)
    assert key not in {r.provider_id for r in md.list_new(10)}
    md.modify(key, ["INBOX"], [PROCESSED], archive=False)
    assert set(_files_of(md.root, key)) == {""}
    assert key in {r.provider_id for r in md.list_new(10)}


def test_a_message_a_mail_client_renamed_since_the_listing_is_still_labelled(md: MaildirProvider) -> None:
    key = _ref(md, "<root@customer.example>")
    os.rename(md.root / "new" / key, md.root / "cur" / f"{key}:2,S")  # marked read after the bot listed it
    md.modify(key, [LEAD], [], archive=True)
    files = _files_of(md.root, key)
    assert set(files) == {".Triage.Lead"} and files[".Triage.Lead"].name == f"{key}:2,S"


def test_a_message_a_mail_client_keeps_renaming_fails_its_label_change_loudly(
        md: MaildirProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _ref(md, "<root@customer.example>")
    real_link = os.link

    def a_client_renames_it_first(src: str, dst: str, **kwargs: bool) -> None:
        path = Path(src)
        os.rename(path, md.root / "cur" / f"{key}:2,{'RS' if path.name.endswith(':2,S') else 'S'}")
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", a_client_renames_it_first)
    with pytest.raises(MailError, match=f"{re.escape(key)}.*changed on disk"):
        md.modify(key, [LEAD], [], archive=True)
    assert set(_files_of(md.root, key)) == {""}  # still in the inbox, for the next cycle


def test_trashing_goes_on_past_a_message_a_person_already_deleted(md: MaildirProvider) -> None:
    gone, kept = _ref(md, "<root@customer.example>"), _ref(md, "<other@elsewhere.example>")
    os.unlink(md.root / "new" / gone)
    md.trash([gone, kept])
    assert set(_files_of(md.root, kept)) == {".Trash"} and _files_of(md.root, gone) == {}


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EMLINK])
def test_where_hard_links_are_refused_a_label_is_a_private_copy_under_the_same_key(
        md: MaildirProvider, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    key = _ref(md, "<root@customer.example>")

    def refuse(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)  # another file system, or the file's link count is full
    md.modify(key, [LEAD], [], archive=True)
    files = _files_of(md.root, key)
    assert set(files) == {".Triage.Lead"} and files[".Triage.Lead"].read_bytes() == ROOT
    assert stat.S_IMODE(files[".Triage.Lead"].stat().st_mode) == 0o600
    assert not list((md.root / ".Triage.Lead" / "tmp").iterdir())
    assert md.locate(key) == files[".Triage.Lead"]


def test_a_disk_error_while_labelling_is_an_outage_and_the_message_stays_in_the_inbox(
        md: MaildirProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _ref(md, "<root@customer.example>")

    def broken_disk(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "link", broken_disk)
    with pytest.raises(MailUnavailable, match=f"{re.escape(key)}.*{os.strerror(errno.EIO)}"):
        md.modify(key, [LEAD], [], archive=True)
    assert set(_files_of(md.root, key)) == {""}
    assert not list((md.root / ".Triage.Lead" / "tmp").iterdir())


def test_a_draft_that_cannot_be_stored_is_an_outage_that_says_so(md: MaildirProvider) -> None:
    (md.root / ".Drafts").write_bytes(b"")  # a file where the drafts folder belongs
    with pytest.raises(MailUnavailable, match="cannot store the draft"):
        md.create_draft(draft_for("<root@customer.example>"), "<root@customer.example>")


@pytest.mark.parametrize("raw", [
    draft_for("<root@customer.example>").replace(b"\r\n", b"\n"),  # a draft written with bare LF
    draft_for("<root@customer.example>") + b"> quoted from a mail with bare LF\n",
], ids=["lf", "crlf-with-a-bare-lf-in-the-body"])
def test_the_thread_header_of_a_draft_ends_its_line_as_the_draft_header_does(md: MaildirProvider, raw: bytes) -> None:
    draft_id = md.create_draft(raw, "<root@customer.example>")
    eol = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    data = (md.root / ".Drafts" / "cur" / f"{draft_id}:2,D").read_bytes()
    assert data == b"X-Triage-Thread: <root@customer.example>" + eol + raw


def test_a_message_without_a_date_header_has_no_date_in_its_thread(tmp_path: Path) -> None:
    undated = b"From: Jane Roe <jane@customer.example>\r\nMessage-ID: <undated@customer.example>\r\n" \
              b"Subject: Pumps\r\n\r\nHello\r\n"
    _store(tmp_path / "md", [undated])
    provider = MaildirProvider(tmp_path / "md", processed_label=PROCESSED)
    [ref] = provider.list_new(10)
    [message] = provider.thread(ref.thread_id)
    assert (message.provider_id, message.from_addr, message.date) == (ref.provider_id, "jane@customer.example", None)


def test_ids_with_label_reads_the_folder_as_people_and_their_tools_left_it(md: MaildirProvider) -> None:
    cur = md.root / ".Triage.Spam" / "cur"  # made by a mail client that creates cur/ only
    cur.mkdir(parents=True)
    (cur / "1700000001.M1P1.test:2,S").write_bytes(OTHER)
    (cur / "1700000002.M1P1.test:2,S:x").write_bytes(OTHER)  # the key ends at the first colon, as when listing
    (cur / ".1700000003.M1P1.test.Xa12").write_bytes(OTHER)  # a copy in progress (rsync, a backup tool)
    assert md.ids_with_label("Triage/Spam") == {"1700000001.M1P1.test", "1700000002.M1P1.test"}
