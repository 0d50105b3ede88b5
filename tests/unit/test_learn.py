"""`run.py learn`: corrections of a systematic mistake are learnt without hurting the gold test split."""

from __future__ import annotations

import json
from pathlib import Path

from bot.bootstrap import build_classifier
from bot.classify.offline import Model, base_examples
from bot.corrections import check_label_corrections
from bot.evaluate import GOLD_DIR, evaluate, read_labels
from bot.learn import LearnResult, ModelReloader, corrected_examples, learn, reloading, render
from bot.models import CATEGORIES
from bot.pipeline import Pipeline, Services
from bot.state import Ledger
from tests.fake_mail import FakeMailProvider
from tests.fakes import make_config

# Recruitment agencies offering candidates: the shipped model reads them as job applications, while for the
# company they are suppliers selling a service (vendor). A mistake it makes every time.
AGENCIES = [("Laura Kent", "Talentbridge Recruiting", "design engineer"),
            ("Tom Baxter", "Hire Partners", "sales engineer"),
            ("Nina Holm", "Nordic Staffing", "service technician"),
            ("Oliver Grant", "Peak Personnel", "project manager"),
            ("Sara Weiss", "Engineering Search", "buyer"),
            ("Mark Dunn", "Prime Talent", "quality manager"),
            ("Julia Ross", "Apex Recruitment", "field engineer"),
            ("Peter Lang", "Bluewater HR", "controller")]


