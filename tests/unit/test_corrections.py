"""Corrections by label moves (fake, Maildir, Gmail via its local fake) and by the audit sheet's column."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.gmail import GmailProvider
from bot.adapters.maildir import MaildirProvider, folder_for_label
from bot.corrections import CHECK_EVERY, CorrectionCheck, check_label_corrections, check_sheet_corrections
from bot.pipeline import Pipeline, Services
from bot.ports import AuthError, MailError
from bot.state import Ledger
from tests.contract.fake_gmail import FakeGmail, MemoryCursors
from tests.fake_mail import FakeMailProvider
from tests.fakes import Clock, FakeAuditSink, KeywordClassifier, make_config, raw_mail


class Bot:
    def __init__(self, tmp_path: Path, mail: Any = None) -> None:
        self.cfg = make_config(tmp_path)
        self.mail = mail if mail is not None else FakeMailProvider(processed_label=self.cfg.labels.processed)
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")
        self.clock = Clock()
        self.pipeline = Pipeline(Services(cfg=self.cfg, mail=self.mail, classifier=KeywordClassifier(),
                                          ledger=self.ledger, audit_sinks=[FakeAuditSink()], clock=self.clock))

    def label(self, category: str) -> str:
        return self.cfg.labels.categories[category]

    def move(self, pid: str, old: str, new: str) -> None:
        """What a person does in Gmail: take one label off, put another on."""
        labels = self.mail.messages[pid].labels
        labels.discard(old)
        labels.add(new)

    def check(self) -> list[tuple[str, str, str, bool]]:
        found = check_label_corrections(self.ledger, self.mail, self.cfg.labels)
        return [(c.provider_id, c.old, c.new, c.review) for c in found]


def test_a_category_label_the_bot_did_not_give_is_a_correction_recorded_once(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    lead = bot.mail.add(raw_mail("Quote please [lead:en:0.95]"))
    unsure = bot.mail.add(raw_mail("Pump broken? [support:en:0.5]"))
    bot.mail.add(raw_mail("Cheap watches [spam:en:0.99]"))
    bot.pipeline.run_cycle()
    assert bot.check() == []  # the bot's own labels are no corrections
    bot.move(lead, bot.label("lead"), bot.label("vendor"))
    bot.move(unsure, bot.cfg.labels.review, bot.label("support"))  # a person confirms a review
    assert sorted(bot.check()) == [(lead, "lead", "vendor", False), (unsure, "support", "support", True)]
    assert bot.check() == []
    rows = bot.ledger.corrections()
    assert sorted((r["provider_id"], r["old_category"], r["new_category"], r["source"]) for r in rows) == [
        (lead, "lead", "vendor", "label"), (unsure, "support", "support", "label")]


def test_rescuing_mail_from_the_spam_label_cancels_its_trash(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    rescued = bot.mail.add(raw_mail("Quote for 4 pumps [spam:en:0.95]"))
    junk = bot.mail.add(raw_mail("Cheap watches [spam:en:0.95]"))
    bot.pipeline.run_cycle()
    bot.mail.messages[rescued].labels.add(bot.label("lead"))  # added, the spam label left on
    assert bot.check() == [(rescued, "spam", "lead", False)]
    bot.clock.now += timedelta(hours=73)
    report = bot.pipeline.run_cycle()
    assert report.trashed == 1
    assert "TRASH" in bot.mail.labels_of(junk) and "TRASH" not in bot.mail.labels_of(rescued)


def test_the_poll_loop_checks_every_n_cycles(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    lead = bot.mail.add(raw_mail("Quote please [lead:en:0.95]"))
    bot.pipeline.run_cycle()  # the first cycle checks
    bot.move(lead, bot.label("lead"), bot.label("other"))
    for _ in range(CHECK_EVERY - 1):
        bot.pipeline.run_cycle()
    assert bot.ledger.corrections() == []
    bot.pipeline.run_cycle()
    assert [r["new_category"] for r in bot.ledger.corrections()] == ["other"]


def test_a_failing_check_never_stops_a_cycle_but_lost_authorization_does(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    bot.mail.add(raw_mail("Quote please [lead:en:0.95]"))
    bot.mail.fail_next("ids_with_label", MailError("label listing failed"))
    report = bot.pipeline.run_cycle()
    assert report.processed == 1 and report.failed == 0
    check = CorrectionCheck(every=1)
    bot.mail.fail_next("ids_with_label", AuthError("token revoked"))
    with pytest.raises(AuthError):
        check.tick(bot.ledger, bot.mail, bot.cfg.labels, [], 1500)


def test_mail_the_bot_never_decided_is_fetched_once_and_then_ignored(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    stranger = bot.mail.add(raw_mail("Old thread"), labels=(bot.label("lead"),))  # labelled by hand, never listed
    unmatched: set[str] = set()
    assert check_label_corrections(bot.ledger, bot.mail, bot.cfg.labels, unmatched) == []
    assert unmatched == {stranger}
    bot.mail.fail_next("fetch", RuntimeError("fetched a second time"))
    assert check_label_corrections(bot.ledger, bot.mail, bot.cfg.labels, unmatched) == []


# ---------------------------------------------------------------- Maildir: moved files, same or new name


def test_maildir_moves_keep_or_lose_the_file_name_and_are_found_either_way(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    root = tmp_path / "md"
    (root / "new").mkdir(parents=True)
    for name, subject in (("a", "Quote please [lead:en:0.95]"), ("b", "Broken pump [support:en:0.95]")):
        (root / "new" / name).write_bytes(raw_mail(subject))
    bot = Bot(tmp_path, MaildirProvider(root, processed_label=cfg.labels.processed))
    bot.pipeline.run_cycle()
    assert bot.mail.ids_with_label(bot.label("lead")) == {"a"}

    def files(label: str) -> list[Path]:
        return [p for sub in ("new", "cur") for p in (root / folder_for_label(label) / sub).iterdir()]

    [a] = files(bot.label("lead"))
    os.makedirs(root / folder_for_label(bot.label("vendor")) / "cur", exist_ok=True)
    a.rename(root / folder_for_label(bot.label("vendor")) / "cur" / a.name)  # a file manager's move
    [b] = files(bot.label("support"))
    other = root / folder_for_label(bot.label("other"))
    os.makedirs(other / "cur", exist_ok=True)
    shutil.copy(b, other / "cur" / "1767000000.M1P9.imap:2,S")  # an IMAP server's move: a new file name
    b.unlink()
    assert bot.mail.ids_with_label(bot.label("other")) == {"1767000000.M1P9.imap"}
    found = sorted(bot.check())
    assert found == [("1767000000.M1P9.imap", "support", "other", False), ("a", "lead", "vendor", False)]
    [moved] = [c for c in bot.ledger.corrections() if c["new_category"] == "other"]
    assert moved["message_id"] == bot.ledger.get("b").message_id  # type: ignore[union-attr]


# ---------------------------------------------------------------- Gmail: the real client against the local fake


@pytest.fixture
def gm() -> Iterator[FakeGmail]:
    with FakeGmail() as fake:
        yield fake


def test_gmail_lists_every_page_of_a_label(gm: FakeGmail, tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    provider = GmailProvider(gm.config(tmp_path), gm.credentials(), cfg.labels, MemoryCursors(), sleep=lambda s: None)
    provider.ensure_labels(cfg.labels.all())
    lead = str(gm.label_id(cfg.labels.categories["lead"]))
    wanted = {gm.add_message(subject=f"quote {i}", labels=("INBOX", lead)) for i in range(501)}
    gm.add_message(subject="not labelled")
    gm.reset_counters()
    assert provider.ids_with_label(cfg.labels.categories["lead"]) == wanted
    assert gm.quota["messages.list"] == 10  # two pages of 500, 5 units each
    gm.reset_counters()
    assert provider.ids_with_label("Triage/Nowhere") == set()
    assert gm.calls == []  # an unknown label costs nothing beyond the cached label list


# ---------------------------------------------------------------- the audit sheet's correction column


class SheetWithCorrections(FakeAuditSink):
    def __init__(self, corrections: list[tuple[str, str]]) -> None:
        super().__init__("sheets")
        self.corrections = corrections

    def read_corrections(self) -> list[tuple[str, str]]:
        return list(self.corrections)


def test_sheet_corrections_are_matched_by_message_id_and_checked(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pids = [bot.mail.add(raw_mail(s)) for s in ("Quote [lead:en:0.95]", "Invoice [accounting:en:0.95]",
                                                "Watches [spam:en:0.95]")]
    bot.pipeline.run_cycle()
    mids = [bot.ledger.get(p).message_id for p in pids]  # type: ignore[union-attr]
    sheet = SheetWithCorrections([(mids[0], "vendor"), (mids[1], "accounting"), (mids[2], "=HYPERLINK()"),
                                  ("<nobody@nowhere.example>", "lead")])
    found = check_sheet_corrections(bot.ledger, [FakeAuditSink(), sheet])
    assert [(c.provider_id, c.old, c.new, c.source) for c in found] == [(pids[0], "lead", "vendor", "sheet")]
    assert check_sheet_corrections(bot.ledger, [sheet]) == []
