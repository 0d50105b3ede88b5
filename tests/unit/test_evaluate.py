"""`run.py eval`: label reading, the metric definitions, the CLI thresholds, and the CI gate on the gold test split."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.evaluate import (
    GOLD_DIR,
    Label,
    LabelError,
    Report,
    default_mix,
    default_split,
    evaluate,
    missed,
    read_labels,
    read_mix,
    render,
    score,
)
from bot.models import CATEGORIES
from tests.contract.fake_openai import FakeOpenAI, held, ok
from tests.fakes import make_config, raw_mail
from tests.httpfake import FakeServer

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the CI gate: the targets for the offline classifier


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> Report:
    cfg = make_config(tmp_path_factory.mktemp("gold"))  # no saved model: the shipped one
    return evaluate(cfg, GOLD_DIR, mix=default_mix(GOLD_DIR))


def test_the_gold_set_is_scored_on_its_test_split_only(gold: Report) -> None:
    labels = read_labels(GOLD_DIR)
    assert gold.split == "test"
    assert gold.messages == sum(1 for lab in labels if lab.split == "test") > 100
    assert gold.errors == 0


# Targets are what the product promises, not today's figures. A target the shipped classifier does not meet yet on
# the gold test split stays here as a strict expected failure with the figure measured on 2026-12-07 (see
# docs/classifier.md): the day it is met the test turns red, and the mark comes off. Meanwhile a floor well under
# today's figure (a collapse guard, never a target) keeps a broken model or feature from landing unnoticed.


def unmet(measured: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"target not met yet: {measured} on the gold test split")


@unmet("macro F1 0.73")
def test_gate_macro_f1(gold: Report) -> None:
    f1 = gold.macro_f1
    assert f1 is not None and f1 >= 0.85, f"macro F1 {f1}: " + str({c: s["f1"] for c, s in gold.per_category.items()})


def test_floor_macro_f1(gold: Report) -> None:
    assert gold.macro_f1 is not None and gold.macro_f1 >= 0.65


@unmet("lead recall 0.93 (139 of 150 called lead)")
def test_gate_lead_recall(gold: Report) -> None:
    recall = gold.lead_recall
    assert recall is not None and recall >= 0.97, f"lead recall {recall}: leads decided as {gold.confusion['lead']}"


def test_floor_lead_recall(gold: Report) -> None:
    assert gold.lead_recall is not None and gold.lead_recall >= 0.88


@unmet("6 of 150 leads filed as another category without review")
def test_gate_no_lead_is_filed_away_unseen(gold: Report) -> None:
    assert gold.leads_lost == []


def test_floor_leads_filed_away_unseen(gold: Report) -> None:
    assert len(gold.leads_lost) <= 0.08 * gold.quality["all"]["leads"]


@unmet("2 messages people wrote would be trashed")
def test_gate_no_destructive_errors(gold: Report) -> None:
    assert gold.destructive == 0, f"would trash {gold.destructive_files}"


def test_floor_destructive_errors(gold: Report) -> None:
    assert gold.destructive <= 0.01 * gold.quality["all"]["legit"], gold.destructive_files


def test_gate_language_accuracy(gold: Report) -> None:
    accuracy = gold.language_accuracy
    assert accuracy is not None and accuracy >= 0.97, f"language accuracy {accuracy}: {gold.language}"


def test_gate_drafted_mail_is_leads(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["drafted"] > 0 and q["lead_precision"] >= 0.85, f"{q['drafted_leads']} of {q['drafted']} drafted are leads"


def test_gate_spam_is_never_drafted_or_assigned(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["spam"] > 50 and q["spam_assigned"] == 0


@unmet("spam caught 0.78")
def test_gate_spam_is_caught(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["spam_caught"] >= 0.93, f"spam caught {q['spam_caught']}: {gold.confusion['spam']}"


def test_floor_spam_is_caught(gold: Report) -> None:
    assert gold.quality["all"]["spam_caught"] >= 0.70


def test_gate_mail_people_wrote_is_not_called_spam(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["legit_called_spam_rate"] <= 0.003, f"{q['legit_called_spam']} of {q['legit']} called spam"


@unmet("2 messages people wrote would be trashed")
def test_gate_mail_people_wrote_is_not_trashed(gold: Report) -> None:
    assert gold.quality["all"]["real_mail_trashed"] == 0


@unmet("1 of 92 automatic messages would get a draft")
def test_gate_automatic_mail_gets_no_draft(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["automatic"] > 30 and q["automatic_drafted"] == 0


def test_floor_automatic_mail_drafted(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["automatic"] > 30 and q["automatic_drafted"] <= 0.03 * q["automatic"]


def test_gate_confident_decisions_are_right(gold: Report) -> None:
    q = gold.quality["all"]
    assert q["confident_right"] >= 0.90, f"{q['confident']} decisions at >= 0.7, right {q['confident_right']}"


def test_every_writer_of_the_gold_set_is_reported_on_its_own(gold: Report) -> None:
    sources = gold.quality["sources"]
    assert {"gold-p1", "gold-p2", "gold-w1", "gold-w6"} <= set(sources)
    assert sum(f["messages"] for f in sources.values()) == gold.messages


def test_gate_llm_calls_per_100_on_the_shipped_mix(gold: Report) -> None:
    # Projected from the default cascade (the LLM is off here), re-weighted to bot/data/gold/mix.json.
    assert gold.llm["mix"] == "shared sales inbox" and not gold.llm["missing_in_set"]
    calls = gold.llm_calls_per_100
    assert calls is not None and calls <= 60, f"{calls} LLM calls per 100: {gold.llm['per_category']}"


def test_gate_llm_input_tokens_per_call(gold: Report) -> None:
    # Counted with the real gpt-4o-mini tokenizer, not the 4-characters estimate, schema included.
    assert gold.llm["tokens_source"] == "counted with o200k_base"
    tokens = gold.llm_input_tokens_per_call
    assert tokens is not None and tokens <= 700, f"{tokens} input tokens per LLM call"


# ---------------------------------------------------------------- labels


def test_gold_labels_are_one_merged_file_with_both_splits() -> None:
    assert (GOLD_DIR / "labels.jsonl").is_file() and not list(GOLD_DIR.glob("labels.part*.jsonl"))
    labels = read_labels(GOLD_DIR)
    assert len(labels) == len({lab.file for lab in labels}) >= 1200
    assert len({lab.company_key for lab in labels}) >= 13  # inboxes of many companies, not one
    assert {lab.split for lab in labels} == {"train", "test"}
    assert default_split(GOLD_DIR) == "test" and default_split(ROOT / "demo") == "all"


def write(folder: Path, name: str, subject: str, body: str = "Hello there.") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(raw_mail(subject, body=body))


def test_csv_labels_with_empty_cells_as_null(tmp_path: Path) -> None:
    write(tmp_path, "a.eml", "one")
    (tmp_path / "labels.csv").write_text("file,category,language,person_name,company,technical_rfq,split\n"
                                         "a.eml,lead,de,Jane Prospect,,yes,\n", encoding="utf-8")
    [lab] = read_labels(tmp_path)
    assert lab == Label("a.eml", "lead", "de", None, {"person_name": "Jane Prospect", "company": None,
                                                      "technical_rfq": True})


def test_part_files_are_read_when_there_is_no_merged_file(tmp_path: Path) -> None:
    write(tmp_path, "a.eml", "one")
    write(tmp_path, "b.eml", "two")
    (tmp_path / "labels.part1.jsonl").write_text('{"file": "a.eml", "category": "spam"}\n', encoding="utf-8")
    (tmp_path / "labels.part2.jsonl").write_text('{"file": "b.eml", "category": "other", "split": "test"}\n',
                                                 encoding="utf-8")
    assert [(lab.file, lab.split) for lab in read_labels(tmp_path)] == [("a.eml", None), ("b.eml", "test")]


@pytest.mark.parametrize("line, problem", [
    ('{"file": "../outside.eml", "category": "lead"}', "not a file inside"),
    ('{"file": "/etc/passwd", "category": "lead"}', "not a file inside"),
    ('{"file": "missing.eml", "category": "lead"}', "not a file inside"),
    ('{"file": "a.eml", "category": "sales"}', "unknown category"),
    ('{"file": "a.eml", "category": "lead", "split": "dev"}', "split must be"),
    ('not json', "not JSON"),
])
def test_bad_labels_are_refused_with_the_line(tmp_path: Path, line: str, problem: str) -> None:
    write(tmp_path / "set", "a.eml", "one")
    write(tmp_path, "outside.eml", "outside")
    (tmp_path / "set" / "labels.jsonl").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match=problem) as info:
        read_labels(tmp_path / "set")
    assert "labels.jsonl:1" in str(info.value)


# ---------------------------------------------------------------- the metric definitions (hand-made bot output)


def line(category: str | None, confidence: float = 0.9, review: bool = False, language: str | None = "en",
         **kw: Any) -> dict[str, Any]:
    if category is None:
        return {"file": "x", "error": "OSError: gone"}
    return {"category": category, "confidence": confidence, "review": review, "language": language,
            "classifier": "offline", "llm_calls": 0, "llm_tokens": 0, "llm_input_tokens": 0, **kw}


def scored(rows: list[tuple[Label, dict[str, Any]]], **cfg_patch: Any) -> Report:
    cfg = make_config(Path("/nonexistent"), {"classify": cfg_patch} if cfg_patch else None)
    return score(cfg, "set", "all", rows)


def test_precision_recall_f1_macro_and_confusion() -> None:
    rows = [(Label("1", "lead"), line("lead")), (Label("2", "lead"), line("support")),
            (Label("3", "support"), line("support")), (Label("4", "spam"), line(None))]
    r = scored(rows)
    assert r.accuracy == 0.5 and r.errors == 1
    assert r.per_category["lead"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2, "predicted": 1}
    assert r.per_category["support"]["precision"] == 0.5 and r.per_category["support"]["f1"] == 0.6667
    assert r.per_category["spam"]["f1"] == 0.0  # an unreadable file is a miss, never a hit
    assert r.macro_f1 == round((0.6667 + 0.6667 + 0.0) / 3, 4)
    assert r.confusion == {"lead": {"lead": 1, "support": 1}, "support": {"support": 1}, "spam": {"error": 1}}
    assert [w["file"] for w in r.wrong] == ["2", "4"]


def test_lead_recall_counts_review_but_names_leads_that_were_filed_away() -> None:
    rows = [(Label("a", "lead"), line("lead", 0.5, review=True)), (Label("b", "lead"), line("vendor", 0.5, True)),
            (Label("c", "lead"), line("vendor", 0.9)), (Label("d", "lead"), line("lead"))]
    r = scored(rows)
    assert r.lead_recall == 0.5 and r.leads_in_review == 2 and r.leads_lost == ["c"]
    assert r.review_rate == 0.5 and r.accuracy_automatic == 0.5  # of c and d, only d is right


def test_destructive_means_would_be_trashed() -> None:
    rows = [(Label("trashed", "lead"), line("spam", 0.95)),
            (Label("in-review", "support"), line("spam", 0.95, review=True)),
            (Label("below", "vendor"), line("newsletter", 0.6)),
            (Label("right", "newsletter"), line("spam", 0.99)),
            (Label("also", "other"), line("newsletter", 0.7))]
    r = scored(rows)
    assert r.destructive_files == ["trashed", "also"] and r.destructive == 2


@pytest.mark.parametrize("labelled, decided, right", [
    ("de", "de", True),
    ("de", "fr", False),
    ("de", None, False),  # unsure about a configured language that is not the default: the wrong pool
    ("en", None, True),  # unsure falls back to the default language: same template, same pool
    ("sv", None, True),  # not a language the bot serves: unsure is the right answer
    ("sv", "de", False),
])
def test_language_honesty(labelled: str, decided: str | None, right: bool) -> None:
    rows = [(Label("m", "lead", labelled), line("lead", language=decided))]
    r = scored(rows, languages=["en", "de", "fr"], default_language="en")
    assert r.language_accuracy == (1.0 if right else 0.0)


def test_language_accuracy_counts_unreadable_mail_as_wrong() -> None:
    r = scored([(Label("m", "lead", "en"), line(None)), (Label("n", "lead", "en"), line("lead"))])
    assert r.language_accuracy == 0.5


def test_fields_match_loosely_and_coverage_counts_extracted_values() -> None:
    rows = [
        (Label("1", "lead", fields={"person_name": "Jane  Buyer", "company": "ACME GmbH"}),
         line("lead", person_name="jane buyer", company=None)),
        (Label("2", "lead", fields={"person_name": None, "company": "Foo"}), line("lead", person_name=None,
                                                                                  company="Bar")),
        (Label("3", "lead"), line("lead", person_name="Somebody")),  # no label for the field: not scored
    ]
    r = scored(rows)
    assert r.fields["person_name"] == {"labelled": 2, "accuracy": 1.0, "coverage": 1.0}
    assert r.fields["company"] == {"labelled": 2, "accuracy": 0.0, "coverage": 0.5}
    assert r.fields["person_email"] == {"labelled": 0, "accuracy": None, "coverage": None}


def test_thresholds_report_each_miss_and_unmeasurable_figures() -> None:
    r = scored([(Label("1", "support"), line("support")), (Label("2", "spam"), line("spam"))])
    assert missed(r, {"min_accuracy": 1.0, "max_destructive": 0}) == []
    misses = missed(r, {"min_accuracy": 1.01, "min_lead_recall": 0.9, "max_review_rate": None})
    assert misses == ["accuracy 1 below the minimum 1.01",
                      "lead_recall: not measurable on this set (required min 0.9)"]


# ---------------------------------------------------------------- through the bot's own decision path


def small_set(folder: Path) -> Path:
    write(folder, "lead.eml", "Request for quotation: 3 centrifugal pumps",
          "Hello, we need a quotation for 3 centrifugal pumps, 40 m3/h at 5 bar, delivery to our plant in Leeds.\n"
          "Best regards, Jane Prospect, Prospect Ltd")
    write(folder, "job.eml", "Application for the service technician position",
          "Dear Sir or Madam, I am applying for the service technician position. Please find my CV attached.")
    labels = [{"file": "lead.eml", "category": "lead", "language": "en", "person_email": "jane@prospect.example"},
              {"file": "job.eml", "category": "job_applicant", "language": "en", "split": "test"}]
    (folder / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels), encoding="utf-8")
    return folder


def test_a_folder_is_scored_whole_by_default_and_by_split_on_request(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    folder = small_set(tmp_path / "set")
    whole = evaluate(cfg, folder)
    assert whole.split == "all" and whole.messages == 2 and whole.errors == 0
    assert whole.classifiers == {"offline": 2}
    assert whole.fields["person_email"]["labelled"] == 1
    assert evaluate(cfg, folder, "test").messages == 1


def test_with_the_llm_off_its_use_is_projected_from_the_cascade_rule(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    folder = small_set(tmp_path / "set")
    report = evaluate(cfg, folder)
    llm = report.llm
    assert llm["source"].startswith("projected") and llm["tokens_source"] == "counted with o200k_base"
    # lead and job_applicant are both in the default call_for_categories: both would be asked
    assert llm["calls"] == 2 and llm["calls_per_100"] == 100.0
    lead = llm["per_category"]["lead"]
    assert (lead["messages"], lead["asked"], lead["rate"]) == (1, 1, 1.0) and lead["input_tokens_per_call"] > 0
    # the estimate is of the real request: instructions, schema and the fenced mail, so hundreds of tokens
    assert 300 < llm["input_tokens_per_call"] < 1000 and llm["input_tokens_max"] >= llm["input_tokens_median"]
    narrow = make_config(tmp_path, {"classify": {"llm": {"call_for_categories": ["lead"],
                                                          "call_below_confidence": 0.0}}})
    assert evaluate(narrow, folder).llm["calls"] == 1


def test_the_mix_reweighs_llm_calls_by_category(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"classify": {"llm": {"call_for_categories": ["lead"], "call_below_confidence": 0.0}}})
    folder = small_set(tmp_path / "set")
    (tmp_path / "mix.json").write_text(json.dumps({"name": "m", "shares": {"lead": 1, "job_applicant": 3}}))
    report = evaluate(cfg, folder, mix=read_mix(tmp_path / "mix.json"))
    assert report.llm["calls_per_100"] == 50.0  # 1 of the 2 messages
    assert report.llm["calls_per_100_mix"] == 25.0  # leads (all asked) are a quarter of the mix
    assert report.llm_calls_per_100 == 25.0
    assert missed(report, {"max_llm_calls_per_100": 20}) == ["llm_calls_per_100 25 above the maximum 20"]
    (tmp_path / "mix2.json").write_text(json.dumps({"shares": {"lead": 1, "spam": 1}}))
    short = evaluate(cfg, folder, mix=read_mix(tmp_path / "mix2.json"))
    assert short.llm["calls_per_100_mix"] is None and short.llm["missing_in_set"] == ["spam"]
    for bad in ({"shares": {"lead": -1}}, {"shares": {"leads": 1}}, {"shares": {}}, [1]):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(LabelError):
            read_mix(tmp_path / "bad.json")


def test_the_bundled_gold_set_has_a_mix() -> None:
    mix = default_mix(GOLD_DIR)
    assert mix is not None and abs(sum(mix.shares.values()) - 1) < 1e-9 and set(mix.shares) == set(CATEGORIES)


def test_llm_calls_and_input_tokens_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    with FakeServer() as srv:
        fake = FakeOpenAI(srv)
        cfg = make_config(tmp_path, {"classify": {"llm": {
            "enabled": True, "base_url": fake.url, "api_key_env": "EVAL_TEST_KEY", "mode": "json_schema",
            "call_below_confidence": 1.0, "max_retries": 0}}})
        report = evaluate(cfg, small_set(tmp_path / "set"))
    assert fake.calls == report.llm["calls"] == 2
    assert report.llm["calls_per_100"] == 100.0
    assert report.llm["input_tokens_per_call"] == 600  # what the fake server reports per completion
    assert set(report.classifiers) == {f"llm:{cfg.classify.llm.model}"}


def test_a_call_that_got_no_answer_is_reported_apart_and_not_averaged_as_zero_tokens(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    release = threading.Event()
    with FakeServer() as srv:
        fake = FakeOpenAI(srv).then(ok(), held(release))  # the second request outlasts its time limit
        cfg = make_config(tmp_path, {"classify": {"llm": {
            "enabled": True, "base_url": fake.url, "api_key_env": "EVAL_TEST_KEY", "mode": "json_schema",
            "call_below_confidence": 1.0, "max_retries": 0, "timeout_seconds": 1, "max_timeout_seconds": 1}}})
        try:
            report = evaluate(cfg, small_set(tmp_path / "set"))
        finally:
            release.set()
    llm = report.llm
    assert (llm["calls"], llm["failed_calls"]) == (2, 1)
    assert llm["input_tokens_per_call"] == llm["input_tokens_max"] == 600  # the answered call only, not (600 + 0) / 2
    assert "1 got no answer (timeout or error), not counted in the tokens" in render(report)


def test_the_token_figures_leave_unanswered_calls_out() -> None:
    rows = [(Label("a", "lead"), line("lead", llm_calls=1, llm_input_tokens=500)),
            (Label("b", "lead"), line("lead", llm_calls=1, llm_input_tokens=0, llm_failed_calls=1)),
            (Label("c", "spam"), line("spam", llm_calls=1, llm_input_tokens=700))]
    llm = scored(rows, llm={"enabled": True}).llm
    assert (llm["calls"], llm["failed_calls"], llm["input_tokens_per_call"], llm["input_tokens_median"]) == (
        3, 1, 600.0, 700)
    assert llm["per_category"]["lead"] == {"messages": 2, "asked": 2, "rate": 1.0, "input_tokens_per_call": 500.0}


# ---------------------------------------------------------------- the command


def config_file(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
    data["mail"]["maildir"]["seed"] = ""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_command_prints_one_json_object_and_exits_1_on_a_missed_threshold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, folder = config_file(tmp_path), small_set(tmp_path / "set")
    assert main(["--config", str(cfg), "eval", str(folder), "--json", "--max-destructive", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["messages"] == 2 and doc["missed"] == []
    assert main(["--config", str(cfg), "eval", str(folder), "--min-accuracy", "1.5", "--min-lead-recall", "0"]) == 1
    out, err = capsys.readouterr()
    assert "accuracy" in out and "confusion" in out
    assert "threshold missed: accuracy" in err and "lead_recall" not in err
    assert not (tmp_path / "state").exists()  # eval records nothing


def test_command_reports_unusable_labels_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file(tmp_path)), "eval", str(tmp_path)]) == 2
    assert "no labels.jsonl" in capsys.readouterr().err


def test_tokens_are_counted_with_openais_tokenizer() -> None:
    from bot.classify.prompt import token_counter

    count, name = token_counter()
    assert name == "counted with o200k_base"
    assert count("Hello world, this is a test.") == 8  # o200k_base: Hello| world|,| this| is| a| test|.
    assert count("<|endoftext|> ignore that") > 3  # special-token text in a mail is counted as text, never refused
