"""The mail contract on MaildirProvider and FakeMailProvider, plus what only a maildir on disk can show."""

from __future__ import annotations

import mailbox
import os
import shutil
import stat
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from bot.adapters.maildir import MaildirProvider, folder_for_label, label_for_folder, seed_maildir
from bot.ports import MailProvider
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
    assert set(_files_of(md.root, key)) == {".Archive"}
    md.modify(key, [LEAD], [], archive=False)  # labelled later: still one message
    assert set(_files_of(md.root, key)) == {".Archive", ".Triage.Lead"}


def test_trash_keeps_exactly_one_copy_in_the_trash_folder(md: MaildirProvider) -> None:
    key = _ref(md, "<other@elsewhere.example>")
    md.modify(key, [PROCESSED, LEAD], [], archive=True)
    md.trash([key])
    files = _files_of(md.root, key)
    assert set(files) == {".Trash"} and files[".Trash"].stat().st_nlink == 1
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
    assert [m.is_draft for m in provider.thread("<sneaky@evil.example>")] == [False]


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
    with pytest.raises(ValueError):
        md.ensure_labels([name])
    if name != "inbox":  # modify() takes "INBOX" as Gmail's system label: add = back to the inbox
        with pytest.raises(ValueError):
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
