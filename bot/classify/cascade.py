"""Cost-bounded classification: the offline model first, the LLM only when it adds something.

The LLM is asked when the offline result is unsure or of a category worth extracting fields for, unless the
same thread was classified recently, the day's budget is spent, or the LLM server failed a moment ago. Every
way the LLM can fail ends in the offline result with a review reason, never in an exception. A trash or a draft
never rests on the LLM alone: when it and the offline classifier disagree about whether a mail is business mail
or spam/newsletter, the mail goes to review, and so does business mail the phishing signals fired on.
Independently of any classifier, mail that tries to instruct the bot is sent to review.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.config import LlmConfig
from bot.models import DISPOSABLE, Classification, Email, PrefilterResult, Usage
from bot.ports import ClassificationMemory, Classifier

log = logging.getLogger(__name__)

INJECTION_REVIEW = "possible prompt injection"


class LlmFailure(Exception):
    """The model gave no usable answer. usage: what the failed call still cost; pause_seconds: how long
    further calls are pointless (the server is down, the quota is gone)."""

    def __init__(self, reason: str, usage: Usage | None = None, pause_seconds: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or Usage()
        self.pause_seconds = pause_seconds


class LlmUnavailable(Exception):
    """The LLM is down or overloaded for now. The pipeline retries the message next cycle, and on its last
    attempt takes `fallback` (the offline result, marked for review), so a short outage changes no decision."""

    def __init__(self, reason: str, fallback: Classification) -> None:
        super().__init__(f"LLM unavailable: {reason}")
        self.fallback = fallback


def wants_llm(cfg: LlmConfig, threshold: float, email: Email, offline: Classification,
              hint: PrefilterResult | None) -> bool:
    """The cascade rule: would this offline result be sent to the LLM (before the thread cache and budget)?"""
    if not (email.subject.strip() or email.body.strip()):
        return False  # nothing to show it
    if offline.review_reason and not offline.review_doubt:
        # A review the offline side asked for rests on facts about the message the LLM is not shown (delivery
        # through a mailing list, unreadable parts, phishing signs): no answer could lift it, so asking changes
        # nothing. The offline model's own doubt (a possible lead, a lead about something already bought, junk by
        # its words only) is what a second opinion is for.
        return False
    if (hint is not None and hint.outcome == "hint" and offline.category in DISPOSABLE
            and offline.confidence >= threshold):
        return False  # bulk mail the offline model is sure about: asking costs money and changes nothing
    return offline.confidence < cfg.call_below_confidence or offline.category in cfg.call_for_categories


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.calls + b.calls, a.prompt_tokens + b.prompt_tokens, a.completion_tokens + b.completion_tokens,
                 a.cost_usd + b.cost_usd, a.failed + b.failed)


class CascadeClassifier:
    """Classifier protocol. `totals` and `counts` add up this process's LLM use for logs and benchmarks."""

    name = "cascade"

    def __init__(self, offline: Classifier, llm: Classifier | None, memory: ClassificationMemory,
                 cfg: LlmConfig, threshold: float, clock: Callable[[], datetime] = _utcnow) -> None:
        self._offline, self._llm, self._memory = offline, llm, memory
        self._cfg, self._threshold, self._clock = cfg, threshold, clock
        self.totals = Usage()
        self.counts = {"llm": 0, "cache": 0, "budget": 0, "failed": 0, "paused": 0, "injection": 0, "disagreed": 0,
                       "phishing": 0}
        self._day, self._day_baseline, self._day_spent = "", 0.0, 0.0
        self._paused_until: datetime | None = None
        self._pause_reason = ""

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        offline = self._offline.classify(email, hint)
        try:
            result = self._escalate(email, hint, offline) if self._wants_llm(email, offline, hint) else offline
        except LlmUnavailable as exc:
            raise LlmUnavailable(str(exc).removeprefix("LLM unavailable: "),
                                 self._flag_injection(email, exc.fallback)) from None
        return self._flag_injection(email, self._second_opinion(offline, result))

    def _second_opinion(self, offline: Classification, result: Classification) -> Classification:
        """Review instead of acting when the deciding answer is contradicted by the offline side."""
        result = replace(result, phishing=offline.phishing)
        reason = None
        if result.classifier != offline.classifier and (result.category in DISPOSABLE) != (
                offline.category in DISPOSABLE):
            # An LLM that lost its instructions or was talked round answers with full confidence: one answer alone
            # must not trash a lead nor draft a reply to spam.
            self.counts["disagreed"] += 1
            reason = (f"the LLM ({result.category}) and the offline classifier ({offline.category} "
                      f"{offline.confidence:.2f}) disagree on whether this is business mail")
        elif offline.phishing and result.category not in DISPOSABLE:
            self.counts["phishing"] += 1
            reason = f"phishing signals ({offline.phishing}) on mail classified as {result.category}"
        if reason is None:
            return result
        return replace(result, review_reason=result.review_reason or reason, reasons=(*result.reasons, reason))

    def _flag_injection(self, email: Email, result: Classification) -> Classification:
        rule = detect_injection(email)
        if rule is None:
            return result
        self.counts["injection"] += 1
        return replace(result, review_reason=INJECTION_REVIEW,
                       reasons=(*result.reasons, f"injection pattern: {rule}"),
                       fields={**result.fields, "injection_suspected": True})

    def _wants_llm(self, email: Email, offline: Classification, hint: PrefilterResult | None) -> bool:
        return self._llm is not None and wants_llm(self._cfg, self._threshold, email, offline, hint)

    def _escalate(self, email: Email, hint: PrefilterResult | None, offline: Classification) -> Classification:
        assert self._llm is not None
        cached = self._cached(email)
        if cached is not None:
            return cached
        now = self._clock()
        if self._paused_until is not None and now < self._paused_until:
            self.counts["paused"] += 1
            reason = f"{self._pause_reason} (paused)"
            raise LlmUnavailable(reason, self._review(offline, f"LLM failed: {reason}"))
        if self._spent_today(now) >= self._cfg.daily_budget_usd:
            self.counts["budget"] += 1
            return self._review(offline, "LLM budget exhausted")
        try:
            result = self._llm.classify(email, hint)
        except LlmFailure as exc:
            self.counts["failed"] += 1
            self._account(exc.usage)
            fallback = self._review(offline, f"LLM failed: {exc.reason}", exc.usage)
            if exc.pause_seconds > 0:  # the service is down, not this mail's fault: try it again later
                self._paused_until, self._pause_reason = now + timedelta(seconds=exc.pause_seconds), exc.reason
                raise LlmUnavailable(exc.reason, fallback) from None
            return fallback
        except Exception as exc:  # an SDK or network error the adapter did not map: retried like an outage
            log.warning("LLM call failed: %s", type(exc).__name__)
            self.counts["failed"] += 1
            unanswered = Usage(calls=1, failed=1)
            self._account(unanswered)
            reason = type(exc).__name__
            raise LlmUnavailable(reason, self._review(offline, f"LLM failed: {reason}", unanswered)) from None
        self._account(result.usage)
        self.counts["llm"] += 1
        return replace(result, language=result.language or offline.language,
                       reasons=(f"offline: {offline.category} {offline.confidence:.2f}", *result.reasons))

    def _cached(self, email: Email) -> Classification | None:
        if self._cfg.thread_cache_hours <= 0 or not email.thread_id:
            return None
        earlier = self._memory.recent_thread_classification(email.thread_id, self._cfg.thread_cache_hours)
        # Only a clean model result is worth reusing: not a review, not a sender rule about another message.
        if earlier is None or earlier.review_reason or earlier.classifier == "prefilter":
            return None
        self.counts["cache"] += 1
        origin = earlier.classifier.removeprefix("cache:")
        return replace(earlier, classifier=f"cache:{origin}", usage=Usage(),
                       reasons=(*earlier.reasons, "same thread classified recently"))

    def _spent_today(self, now: datetime) -> float:
        day = now.astimezone(UTC).date().isoformat()
        recorded = self._memory.llm_spent_usd(day)
        if day != self._day:
            self._day, self._day_baseline, self._day_spent = day, recorded, 0.0
        # The ledger records a call only when the pipeline commits the message, so it may lag behind this
        # process; whichever is larger (its figure or ours on top of what it said at the start) is the truth.
        return max(recorded, self._day_baseline + self._day_spent)

    def _account(self, usage: Usage) -> None:
        self.totals = _add(self.totals, usage)
        self._day_spent += usage.cost_usd

    def _review(self, offline: Classification, reason: str, usage: Usage | None = None) -> Classification:
        return replace(offline, review_reason=reason, usage=usage or Usage())


