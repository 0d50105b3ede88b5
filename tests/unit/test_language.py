"""Language detection: right answers for the sales languages, None when unsure, and the same answer every time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.classify.language import detect_language, function_word_share

ALL = ("en", "de", "fr", "es", "it", "pt", "nl")
REPO = Path(__file__).resolve().parents[2]

SENTENCES = {
    "en": "Hello, could you please send us a quotation for two centrifugal pumps? We need them by the end of May.",
    "de": "Sehr geehrte Damen und Herren, wir benötigen ein Angebot für zwei Kreiselpumpen mit Lieferzeit.",
    "fr": "Bonjour, nous souhaitons recevoir un devis pour trois pompes doseuses avec le délai de livraison.",
    "es": "Hola, quisiera un presupuesto para dos bombas centrífugas y el plazo de entrega, gracias.",
    "it": "Buongiorno, vorremmo ricevere un preventivo per due pompe centrifughe con i tempi di consegna.",
    "pt": "Olá, gostaríamos de receber um orçamento para duas bombas centrífugas e o prazo de entrega.",
    "nl": "Goedendag, wij willen graag een offerte voor twee centrifugaalpompen en de levertijd ontvangen.",
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_one_sentence_in_each_language(lang: str) -> None:
    found, confidence = detect_language(SENTENCES[lang], ALL)
    assert found == lang
    assert 0.5 <= confidence <= 1.0


@pytest.mark.parametrize("text", ["Danke!", "Merci !", "Grazie!", "Hi, quick question", "OK", "", "AP-200 DN50 PN16"])
def test_short_or_empty_text_is_unsure(text: str) -> None:
    found, confidence = detect_language(text, ALL)
    assert found is None
    assert 0.0 <= confidence <= 1.0


def test_a_language_outside_the_allowed_set_is_unsure_not_the_runner_up() -> None:
    assert detect_language(SENTENCES["nl"], ("en", "de", "fr"))[0] is None
    assert detect_language(SENTENCES["de"], ("en", "fr"))[0] is None
    assert detect_language(SENTENCES["de"], ("de",))[0] == "de"


def test_subject_in_english_over_a_german_body_is_german() -> None:
    text = ("RE: Quotation Q-2026-0142\n\nHallo Herr Braun,\n\nvielen Dank für das Angebot. Wir hätten noch eine "
            "Frage zur Lieferzeit der Pumpen und ob die Dichtungen auch einzeln bestellt werden können.")
    assert detect_language(text, ALL)[0] == "de"


def test_inconclusive_scorer_defers_to_langdetect_deterministically() -> None:
    # Two function words only ("und", "mit"), but long enough: langdetect decides, always the same way.
    text = "Kreiselpumpe und Gleitringdichtung mit Edelstahlgehause, Forderhohe, Drehzahlregelung, Ersatzteilpaket"
    first = detect_language(text, ALL)
    assert first[0] == "de"
    assert all(detect_language(text, ALL) == first for _ in range(5))


def test_no_function_words_at_all_is_unsure() -> None:
    assert detect_language("Kreiselpumpen Edelstahlausfuehrung Gleitringdichtung Drehzahlregelung AP-200", ALL)[0] \
        is None


def test_same_answer_in_a_fresh_process() -> None:
    texts = [SENTENCES["pt"], "Obrigado pela resposta rápida",
             "Kreiselpumpe und Gleitringdichtung mit Edelstahlgehause, Forderhohe, Drehzahlregelung, Ersatzteilpaket"]
    code = f"from bot.classify.language import detect_language as d; print(repr([d(t, {ALL!r}) for t in {texts!r}]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=True).stdout.strip()
    assert out == repr([detect_language(t, ALL) for t in texts])


def test_function_word_share_tells_prose_from_other_languages() -> None:
    assert function_word_share(SENTENCES["en"]) > 0.2
    assert function_word_share("Degerli kullanicimiz programimiz cesitli aksakliklar sebebi ile kullanilamaz "
                               "hale gelmistir yeni program hazirlanmistir") < 0.05
    assert function_word_share("") == 0.0


def test_links_and_addresses_do_not_vote() -> None:
    # "www.example.com" used to count "com" (Portuguese "with") for pt, outvoting a short English text.
    text = "Got a fix: see http://www.example.com/a.com/x and www.foo.com or mail me@bar.com, it is a patch for a bug"
    assert detect_language(text, ALL)[0] == "en"
    portuguese = "Olá, segue o orçamento em anexo, com o prazo de entrega: https://www.exemplo.com.br/orcamento"
    assert detect_language(portuguese, ALL)[0] == "pt"


def test_english_articles_count_for_english() -> None:
    assert detect_language("I need a new pump. Is it a problem? See www.site.com", ALL)[0] == "en"
    assert detect_language("Vorremmo i vostri prezzi per una pompa e i tempi di consegna, grazie.", ALL)[0] == "it"
