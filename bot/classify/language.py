"""Deterministic language detection for the sales languages.

A function-word scorer decides most messages in microseconds. Only when it is inconclusive on a text long
enough to judge does langdetect run (about 2 ms a call, seeded so the same text always gets the same answer).
Short or ambiguous text returns (None, confidence): the caller falls back to the default language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException

# Without a seed langdetect samples differently on every run, so its confidence would flap between runs.
DetectorFactory.seed = 0

# Frequent function words and mail phrases per language. A word listed under several languages counts for each
# of them with a share of its weight, so "de" or "a" alone never decides anything.
_WORDS: dict[str, str] = {
    "en": "a i no my the and of to is are was were be been have has had this that these those with for from you your "
    "we our us they their it its not but would could should will can please thanks thank regards dear "
    "hello hi which what when where who how there here about any some all an if or as by at on do does "
    "did just also only very more me in need looking forward attached find let know best kind sincerely"
    " order delivery price request quote",
    "de": "der die das und ist sind war nicht mit für von zu zum zur den dem des ein eine einen einem einer "
    "ich sie wir ihr ihre ihnen uns unser unsere bitte danke vielen dank sehr geehrte geehrter damen herren "
    "grüße gruß freundlichen hallo auch auf aus bei wie was wenn oder aber noch nach über können könnten "
    "würden haben hat wird werden mir mich sich im am es dass ob gerne anbei beste liebe bestellung lieferung"
    " preis angebot",
    "fr": "le la les et est sont un une de des du au aux pour avec dans sur par pas ne nous vous votre vos notre nos "
    "je il elle ils qui que quoi mais ou où être avoir merci bonjour madame monsieur cordialement "
    "salutations bien ce cette ces mon ma mes son sa ses leur très plus comme si peut pouvez serait "
    "souhaitons souhaite veuillez ci-joint commande livraison devis prix été était",
    "es": "el la los las y es son un una unos de unas del al para con en por no nos su sus nuestro nuestra que qué "
    "como pero o muy más gracias hola señor señora estimado estimada saludos atentamente cordiales "
    "está están estamos este esta estos estas ser hay le les lo me mi mis usted ustedes quisiera "
    "podrían adjunto también pedido entrega precio presupuesto",
    "it": "i il lo la gli le e è sono un una uno del della dei delle per con in su da di non che come ma o "
    "molto più grazie buongiorno salve gentile gentili egregio cordiali saluti distinti siamo ci vi "
    "nostro nostra vostro vostra questo questa anche alla allo al nel nella mi ti si ho ha abbiamo "
    "potreste vorremmo allegato ordine consegna prezzo preventivo",
    "pt": "o a os as e é são um uma uns umas do da dos das para com em no na nos nas por não que como mas ou "
    "muito mais obrigado obrigada olá prezado prezada prezados senhor senhora atenciosamente "
    "cumprimentos está estão estamos este esta isso seu sua seus suas nosso nossa você vocês gostaria "
    "poderiam anexo também em sem até estou bom dia pela pelo são foi podem nós ao à às aos mais encomenda preço "
    "orçamento abraço férias",
    "nl": "de het een en is zijn was niet met voor van naar op in aan bij dat die deze dit wij we ik u uw jullie "
    "ons onze graag bedankt dank hartelijk groet groeten vriendelijke geachte heer mevrouw ook maar "
    "of als wat hoe kunnen zou zouden wordt worden er nog al bijgevoegd bestelling levering prijs",
}

_WORD_WEIGHTS: dict[str, dict[str, float]] = {}
for _lang, _words in _WORDS.items():
    for _w in set(_words.split()):
        _WORD_WEIGHTS.setdefault(_w, {})[_lang] = 1.0
for _w, _langs in _WORD_WEIGHTS.items():
    for _lang in _langs:
        _langs[_lang] = 1.0 / len(_langs)

# Letters that appear in (almost) only one of the languages.
_CHAR_CUES: dict[str, str] = {"ß": "de", "ä": "de", "ö": "de", "ü": "de", "ñ": "es", "¿": "es", "¡": "es",
                              "ã": "pt", "õ": "pt", "ç": "pt", "œ": "fr", "ù": "fr", "ò": "it", "ì": "it"}
_CHAR_WEIGHT = 0.5
_CHAR_CAP = 2.0  # a name like "Müller" in an English mail must not outvote its words

_TOKEN_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")
# Links and addresses are no language: "www.example.com" would count "com" (Portuguese "with") for pt.
_LINK_RE = re.compile(r"\S*(?:https?://|www\.|@)\S*")
_SCAN_CHARS = 800  # the opening of a mail decides its language; reading further only costs time
_OPENING_CHARS = 300
_SURE_HITS = 3.0  # scorer hits needed (with a clear lead) to decide without a second opinion
_MIN_HITS = 2.0  # fewer hits than this is too little text to judge at all
_LANGDETECT_MIN_LETTERS = 40  # below this langdetect guesses ("Danke!" -> da)
_LANGDETECT_MIN_PROB = 0.90


def _scores(text: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    if "@" in text or "http" in text or "www." in text:
        text = _LINK_RE.sub(" ", text)
    for token in _TOKEN_RE.findall(text.lower()):
        weights = _WORD_WEIGHTS.get(token)
        if weights:
            for lang, w in weights.items():
                scores[lang] = scores.get(lang, 0.0) + w
    char_scores: dict[str, float] = {}
    for ch, lang in _CHAR_CUES.items():
        n = text.count(ch)
        if n:
            char_scores[lang] = min(_CHAR_CAP, char_scores.get(lang, 0.0) + n * _CHAR_WEIGHT)
    for lang, s in char_scores.items():
        scores[lang] = scores.get(lang, 0.0) + s
    return scores


def _langdetect(text: str, allowed: Sequence[str]) -> tuple[str | None, float]:
    try:
        ranked = detect_langs(text)
    except LangDetectException:
        return None, 0.0
    if not ranked:
        return None, 0.0
    top = ranked[0]
    if top.lang not in allowed or top.prob < _LANGDETECT_MIN_PROB:
        return None, round(float(top.prob), 3)
    return top.lang, round(float(top.prob), 3)


def detect_language(text: str, allowed: Sequence[str]) -> tuple[str | None, float]:
    """The language of `text` among `allowed` (ISO 639-1) and a confidence; None when unsure."""
    sample = text[:_SCAN_CHARS]
    scores = _scores(sample)
    # The opening counts twice: a reply or forward continues in the language of the thread below it.
    for lang, score in _scores(text[:_OPENING_CHARS]).items():
        scores[lang] = scores.get(lang, 0.0) + score
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    best, s1 = ranked[0] if ranked else ("", 0.0)
    s2 = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = round(s1 / (s1 + s2 + 1.0), 3)
    if s1 >= _SURE_HITS and (s1 >= 2.0 * s2 or (s1 >= 4 * _SURE_HITS and s1 >= 1.5 * s2)):
        # The scorer is clear; a language the bot does not expect counts as unsure, not as the runner-up.
        return (best, confidence) if best in allowed else (None, confidence)
    letters = sum(1 for ch in sample if ch.isalpha())
    if letters < _LANGDETECT_MIN_LETTERS or s1 < _MIN_HITS:  # (opening hits count twice)
        return None, confidence
    return _langdetect(sample, allowed)


def function_word_share(text: str) -> float:
    """Share of the words of `text` that are function words of one of the known languages (0 when no words).

    Ordinary prose in any of them is 25-50 % function words; text in another language scores near zero.
    """
    sample = text[:_SCAN_CHARS].lower()
    words = _TOKEN_RE.findall(sample)
    if not words:
        return 0.0
    return sum(1 for w in words if w in _WORD_WEIGHTS) / len(words)