# ---------------------------------------------------------------- injection detector
# Patterns run on lower-cased text with accents, zero-width characters and look-alike letters removed, so
# one spelling covers "précédentes"/"precedentes" and "іgnore" with a Cyrillic i. Each one names what a
# sender writes when addressing the machine rather than a person; ordinary requests ("please forward this
# to your sales team", "treat this as confidential") are deliberately left out.
_ADDR = r"[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,200}"
_OBJ = (r" (?:this|it|that|these|me|us|(?:the|this|my|our) (?:e-?mail|mail|message|lead|ticket|thread|request|"
        r"inquiry|enquiry|contact|sender))")
_TARGET = (r"(?:an? )?(?:spam|junk|newsletter|lead|hot lead|qualified lead|support|accounting|vendor|job|"
           r"applicant|other|urgent|high priority|priority|important|safe|not spam|legitimate|processed|trusted)\b")
_INJECTION_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ignore-instructions", r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,30}\b(?:previous|prior|above|"
     r"earlier|preceding|all|any|your|system|original)\b.{0,20}\b(?:instructions?|prompts?|rules|directions|"
     r"guidelines|commands?)\b"),
    ("disregard-above", r"\bdisregard (?:all |any )?(?:of )?(?:the |this )?(?:above|previous|prior|preceding)\b"),
    ("classify-as", r"\b(?:classify|categori[sz]e|reclassify)\b(?:" + _OBJ + r")? as " + _TARGET),
    ("mark-as", r"\b(?:mark|label|tag|flag|file)\b" + _OBJ + r" (?:as|under) " + _TARGET),
    ("assign-to", r"\b(?:assign|reassign|route|reroute|dispatch|allocate)\b(?: (?:this|it|that|me|the (?:lead|"
     r"e-?mail|mail|message|ticket|request|inquiry|enquiry|case|contact|deal|thread)) to\b| .{0,40}?\bto " + _ADDR
     + ")"),
    ("forward-to-address", r"\b(?:forward|redirect|reenvi\w*|inoltra\w*|encaminh\w*|leite\w*|transfere\w*|"
     r"transfira|redirig\w*)\b(?: [\w'-]+){0,6} (?:to|a|an|al|ao|para) " + _ADDR),
    ("role-change", r"\b(?:you are now (?:an?|the|my)? ?[\w-]{0,20},? ?(?:an? )?(?:unrestricted|ai|assistant|bot|"
     r"model|classifier|agent|admin|administrator|system)|you are now in (?:\w+ )?(?:admin|developer|debug|god|"
     r"maintenance|unrestricted) mode|you are now (?:dan|devmode|unrestricted|jailbroken)|from now on,? you "
     r"(?:are|will|must|should)|act as (?:an?|the) [\w ]{0,15}(?:ai|assistant|admin|system|classifier)|"
     r"pretend (?:that )?you are)\b"),
    ("addressing-ai", r"\b(?:as an? (?:ai|a\.i\.|language model|llm|large language model)|if you are an? "
     r"(?:ai|llm|language model|bot|automated|assistant|model)|(?:dear|hello|hi|hey|attention|note to|message to|"
     r"instructions? (?:for|to)) (?:the |any |all )?(?:ai|a\.i\.|llm|language model|chatbot|bot|assistant|"
     r"classifier|gpt|chatgpt|automated system|model|ki|ia))\b"),
    ("prompt-terms", r"\b(?:system prompt|system instruction|developer message|prompt injection|"
     r"jailbreak|system override|admin override|new instructions?:|prompt (?:du )?systeme|prompt del sistema|"
     r"system-?prompt)"),
    ("chat-markup", r"<\|?(?:system|im_start|im_end)\|?>|\[/?(?:inst|system)\]|#{2,} ?(?:system|instruction)|"
     r"<{3} ?(?:end|email|begin|start|system)|\bend of (?:the )?(?:email|untrusted|data|input|prompt)\b"),
    ("answer-format", r"\"(?:category|injection_suspected|confidence|review_reason)\"\s*:|\binjection_suspected\b|"
     r"\b(?:respond|reply|answer|output|return)(?: only)? with (?:the |a |this )?(?:json|category|label|"
     r"classification)\b|\bdo(?:n't| not) flag this\b"),
    # German
    ("de-ignore", r"\b(?:ignorier\w*|vergiss|vergessen sie|missachte\w*)\b.{0,30}\b(?:vorherigen|vorigen|"
     r"bisherigen|obigen|fruheren|alle\w*|deine|ihre)\b.{0,20}\b(?:anweisungen|instruktionen|befehle|regeln|"
     r"vorgaben)\b"),
    ("de-classify", r"\b(?:klassifizier\w*|kategorisier\w*|markier\w*|stufe|stufen)\b(?: sie)?(?: [\w-]+){1,3} als\b"),
    ("de-assign", r"\b(?:weise|weisen|ordne|ordnen)\b(?: sie)? (?:diese[nms]?|den|die|das) (?:lead|e-?mail|mail|"
     r"nachricht|anfrage|ticket|kontakt|interessent\w*|vorgang)\b.{0,60}?\bzu\b|\b(?:lead|e-?mail|nachricht|"
     r"anfrage|ticket)\w* .{0,40}?\b(?:zuweisen|zuordnen)\b"),
    ("de-role", r"\b(?:du bist (?:jetzt|nun|ab sofort)|ab (?:jetzt|sofort) bist du|als (?:ki|sprachmodell|"
     r"kunstliche intelligenz)|wenn du eine ki bist|(?:liebe|hallo|an die|hinweis an die) (?:ki|bot|assistent))\b"),
    # French
    ("fr-ignore", r"\b(?:ignore\w*|oublie\w*|neglige\w*)\b.{0,30}\b(?:toutes|tous|les|vos|tes)\b.{0,25}"
     r"\b(?:instructions|consignes|regles|directives)\b"),
    ("fr-classify", r"\b(?:classe[rz]?|classifie[rz]?|categorise[rz]?|marque[rz]?)\b (?:ce|cet|cette|ceci|le|la|les|"
     r"l')[\w' -]{0,30}? comme\b"),
    ("fr-assign", r"\b(?:attribue[rz]?|assigne[rz]?|affecte[rz]?)\b (?:ce|cet|cette|ceci|le|la|les|l')"
     r"[\w' -]{0,30}? a\b"),
    ("fr-role", r"\b(?:vous etes|tu es) (?:maintenant|desormais)\b|\ben tant qu'(?:ia|intelligence artificielle)\b"),
    # Spanish
    ("es-ignore", r"\b(?:ignora|ignore|ignoren|olvida|olvide|omite|omita)\b.{0,30}\b(?:todas|las|tus|sus)\b.{0,25}"
     r"\b(?:instrucciones|indicaciones|reglas|ordenes)\b"),
    ("es-classify", r"\b(?:clasifica|clasifique|clasificar|marca|marque|categoriza)\b (?:este|esta|esto|el|la|lo)"
     r"(?: [\w-]+){0,2} como\b"),
    ("es-assign", r"\b(?:asigna|asigne|asignar|asignen)\b (?:este|esta|esto|el|la|lo)(?: [\w-]+){0,2} a\b"),
    ("es-role", r"\b(?:(?:desde )?ahora eres|como (?:una )?(?:ia|inteligencia artificial))\b"),
    # Italian
    ("it-ignore", r"\b(?:ignora|ignorate|ignori|dimentica|dimenticate)\b.{0,30}\b(?:tutte|le|tue|sue)\b.{0,25}"
     r"\b(?:istruzioni|indicazioni|regole)\b"),
    ("it-classify", r"\b(?:classifica|classificate|segna|segnate|contrassegna|marca)\b (?:questa|questo|la|il|lo)"
     r"(?: [\w'-]+){0,2} come\b"),
    ("it-assign", r"\b(?:assegna|assegnate|assegnare)\b (?:questa|questo|la|il|lo)(?: [\w'-]+){0,2} a\b"),
    ("it-role", r"\b(?:(?:ora|adesso) sei|come (?:un'?|una )?(?:ia|intelligenza artificiale))\b"),
    # Portuguese
    ("pt-ignore", r"\b(?:ignore|ignora|ignorem|esqueca|esquecam)\b.{0,30}\b(?:todas|as|suas|tuas)\b.{0,25}"
     r"\b(?:instrucoes|instrucao|regras|ordens)\b"),
    ("pt-classify", r"\b(?:classifique|classifica|marque|marca)\b (?:este|esta|isto|o|a)(?: [\w-]+){0,2} como\b"),
    ("pt-assign", r"\b(?:atribua|atribui|designe)\b (?:este|esta|isto|o|a)(?: [\w-]+){0,2} (?:a|ao|para)\b"),
    ("pt-role", r"\b(?:agora (?:voce|tu) e|voce agora e|como (?:uma )?ia)\b"),
)


