"""Whom a draft greets by name, and which template it is written from."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.replies import GREETINGS, first_name, template_for

TEMPLATES = Path(__file__).resolve().parents[2] / "bot" / "templates"


@pytest.mark.parametrize(("display", "greeted"), [
    ("Anna Clarke", "Anna"),
    ("Weber, Jürgen", "Jürgen"),            # "last, first" as directories write it
    ("Weber, Jürgen , Einkauf", "Jürgen"),  # the surname is what comes before the first comma
    ("Dr. Hans Müller", "Hans"),            # titles are not names, with or without the dot
    ("Mme Claire Dubois", "Claire"),
    ("Prof Dr Ing. Karl Bauer", "Karl"),
    ("ANNA CLARKE", "Anna"),                # shouted names are greeted normally
    ("anna clarke", "anna"),
    ("Jo", "Jo"),                           # two letters are a name
    ("J. Smith", None),                     # an initial is no name to greet
    ("J Smith", None),
    ("R2D2 Unit", None),
    ("anna@northwind.example", None),
    ("Anna Clarke <anna@northwind.example>", None),  # a name holding an address is not clearly a person's
    ("Northwind Sales", None),
    ("Acme GmbH", None),
    ("Dr.", None),                          # only a title
    ("", None),
    (None, None),
])
def test_the_draft_greets_a_person_by_first_name_and_nobody_else(display: str | None, greeted: str | None) -> None:
    assert first_name(display) == greeted


def test_a_template_is_taken_in_the_mails_language_else_in_english(tmp_path: Path) -> None:
    (tmp_path / "lead.en.txt").write_text("Hello $name", encoding="utf-8")
    (tmp_path / "lead.de.txt").write_text("Hallo $name", encoding="utf-8")
    t, lang = template_for(tmp_path, "lead", "de")
    assert (lang, t.template) == ("de", "Hallo $name")
    t, lang = template_for(tmp_path, "lead", "fr")
    assert (lang, t.template) == ("en", "Hello $name")
    t, lang = template_for(tmp_path, "lead", None)
    assert (lang, t.template) == ("en", "Hello $name")
    with pytest.raises(FileNotFoundError, match=r"no reply template support\.en\.txt in "):
        template_for(tmp_path, "support", "de")


def test_the_shipped_templates_answer_a_lead_in_every_language_the_drafts_greet_in() -> None:
    for lang in GREETINGS:
        assert template_for(TEMPLATES, "lead", lang)[1] == lang