def agency_mail(i: int) -> bytes:
    name, firm, role = AGENCIES[i]
    domain = firm.lower().replace(" ", "-") + ".example"
    body = (f"Hello,\n\nI am a recruitment consultant at {firm}. We have an excellent candidate for your {role} "
            f"position: {5 + i} years of experience in pump design, available from next month. Our fee is {20 + i}% "
            f"of the first annual salary. Shall I send you the anonymised CV?\n\nBest regards,\n{name}\n{firm}")
    return (f"From: {name} <{name.split()[0].lower()}@{domain}>\r\nTo: sales@acme-pumps.example\r\n"
            f"Subject: Candidate for your {role} position\r\nDate: Mon, 2 Mar 2026 09:{i:02d}:00 +0000\r\n"
            f"Message-ID: <candidate{i}@{domain}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            ).encode()


def agency_set(folder: Path) -> Path:
    folder.mkdir()
    for i in range(len(AGENCIES)):
        (folder / f"agency{i}.eml").write_bytes(agency_mail(i))
    (folder / "labels.jsonl").write_text("".join(
        json.dumps({"file": f"agency{i}.eml", "category": "vendor", "split": "train" if i < 5 else "test"}) + "\n"
        for i in range(len(AGENCIES))), encoding="utf-8")
    return folder


class Inbox:
    """The bot with the real offline classifier on an in-memory mailbox."""

    def __init__(self, tmp_path: Path) -> None:
        self.cfg = make_config(tmp_path)
        self.mail = FakeMailProvider(processed_label=self.cfg.labels.processed)
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")

    def run(self) -> None:
        Pipeline(Services(cfg=self.cfg, mail=self.mail, classifier=build_classifier(self.cfg, self.ledger),
                          ledger=self.ledger)).run_cycle()

    def correct(self, pid: str, category: str) -> None:
        """A person moves the message from the label the bot gave to the right one."""
        row = self.ledger.get(pid)
        assert row is not None
        labels = self.mail.messages[pid].labels
        labels -= {self.cfg.labels.review, self.cfg.labels.categories[row.category]}
        labels.add(self.cfg.labels.categories[category])


def test_corrected_mistakes_are_learnt_and_the_gold_test_split_keeps_its_accuracy(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    folder = agency_set(tmp_path / "agencies")
    before = evaluate(inbox.cfg, folder)
    assert before.accuracy is not None and before.accuracy <= 0.25, "the scenario needs a mistake the model makes"

    pids = [inbox.mail.add(agency_mail(i)) for i in range(5)]  # the first five arrive; the rest stay unseen
    inbox.run()
    wrong = [p for p in pids if inbox.ledger.get(p).category != "vendor"]  # type: ignore[union-attr]
    for pid in wrong:
        inbox.correct(pid, "vendor")
    result = learn(inbox.cfg, inbox.ledger, inbox.mail)

    assert result.saved, result.reason
    assert result.new_corrections == result.corrections == result.used == len(wrong) >= 4
    assert result.base == len(base_examples(GOLD_DIR, "train"))
    assert result.before and result.after and result.before.accuracy and result.after.accuracy
    assert result.after.accuracy >= result.before.accuracy - 0.01  # at most one point lost on the gold test split
    assert result.after.destructive == 0
    after = evaluate(inbox.cfg, folder)  # the saved model, as the bot will load it
    assert after.accuracy == 1.0, after.wrong  # the corrected five and the three it never saw
    text = render(result)
    print(f"\nagency mail: accuracy {before.accuracy} before, {after.accuracy} after\n{text}")
    assert "model saved" in text
    again = learn(inbox.cfg, inbox.ledger, inbox.mail)  # nobody corrected anything since
    assert not again.saved and again.before is None and again.reason.startswith("no new correction")


def test_a_model_that_would_do_worse_is_not_installed_unless_forced(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    leads = [lab.file for lab in read_labels(GOLD_DIR) if lab.split == "train" and lab.category == "lead"]
    pids = [inbox.mail.add((GOLD_DIR / name).read_bytes()) for name in leads]
    inbox.run()
    for pid in pids:  # somebody files every lead of a busy week under "other" by mistake
        if inbox.ledger.get(pid).category != "other":  # type: ignore[union-attr]
            inbox.correct(pid, "other")
    refused = learn(inbox.cfg, inbox.ledger, inbox.mail, runs=2)  # fewer runs: only the verdict matters here
    assert not refused.saved and "would" in refused.reason
    assert not inbox.cfg.classify.model_path.exists()
    assert "NOT saved" in render(refused)


def test_without_corrections_nothing_is_trained_unless_forced(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    result = learn(inbox.cfg, inbox.ledger, inbox.mail)
    assert result == LearnResult(reason="no new correction since the last learn (0 corrected message(s) already "
                                        "learnt from)")
    assert result.before is None  # nothing was scored or trained
    assert "nothing to retrain (--force retrains anyway)" in render(result)
    assert not inbox.cfg.classify.model_path.exists()
    forced = learn(inbox.cfg, inbox.ledger, inbox.mail, force=True)
    assert forced.saved and forced.base > 100 and forced.used == 0
    assert Model.load(inbox.cfg.classify.model_path).weights


def test_corrected_mail_the_mailbox_no_longer_has_is_counted_not_fatal(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    pids = [inbox.mail.add(agency_mail(i)) for i in range(2)]
    inbox.run()
    for pid in pids:
        inbox.correct(pid, "other")
    assert len(check_label_corrections(inbox.ledger, inbox.mail, inbox.cfg.labels)) == 2
    inbox.ledger.add_correction("gone", "<gone@x.example>", "lead", "other", "cli")
    examples, missing = corrected_examples(inbox.ledger, inbox.mail, inbox.cfg.classify.text_chars)
    assert missing == ["gone"]
    assert sorted((e.provider_id, category) for e, category in examples) == [(p, "other") for p in pids]


def test_the_reloader_notices_a_replaced_model_file(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    reloader = ModelReloader(path)
    assert not reloader.changed()
    model = Model(prior=[0.0] * 8, weights={})
    model.save(path)
    assert reloader.changed() and not reloader.changed()
    model.save(path)  # the same content again, but a new file: learn ran again
    assert reloader.changed()


def test_the_poll_loop_loads_a_new_model_before_its_next_cycle(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)
    path = inbox.cfg.classify.model_path
    reloader = ModelReloader(path)  # made before the classifier, as the daemon does
    services = Services(cfg=inbox.cfg, mail=inbox.mail, classifier=build_classifier(inbox.cfg, inbox.ledger),
                        ledger=inbox.ledger)
    cycle = reloading(inbox.cfg, services, Pipeline(services).run_cycle, reloader)
    lead = inbox.mail.add(agency_mail(0).replace(b"Candidate for your", b"Quote for 3 pumps for our"))
    cycle()
    assert inbox.ledger.get(lead).category != "other"  # type: ignore[union-attr]
    # learn saves a model that calls everything "other"
    Model(prior=[10.0 if c == "other" else 0.0 for c in CATEGORIES], weights={}).save(path)
    later = inbox.mail.add(agency_mail(1).replace(b"Candidate for your", b"Quote for 3 pumps for our"))
    cycle()
    assert inbox.ledger.get(later).category == "other"  # type: ignore[union-attr]
