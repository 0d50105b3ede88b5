"""The offline classifier on hand-written mail: cues, training, the lead floor, the list-mail hint, the phishing and
existing-business rules, review paths and the model file."""

from __future__ import annotations

import json
import logging
import math
import stat
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.classify.cues import analyse, features
from bot.classify.model import LinearModel
from bot.classify.offline import OfflineClassifier, base_examples, base_training, load_model, load_or_train
from bot.classify.training import Example, train_model
from bot.mime import parse_email
from bot.models import CATEGORIES, Email, PrefilterResult

LANGS = ("en", "de", "fr", "es", "it", "pt", "nl")
LIST_HINT = PrefilterResult("hint", "list_mail", "newsletter", "header List-Id: <news.example>")
GOLD = Path(__file__).resolve().parents[2] / "bot" / "data" / "gold"


def raw(subject: str, body: str, sender: str = "Jürgen Weber <j.weber@brauerei-weber.example>",
        extra: str = "") -> bytes:
    return (f"From: {sender}\nTo: sales@acme-pumps.example\nSubject: {subject}\n"
            f"Message-ID: <{zlib.crc32((subject + body).encode())}@brauerei-weber.example>\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0100\n"
            f"{extra}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


def mail(subject: str, body: str, **kw: str) -> Email:
    return parse_email(raw(subject, body, **kw))


TRAINING: list[tuple[str, str, str]] = [
    ("lead", "Request for quotation: centrifugal pumps",
     "Hello,\nplease quote two centrifugal pumps, 40 m3/h at 3 bar, DN80 PN16, stainless 316L.\n"
     "We need the price and the delivery time for our new plant.\nBest regards\nAnna Clarke"),
    ("lead", "Anfrage Dosierpumpen", "Sehr geehrte Damen und Herren,\nwir benötigen ein Angebot für 3 Dosierpumpen "
     "für unsere Anlage. Bitte nennen Sie Preis und Lieferzeit.\nMit freundlichen Grüßen\nJürgen Weber"),
    ("lead", "Demande de devis pompe", "Bonjour,\nnous cherchons une pompe à membrane pour notre usine. Merci de nous "
     "faire un devis avec le délai de livraison.\nCordialement\nMarie Dubois"),
    ("support", "Pump leaking", "Hello,\nour pump AP-125 that you supplied last year is leaking at the seal since "
     "yesterday. Serial number 4711. Can you send a technician or a repair kit?\nThanks\nTom Baker"),
    ("support", "Störung Pumpe", "Guten Tag,\nunsere Pumpe zeigt seit heute einen Fehler und ist undicht. "
     "Seriennummer 12345, Kundennummer 889. Bitte schicken Sie einen Techniker.\nGruß\nKarl Meier"),
    ("support", "Problème pompe", "Bonjour,\nnotre pompe installée en 2024 est en panne, il y a une fuite et un bruit "
     "anormal. Numéro de série 5521.\nCordialement\nLuc Martin"),
    ("accounting", "Invoice 2026-0042 overdue", "Dear Sir or Madam,\nplease find the payment reminder for invoice "
     "2026-0042. The payment is overdue; our bank details and IBAN are below.\nRegards\nAccounts receivable"),
    ("accounting", "Rechnung 4711", "Guten Tag,\nanbei die Gutschrift zu Rechnung 4711. Die Zahlung erfolgt per "
     "Überweisung.\nFreundliche Grüße\nBuchhaltung"),
    ("vendor", "Introducing our logistics services", "Hello,\nwe are a logistics company and we offer groupage "
     "freight to the UK from EUR 89 per pallet. Our services could help your team. Would you be open to a short "
     "call?\nBest\nSam"),
    ("vendor", "Wir stellen uns vor", "Guten Tag,\nwir sind ein Hersteller von Gussteilen und bieten Ihnen "
     "Laufräder zu günstigen Preisen. Gerne stellen wir uns vor.\nViele Grüße\nPeter"),
    ("job_applicant", "Application for the sales engineer position", "Dear hiring team,\nI am applying for the "
     "position of sales engineer. Please find my CV and cover letter attached.\nKind regards\nLena Novak"),
    ("job_applicant", "Bewerbung als Servicetechniker", "Sehr geehrte Damen und Herren,\nhiermit bewerbe ich mich "
     "auf die Stelle als Servicetechniker. Mein Lebenslauf ist anbei.\nMit freundlichen Grüßen\nMax Braun"),
    ("newsletter", "Pump industry newsletter - March", "In this issue: trade fair dates, a webinar on energy "
     "efficiency and news from the members.\nView this email in your browser.\nUnsubscribe | Manage preferences"),
    ("newsletter", "Rundschreiben März", "Liebe Mitglieder,\nin dieser Ausgabe: Messe, Seminar und Neuigkeiten aus "
     "dem Verband. Veranstaltung am 12. März.\nAbmelden"),
    ("spam", "Verify your account now", "Dear user,\nyour account will be suspended. Verify your account within 24 "
     "hours: click here http://192.0.2.10/login\nSecurity team"),
    ("spam", "Make money from home!!!", "Dear friend,\nmake money from home, 100% free, no obligation! Act now, "
     "limited time offer. To be removed reply with remove in the subject."),
    ("other", "Thanks!", "Thank you, received.\nHave a nice weekend"),
    ("other", "Danke", "Vielen Dank, alles erhalten. Schönes Wochenende!"),
]


def train(rows: list[tuple[str, str, str]]) -> LinearModel:
    return train_model([Example(mail(subject, body), category, "test") for category, subject, body in rows],
                       calibrate=False)


@pytest.fixture(scope="module")
def model() -> LinearModel:
    return train(TRAINING)


@pytest.fixture(scope="module")
def classifier(model: LinearModel) -> OfflineClassifier:
    return OfflineClassifier(model, LANGS, "en", 1500, own_names=("Acme Pumps GmbH",),
                             own_domains=("acme-pumps.example",))


def test_new_mail_lands_in_the_category_its_words_point_to(classifier: OfflineClassifier) -> None:
    lead = classifier.classify(mail("Quotation please", "Hello,\ncould you quote 4 dosing pumps for our plant? "
                                    "We need price and delivery time.\nRegards\nEmma Stone"))
    support = classifier.classify(mail("Seal leaking", "Hi,\nthe pump you supplied is leaking at the seal, serial "
                                       "number 999. Please send a technician.\nThanks\nBob Lane"))
    job = classifier.classify(mail("Application", "Dear team,\nI am applying for the open position, my CV is "
                                   "attached.\nBest regards\nIda Berg"))
    assert (lead.category, support.category, job.category) == ("lead", "support", "job_applicant")
    for result in (lead, support, job):
        assert 0.0 <= result.confidence <= 1.0
        assert result.classifier == "offline"
        assert result.reasons and all(len(r) <= 60 for r in result.reasons)


def test_phishing_signs_keep_mail_from_a_draft_even_when_it_reads_like_business(
        classifier: OfflineClassifier) -> None:
    result = classifier.classify(mail(
        "Request for quotation", "Hello,\nplease quote 4 dosing pumps for our plant, price and delivery time. "
        "The specification is in the secure document: https://docs-view.example/rfq/login\nRegards",
        sender="DocuSign <rfq@docs-view.example>"))
    assert result.review_reason is not None and result.review_reason.startswith("phishing signs:")
    assert "claims to be DocuSign" in result.review_reason
    assert not result.review_doubt  # a fact about the mail: no LLM answer can lift it
    assert any("DocuSign" in r for r in result.reasons)
    assert result.phishing is not None and "DocuSign" in result.phishing  # the cascade holds an LLM answer to it


def test_a_lead_about_something_already_bought_is_reviewed(classifier: OfflineClassifier) -> None:
    result = classifier.classify(mail("Quotation please", "Hello,\ncould you quote the repair of our pump, serial "
                                      "number 4711-22? Price and delivery time please.\nRegards\nEmma Stone"))
    if result.category == "lead":
        assert result.review_reason is not None and "already bought" in result.review_reason
        assert result.review_doubt
    new = classifier.classify(mail("Quotation please", "Hello,\ncould you quote 4 new dosing pumps for our plant? "
                                   "We need price and delivery time.\nRegards\nEmma Stone"))
    assert (new.category, new.review_reason) == ("lead", None)


def test_list_mail_is_newsletter_or_spam(classifier: OfflineClassifier) -> None:
    news = classifier.classify(mail("Pump industry newsletter - April", "In this issue: a webinar and trade fair "
                                    "news.\nView this email in your browser. Unsubscribe"), LIST_HINT)
    spam = classifier.classify(mail("Lose weight now!!!", "Dear friend, lose 20 lbs, 100% free, act now! Click "
                                    "here. To be removed reply with remove in the subject."), LIST_HINT)
    assert (news.category, news.review_reason) == ("newsletter", None)
    assert (spam.category, spam.review_reason) == ("spam", None)


def test_business_mail_through_a_list_is_kept_for_review(classifier: OfflineClassifier) -> None:
    text = ("Sehr geehrte Damen und Herren,\nwir benötigen ein Angebot für 2 Kreiselpumpen für unsere Anlage, "
            "bitte mit Preis und Lieferzeit.\nMit freundlichen Grüßen\nJürgen Weber")
    plain = classifier.classify(mail("Anfrage Kreiselpumpen", text))
    listed = classifier.classify(mail("Anfrage Kreiselpumpen", text), LIST_HINT)
    assert plain.category == listed.category == "lead"
    assert plain.review_reason is None
    assert listed.review_reason == "business mail arrived through a mailing list"
    assert not listed.review_doubt


def test_other_hint_outcomes_classify_normally(classifier: OfflineClassifier) -> None:
    text = "Hello,\nplease quote 2 pumps for our plant with price and delivery time.\nRegards\nEmma Stone"
    hint = PrefilterResult("classify", reason="no pre-filter rule matched")
    assert classifier.classify(mail("Quote", text), hint) == classifier.classify(mail("Quote", text))


def test_damaged_mail_without_usable_text_goes_to_review(classifier: OfflineClassifier) -> None:
    broken = parse_email(b"From: a@b.example\nContent-Type: multipart/mixed; boundary=\"xx\"\n\n--xx\n"
                         b"Content-Type: text/plain\n\n")
    assert broken.defects
    result = classifier.classify(broken)
    assert result.category == "other"
    assert result.confidence <= 0.3
    assert result.review_reason is not None and broken.defects[0] in result.review_reason


def test_damaged_mail_with_readable_text_is_classified(classifier: OfflineClassifier) -> None:
    email = replace(mail("Quotation please", "Please quote 4 dosing pumps for our plant, price and delivery time."),
                    defects=("invalid utf-8 bytes, read as cp1252",))
    result = classifier.classify(email)
    assert result.category == "lead"
    assert result.review_reason is None


def test_sender_details_and_language_are_filled(classifier: OfflineClassifier) -> None:
    result = classifier.classify(mail(
        "Anfrage Kreiselpumpe DN80", "Sehr geehrte Damen und Herren,\nwir benötigen ein Angebot für eine "
        "Kreiselpumpe, 40 m³/h bei 3 bar, DN80 PN16, Werkstoff 1.4404, ATEX Zone 1.\n\nMit freundlichen Grüßen\n"
        "Jürgen Weber\nBrauerei Weber GmbH"))
    assert result.category == "lead"
    assert result.language == "de"
    assert (result.person_name, result.person_email) == ("Jürgen Weber", "j.weber@brauerei-weber.example")
    assert (result.company, result.company_domain) == ("Brauerei Weber", "brauerei-weber.example")
    assert result.technical_rfq is True


def test_language_outside_the_configured_ones_is_none(model: LinearModel) -> None:
    english_only = OfflineClassifier(model, ("en",), "en", 1500)
    result = english_only.classify(mail("Anfrage", "Sehr geehrte Damen und Herren, wir benötigen ein Angebot "
                                        "für zwei Pumpen mit Lieferzeit und Preis."))
    assert result.language is None


def test_applicants_have_no_company(classifier: OfflineClassifier) -> None:
    result = classifier.classify(mail("Application for the service technician position", "Dear hiring team,\nI am "
                                      "applying for the position, my CV is attached.\nKind regards\nIda Berg",
                                      sender="Ida Berg <ida.berg@uni-stuttgart.example>"))
    assert result.category == "job_applicant"
    assert result.company is None and result.company_domain is None


def test_training_is_deterministic() -> None:
    first, second = train(TRAINING), train(TRAINING)
    assert first.dense == second.dense
    assert first.bias == second.bias
    assert set(first.meta["examples"]) == set(CATEGORIES)


def test_model_file_round_trip(tmp_path: Path, model: LinearModel, classifier: OfflineClassifier) -> None:
    path = tmp_path / "state" / "model.json"
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["model.json"]  # no temp file left behind
    loaded = LinearModel.load(path)
    assert loaded.bias == pytest.approx(model.bias, abs=1e-5)
    assert loaded.meta == model.meta and loaded.temperature == model.temperature
    again = OfflineClassifier(loaded, LANGS, "en", 1500, classifier.own_names, classifier.own_domains)
    sample = mail("Quotation please", "Could you quote 4 dosing pumps for our plant? Price and delivery time.")
    first, second = classifier.classify(sample), again.classify(sample)
    assert (second.category, second.reasons) == (first.category, first.reasons)
    assert second.confidence == pytest.approx(first.confidence, abs=1e-3)


def test_the_model_file_holds_numbers_not_code_or_words(tmp_path: Path, model: LinearModel) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    text = path.read_text()
    assert "dosing" not in text and "pickle" not in text
    assert json.loads(text)["format"] == "triage-linear-1"


@pytest.mark.parametrize("content", ["not json", "[]", '{"format": "other"}', '{"format": "triage-linear-1", '
                                     '"categories": ["x"]}'])
def test_unusable_model_files_are_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        LinearModel.load(path)


@pytest.mark.parametrize(("key", "value"), [("weights", "AAAA"), ("temperature", 0), ("bias", [1.0, 2.0])])
def test_malformed_weights_are_rejected(tmp_path: Path, model: LinearModel, key: str, value: object) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError):
        LinearModel.load(path)