@dataclass(frozen=True)
class Gate:
    """Words (or word starts, or substrings) a pattern cannot match without: most mail skips most patterns."""

    words: frozenset[str]
    prefixes: re.Pattern[str] | None = None  # word starts, as one regex: a C-level scan, not a Python loop
    subs: tuple[str, ...] = ()

    def admits(self, text: str, words: set[str]) -> bool:
        return (not self.words.isdisjoint(words) or any(s in text for s in self.subs)
                or bool(self.prefixes and self.prefixes.search(text)))


def W(words: str, prefixes: tuple[str, ...] = (), subs: tuple[str, ...] = ()) -> Gate:  # noqa: N802
    starts = re.compile(r"\b(?:" + "|".join(map(re.escape, prefixes)) + ")") if prefixes else None
    return Gate(frozenset(words.split()), starts, subs)


_GATES: dict[str, Gate] = {
    "ignore-instructions": W("instruction instructions prompt prompts rules directions guidelines command commands"),
    "disregard-above": W("disregard"),
    "classify-as": W("classify categorise categorize reclassify"),
    "mark-as": W("mark label tag flag file"),
    "assign-to": W("assign reassign route reroute dispatch allocate"),
    "forward-to-address": W("forward redirect transfira",
                            prefixes=("reenvi", "inoltra", "encaminh", "leite", "transfere", "redirig")),
    "role-change": W("you act pretend"),
    "addressing-ai": W("ai llm language bot assistant classifier gpt chatgpt automated model chatbot ki ia",
                       subs=("a.i.",)),
    "prompt-terms": W("prompt jailbreak override instruction instructions developer injection"),
    "chat-markup": W("", subs=("<|", "<system", "<im_", "[inst", "[/inst", "[system", "[/system", "##", "<<<",
                               "end of")),
    "answer-format": W("respond reply answer output return flag injection_suspected",
                       subs=('"category"', '"confidence"', '"review_reason"')),
    "de-ignore": W("anweisungen instruktionen befehle regeln vorgaben"),
    "de-classify": W("stufe stufen", prefixes=("klassifizier", "kategorisier", "markier")),
    "de-assign": W("weise weisen ordne ordnen zuweisen zuordnen"),
    "de-role": W("du ki sprachmodell kunstliche bot assistent"),
    "fr-ignore": W("instructions consignes regles directives"),
    "fr-classify": W("comme"),
    "fr-assign": W("attribue attribuer attribuez assigne assigner assignez affecte affecter affectez"),
    "fr-role": W("maintenant desormais ia intelligence"),
    "es-ignore": W("instrucciones indicaciones reglas ordenes"),
    "es-classify": W("como"),
    "es-assign": W("asigna asigne asignar asignen"),
    "es-role": W("eres ia inteligencia"),
    "it-ignore": W("istruzioni indicazioni regole"),
    "it-classify": W("come"),
    "it-assign": W("assegna assegnate assegnare"),
    "it-role": W("sei ia intelligenza"),
    "pt-ignore": W("instrucoes instrucao regras ordens"),
    "pt-classify": W("como"),
    "pt-assign": W("atribua atribui designe"),
    "pt-role": W("voce ia"),
}
_CHECKS = tuple((name, re.compile(rx), _GATES[name]) for name, rx in _INJECTION_PATTERNS)
_WORDS = re.compile(r"[a-z_]+")
_SPACED_RUN = re.compile(r"(?:\b\w ){4,}\w\b")
SCAN_CHARS = 20_000  # instructions hidden past this point are beyond what any classifier reads
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\u00ad"))
_LOOKALIKES = str.maketrans("аеорсхуіјѕԁһАЕОРСХІЈЅΑΕΟΡΤΙ", "aeopcxyijsdhAEOPCXIJSAEOPTI")
_SPACED_LETTERS = re.compile(r"(?<=\b\w) (?=\w\b)")  # "i g n o r e" -> "ignore"; words stay apart at 2+ spaces
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
# The combining marks NFKD splits off Latin letters ("é" -> "e" + U+0301); other scripts stay as they are.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def _normalise(text: str) -> str:
    if not text.isascii():  # most mail is ASCII: skip the per-character work for it
        text = unicodedata.normalize("NFKD", text.translate(_INVISIBLE).translate(_LOOKALIKES))
        text = _COMBINING.sub("", text)
    return " ".join(text.lower().split())


def _decoded_base64(text: str) -> str:
    out = []
    for token in _BASE64.findall(text):
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if decoded and sum(ch.isprintable() or ch.isspace() for ch in decoded) / len(decoded) > 0.9:
            out.append(decoded)
    return "\n".join(out)


def detect_injection(email: Email) -> str | None:
    """Name of the first instruction-like pattern found anywhere in the mail's text, or None."""
    # email.text is the subject plus the start of the body: both are already in here.
    raw = "\n".join((email.from_name, email.subject, email.body[:SCAN_CHARS], email.signature,
                     email.quoted[:SCAN_CHARS], *(a.filename for a in email.attachments)))
    variants = [raw]
    if _SPACED_RUN.search(raw):
        variants.append(_SPACED_LETTERS.sub("", raw))
    if _BASE64.search(raw):
        variants.append(_decoded_base64(raw))
    for variant in variants:
        text = _normalise(variant)
        words = set(_WORDS.findall(text))
        for name, rx, gate in _CHECKS:
            if gate.admits(text, words) and rx.search(text):
                return name
    return None