def _gold_dir(tmp_path: Path) -> Path:
    gold = tmp_path / "gold"
    gold.mkdir()
    lines = []
    for i, (category, subject, body) in enumerate(TRAINING):
        (gold / f"m{i:02d}.eml").write_bytes(raw(subject, body))
        lines.append({"file": f"m{i:02d}.eml", "category": category, "language": "en", "split": "train"})
    (gold / "held-out.eml").write_bytes(raw("Held out", "Please quote 3 pumps."))
    lines.append({"file": "held-out.eml", "category": "lead", "split": "test"})
    lines.append({"file": "../escape.eml", "category": "lead", "split": "train"})
    lines.append({"file": "missing.eml", "category": "lead", "split": "train"})
    lines.append({"file": "m00.eml", "category": "not-a-category", "split": "train"})
    (gold / "labels.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    (tmp_path / "escape.eml").write_bytes(raw("Escaped", "outside the gold folder"))
    return gold


def test_base_examples_are_the_train_split_only(tmp_path: Path) -> None:
    examples = base_examples(_gold_dir(tmp_path))
    assert len(examples) == len(TRAINING)
    assert [c for _, c in examples] == [c for c, _, _ in TRAINING]
    assert all(e.subject != "Held out" and e.subject != "Escaped" for e, _ in examples)


def test_base_examples_add_the_training_set_beside_the_gold_set(tmp_path: Path) -> None:
    gold = _gold_dir(tmp_path)
    extra = tmp_path / "train"
    extra.mkdir()
    (extra / "t-1.eml").write_bytes(raw("Extra lead", "Please quote 5 dosing pumps."))
    (extra / "t-2.eml").write_bytes(raw("Extra support", "Our pump leaks since yesterday."))
    (extra / "t-3.eml").write_bytes(raw("Marked test", "Should never be trained on."))
    lines = [{"file": "t-1.eml", "category": "lead"}, {"file": "t-2.eml", "category": "support"},
             {"file": "t-3.eml", "category": "lead", "split": "test"}, {"file": "../gold/m00.eml", "category": "spam"}]
    (extra / "labels.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    examples = base_examples(gold)
    assert len(examples) == len(TRAINING) + 2
    assert [(e.subject, c) for e, c in examples[-2:]] == [("Extra lead", "lead"), ("Extra support", "support")]
    assert all(e.subject != "Extra lead" for e, _ in base_examples(gold, "test"))  # the test split stays gold only
    assert {x.source for x in base_training(gold)} == {"gold", "gold-t"}
    trained = load_model(tmp_path / "none.json", gold, 1500, shipped=tmp_path / "no-shipped.json")
    assert sum(trained.meta["examples"].values()) == len(examples)


def test_base_examples_read_the_label_parts_until_they_are_merged(tmp_path: Path) -> None:
    gold = _gold_dir(tmp_path)
    lines = (gold / "labels.jsonl").read_text().splitlines()
    (gold / "labels.jsonl").unlink()
    (gold / "labels.part1.jsonl").write_text("\n".join(lines[:5]))
    (gold / "labels.part2.jsonl").write_text("\n".join(lines[5:]))
    assert len(base_examples(gold)) == len(TRAINING)


def test_a_saved_model_wins_then_the_shipped_model_then_training(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    gold = _gold_dir(tmp_path)
    saved, shipped = tmp_path / "model.json", tmp_path / "shipped.json"
    train(TRAINING[:4]).save(saved)  # lead and support only
    train(TRAINING[:7]).save(shipped)
    assert load_model(saved, gold, 1500, shipped=shipped).meta["examples"] == {"lead": 3, "support": 1}
    assert load_model(tmp_path / "none.json", gold, 1500, shipped=shipped).meta["examples"] == \
        {"lead": 3, "support": 3, "accounting": 1}
    saved.write_text("{")
    with caplog.at_level(logging.WARNING):
        fallback = load_model(saved, gold, 1500, shipped=tmp_path / "absent.json")
    assert sum(fallback.meta["examples"].values()) == len(TRAINING)
    assert "ignoring the model" in caplog.text


def test_the_shipped_model_recognises_a_plain_lead() -> None:
    clf = load_or_train(Path("/nonexistent/model.json"), GOLD, LANGS, "en", 1500)
    assert len(clf.model.meta["sources"]) >= 10  # trained on many sources, not one voice
    result = clf.classify(mail("RFQ: 2 centrifugal pumps", "Hello,\nplease send us a quotation for two "
                               "centrifugal pumps, 50 m3/h at 4 bar, DN100 PN16, with delivery time.\n"
                               "Best regards\nAnna Clarke\nNorthwind Water Ltd"))
    assert result.category == "lead"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.text(max_size=80), body=st.text(max_size=600))
def test_any_text_is_classified_without_raising(classifier: OfflineClassifier, subject: str, body: str) -> None:
    email = replace(mail("x", "y"), subject=subject, body=body, text=f"{subject}\n{body}", signature=body[-80:],
                    quoted=body[:50], from_name=subject[:30])
    result = classifier.classify(email, LIST_HINT if len(body) % 2 else None)
    assert result.category in CATEGORIES
    assert 0.0 <= result.confidence <= 1.0


def test_invoice_phishing_carries_signs_that_real_invoices_do_not() -> None:
    phishing = analyse(mail("Overdue invoice INV-4417 - final notice", "Dear customer,\nthe invoice is 45 days "
                            "overdue. Please note our bank details have changed. View invoice (secure document):\n"
                            "https://docs-share.example/view?u=sales@acme-pumps.example\nAccounts Receivable",
                            sender="Accounts <ar@castings-invoices.example>"))
    real = analyse(mail("Rechnung 2026-0042", "Guten Tag,\nanbei die Rechnung 2026-0042 zu Ihrer Bestellung, "
                        "zahlbar innerhalb von 30 Tagen. Unsere Bankverbindung finden Sie auf der Rechnung.\nGruß\n"
                        "Buchhaltung"))
    assert phishing.lexicon.get("phishing", 0) >= 2
    assert "link names the recipient" in phishing.flags
    assert not real.lexicon.get("phishing")
    assert real.lexicon.get("accounting", 0) >= 2


@pytest.mark.parametrize(("text", "group"), [
    ("we are looking for two dosing pumps for our new plant", "buying"),
    ("wir benötigen zwei Dosierpumpen für unsere Anlage", "buying"),
    ("nous cherchons une pompe doseuse", "buying"),
    ("we offer freight to the UK and would be happy to send our rates", "selling"),
    ("wir bieten Ihnen Gussteile und erstellen Ihnen gerne ein Angebot", "selling"),
    ("ofrecemos transporte de paletas", "selling"),
    ("the seal of our installed AP-125 leaks, serial number 4711", "installed base"),
    ("please send the spare parts kit for the pump", "spare parts"),
    ("we would like to become your distributor, please send your dealer terms", "dealer"),
])
def test_who_wants_what_is_a_cue(text: str, group: str) -> None:
    assert analyse(mail("Pumps", text)).lexicon.get(group, 0) >= 1


def test_form_signs_and_the_sender_role_become_features() -> None:
    email = mail("RFQ", "Hello,\nplease quote 3 pcs of the AMD-40, order no. 44123 was the last one.\n\n"
                 "Best regards\nAnna Clarke\nPurchasing Manager\nNorthwind Water Ltd",
                 sender="Anna Clarke <purchasing@northwind-water.example>")
    feats = features(email, analyse(email))
    assert {"!flag:quantity", "!flag:model code", "!reference:1", "!role:buyer"} <= set(feats)
    pitch = mail("Growth", "Hi,\nquick question about your sales pipeline.\n\nSam Lee\nBusiness Development Manager",
                 sender="Sam Lee <sam@growthly.example>")
    assert "!role:seller" in features(pitch, analyse(pitch))
    assert "!role:buyer" not in features(pitch, analyse(pitch))


def _fixed(shares: dict[str, float]) -> OfflineClassifier:
    """A classifier whose text model gives every message the same category shares."""
    rest = (1.0 - sum(shares.values())) / (len(CATEGORIES) - len(shares))
    bias = [math.log(shares.get(c, rest)) for c in CATEGORIES]
    return OfflineClassifier(LinearModel(bias, {}), LANGS, "en", 1500)


def test_a_lead_that_loses_a_close_call_is_a_lead_for_review() -> None:
    email = mail("Tomorrow", "Hello,\nsee you tomorrow at ten.\nRegards\nEmma Stone")
    close = _fixed({"lead": 0.3, "support": 0.6}).classify(email)
    assert (close.category, close.confidence) == ("lead", pytest.approx(0.3, abs=1e-3))
    assert close.review_reason is not None and "may be a lead" in close.review_reason
    assert close.review_doubt
    clear = _fixed({"lead": 0.05, "support": 0.75}).classify(email)
    assert (clear.category, clear.review_reason) == ("support", None)
    assert clear.confidence == pytest.approx(0.75, abs=1e-3)


def test_the_lead_floor_is_inclusive() -> None:
    email = mail("Tomorrow", "Hello,\nsee you tomorrow at ten.\nRegards\nEmma Stone")
    at = _fixed({"lead": 0.3, "support": 0.6})
    p_lead = at.probabilities(email)[0]["lead"]
    at.lead_floor = p_lead
    assert at.classify(email).category == "lead"
    at.lead_floor = p_lead + 1e-9
    assert at.classify(email).category == "support"
