"""The offline classifier: a logistic-regression text model trained on the gold set (train split) and the training
set beside it, steered by hand-written cues (bot.classify.cues).

A few hundred training messages in seven languages cannot teach a model everything, so every message also yields
cue tokens (multilingual phrase lists per category and per intent, the sender's role, structural signs of bulk
mail and phishing) that the text model weighs like words. Whether a message is spam is decided by a hand-weighted
spam score plus a bounded, one-sided vote of the text model: kinds of spam the gold set never showed are still
recognised, and mail unlike anything in the gold set is not called spam because the model is unsure about it. A
guard keeps mail that talks business out of the trash (its spam/newsletter confidence stays below the review
threshold). Among the other categories the decision is cost-sensitive: lead wins close calls (see best()).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.classify import extract
from bot.classify.cues import Cues, analyse, features, tokens
from bot.classify.language import detect_language
from bot.models import CATEGORIES, DISPOSABLE, Classification, Email, PrefilterResult

log = logging.getLogger(__name__)

MODEL_VERSION = 1
_BUCKETS = 1 << 20  # hashed features: the model file holds no readable words from the mail it learnt from
_EPOCHS = 10
_LEARNING_RATE = 2.0
_BIAS_RATE = 0.1  # the category frequencies of the gold set are not those of the inbox: learn them slowly
_MIN_GRADIENT = 0.02
_CUE_VALUE = 0.6  # cue tokens count the same in short and long mail; words are normalised by length
_LEAD_BIAS = 2.8  # log of how much more a missed lead costs than a lead a person re-files (cross-validated)
_SPAM_OFFSET = 1.6  # spam score at which the cues alone make spam and not-spam equally likely
_MODEL_SPAM_REF = 0.5  # the text model's spam probability for mail it has no opinion about
_MODEL_SPAM_VOTE = (0.0, 2.5)  # bounds of its spam log-odds against that: it may add evidence, never veto
_MODEL_SPAM_WEIGHT = 0.6
_BUSINESS = ("lead", "support", "accounting", "vendor", "job_applicant")
_SAFE_CAP = 0.6  # spam/newsletter confidence when the text also talks business: review, never trash
_CACHE_LIMIT = 50_000  # feature strings; caps the cache at a few MB however much mail passes
TRAIN_DIR_NAME = "train"  # the training set beside the gold folder
_UNSEEN: Any = object()


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (_BUCKETS - 1)


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -50 else 0.0


_LEAD_FACTOR = math.exp(_LEAD_BIAS)


@dataclass
class Model:
    """Per hashed feature one weight per category, a bias per category, and a temperature (scale, 1 as trained)."""

    prior: list[float]
    weights: dict[int, list[float]]
    scale: float = 1.0
    examples: dict[str, int] = field(default_factory=dict)

    def score(self, words: Iterable[list[float]], distinct_words: int, cues: Iterable[list[float]]) -> list[float]:
        """Text-model probabilities from the weight vectors of the known word and cue features of one message."""
        n = len(CATEGORIES)
        word_total, cue_total = [0.0] * n, [0.0] * n
        for vectors, total in ((words, word_total), (cues, cue_total)):
            for w in vectors:
                for i, x in enumerate(w):
                    total[i] += x
        xw = 1.0 / math.sqrt(max(1, distinct_words))
        return _softmax([self.scale * (p + xw * t + _CUE_VALUE * c)
                         for p, t, c in zip(self.prior, word_total, cue_total, strict=True)])

    def probabilities(self, words: Sequence[int], cues: Sequence[int]) -> list[float]:
        """Text-model probabilities from distinct word and cue buckets."""
        known = self.weights.get
        return self.score(filter(None, map(known, words)), len(words), filter(None, map(known, cues)))

    def save(self, path: Path) -> None:
        """Write the model as JSON, atomically and readable only by the owner."""
        doc = {"version": MODEL_VERSION, "categories": list(CATEGORIES), "prior": self.prior,
               "scale": self.scale, "examples": self.examples,
               "weights": {str(b): [round(x, 4) for x in w] for b, w in self.weights.items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Model:
        """Read a saved model; ValueError when it is not one this version can use."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the model: {exc}") from None
        n = len(CATEGORIES)
        if not isinstance(doc, dict) or doc.get("version") != MODEL_VERSION \
                or tuple(doc.get("categories", ())) != CATEGORIES:
            raise ValueError("the model was made for another version or set of categories")
        try:
            prior = [float(x) for x in doc["prior"]]
            weights = {int(b): [float(x) for x in w] for b, w in doc["weights"].items()}
            scale = float(doc["scale"])
            examples = {str(k): int(v) for k, v in doc.get("examples", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError("the model file is malformed") from None
        if len(prior) != n or any(len(w) != n for w in weights.values()) or not 0 < scale < 100:
            raise ValueError("the model file is malformed")
        return cls(prior=prior, weights=weights, scale=scale, examples=examples)


Row = tuple[list[int], list[int], int]  # distinct word buckets, distinct cue buckets, category index


def _fit(rows: Sequence[Row]) -> Model:
    """Multinomial logistic regression by stochastic gradient descent; few epochs keep the weights small."""
    n = len(CATEGORIES)
    index: dict[int, int] = {}
    docs = [([index.setdefault(b, len(index)) for b in words], 1.0 / math.sqrt(max(1, len(words))),
             [index.setdefault(b, len(index)) for b in cues], label) for words, cues, label in rows]
    columns = [[0.0] * len(index) for _ in range(n)]  # one weight column per category: sum(map(...)) stays in C
    bias = [0.0] * n
    order = list(range(len(docs)))
    rng = random.Random(0)  # a fixed shuffle: the same gold set always gives the same model
    for epoch in range(_EPOCHS):
        rng.shuffle(order)
        rate = _LEARNING_RATE / (1.0 + epoch) ** 0.5
        for d in order:
            iw, xw, ic, label = docs[d]
            probs = _softmax([bias[c] + xw * sum(map(columns[c].__getitem__, iw))
                              + _CUE_VALUE * sum(map(columns[c].__getitem__, ic)) for c in range(n)])
            for c in range(n):
                gradient = (probs[c] - (1.0 if c == label else 0.0))
                if abs(gradient) < _MIN_GRADIENT:
                    continue  # already fitted: skipping the update is most of the training speed
                column = columns[c]
                step = rate * gradient * xw
                for f in iw:
                    column[f] -= step
                step = rate * gradient * _CUE_VALUE
                for f in ic:
                    column[f] -= step
                bias[c] -= rate * gradient * _BIAS_RATE
    weights = {b: [columns[c][i] for c in range(n)] for b, i in index.items()}
    counts = [sum(1 for *_, label in rows if label == i) for i in range(n)]
    return Model(prior=bias, weights=weights, examples={CATEGORIES[i]: counts[i] for i in range(n) if counts[i]})


def vectorize(feats: Iterable[int | str], buckets: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split the hashed features into distinct word buckets and distinct cue buckets."""
    words: dict[int, None] = {}
    cues: dict[int, None] = {}
    for f, b in zip(feats, buckets, strict=True):
        (cues if isinstance(f, str) and f.startswith("!") else words)[b] = None
    return list(words), list(cues)


def train(examples: Iterable[tuple[Email, str]]) -> Model:
    """Fit the text model on labelled mail (labels outside CATEGORIES are skipped)."""
    rows: list[Row] = []
    for email, category in examples:
        if category in CATEGORIES:
            feats = features(email, analyse(email))
            rows.append((*vectorize(feats, [_bucket(f) for f in feats]), CATEGORIES.index(category)))
    return _fit(rows)


def combine(text_probs: Sequence[float], cues: Cues) -> dict[str, float]:
    """Final probabilities: the spam score with a bounded vote of the text model decides spam; the text model
    shares the rest among the other categories."""
    q = dict(zip(CATEGORIES, text_probs, strict=True))
    q_spam = min(max(q["spam"], 1e-9), 1 - 1e-9)
    low, high = _MODEL_SPAM_VOTE
    vote = min(high, max(low, _logit(q_spam) - _logit(_MODEL_SPAM_REF)))
    p_spam = _sigmoid(cues.spam_score - _SPAM_OFFSET + _MODEL_SPAM_WEIGHT * vote)
    probs = {c: (1 - p_spam) * q[c] / (1 - q_spam) for c in CATEGORIES if c != "spam"}
    probs["spam"] = p_spam
    return probs


def best(probs: dict[str, float], among: Iterable[str]) -> str:
    """The most likely of `among`, lead counted _LEAD_FACTOR times: a missed lead costs far more than a lead a
    person re-files. The confidence stays the untilted probability, so a lead won only by the tilt is reviewed."""
    return max(among, key=lambda c: probs[c] * (_LEAD_FACTOR if c == "lead" else 1.0))


def _usable(text: str) -> bool:
    """Enough text to judge: a few words, or a line of a script written without spaces."""
    return len(tokens(text)) >= 3 or sum(1 for c in text[:200] if c.isalpha()) >= 10


def _describe(feature: str) -> str:
    if feature.startswith(("!spam:", "!flag:")):
        return feature[6:]
    if feature.startswith("!"):
        return f"{feature[1:].partition(':')[0]} wording"
    if feature.startswith("s:"):
        return f"subject word {feature[2:][:30]}"
    return f"word {feature[:30]}"


_Vectors = dict[str, list[float] | None]  # feature -> its weights, None when the model does not know it


class OfflineClassifier:
    """Classifies mail with a trained Model; needs no network and no key."""

    name = "offline"

    def __init__(self, model: Model, languages: Sequence[str], default_language: str, text_chars: int,
                 own_names: Sequence[str] = (), own_domains: Sequence[str] = ()) -> None:
        self.model = model
        self.languages = tuple(languages)
        self.default_language = default_language  # what the caller falls back to when `language` is None
        self.text_chars = text_chars
        self.own_names = tuple(own_names)
        self.own_domains = tuple(own_domains)
        self._cache: dict[str, list[float] | None] = {}

    def _vectors(self, feats: Iterable[str]) -> tuple[_Vectors, int, _Vectors]:
        """The weight vector (None when unknown) of each distinct word and cue feature; hashing costs more than a
        lookup and words repeat from mail to mail, so the vectors are cached by feature."""
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        words: _Vectors = {}
        cues: _Vectors = {}
        for f in feats:
            target = cues if f[0] == "!" else words
            if f not in target:
                w = cache.get(f, _UNSEEN)
                if w is _UNSEEN:
                    w = cache[f] = self.model.weights.get(_bucket(f))
                target[f] = w
        return words, len(words), cues

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        """Category, calibrated-ish confidence, language and the sender's details; never raises for bad mail."""
        # Body first: a subject is short and often still in the language of an earlier message ("RE: Quotation").
        language, _ = detect_language(f"{email.body[:self.text_chars]}\n{email.subject}", self.languages)
        if email.defects and not _usable(email.text):
            return Classification(category="other", confidence=0.2, language=language, classifier=self.name,
                                  person_email=extract.person_email(email), reasons=("no usable text",),
                                  review_reason=f"unreadable message: {email.defects[0]}"[:200])
        cues = analyse(email)
        words, distinct, cue_features = self._vectors(features(email, cues))
        probs = combine(self.model.score(filter(None, words.values()), distinct, filter(None, cue_features.values())),
                        cues)
        review_reason = None
        if hint is not None and hint.outcome == "hint":
            category, confidence, review_reason = _list_mail(probs)
        else:
            # Spam only on a majority: a plurality of a spread-out distribution is not evidence enough for trash.
            category = "spam" if probs["spam"] >= 0.5 else best(probs, (c for c in CATEGORIES if c != "spam"))
            confidence = probs[category]
        if category in DISPOSABLE and cues.business() + cues.lexicon.get("vendor", 0) >= 2 \
                and cues.spam_score < _SPAM_OFFSET + 2:
            confidence = min(confidence, _SAFE_CAP)  # it talks business: a person decides, nothing is trashed
        if category in DISPOSABLE:  # nobody answers bulk mail: the sender's details are not worth the time
            fields = extract.Fields(None, extract.person_email(email), None, None, False)
        else:
            fields = extract.extract_fields(email, self.own_names, self.own_domains)
            if category == "job_applicant":  # an applicant's university or employer is not a customer
                fields = replace(fields, company=None, company_domain=None)
        return Classification(
            category=category, confidence=round(confidence, 4), language=language, classifier=self.name,
            person_name=fields.person_name, person_email=fields.person_email, company=fields.company,
            company_domain=fields.company_domain, technical_rfq=category == "lead" and fields.technical_rfq,
            reasons=self._reasons(category, {**words, **cue_features}, cues), review_reason=review_reason)

    @staticmethod
    def _reasons(category: str, vectors: _Vectors, cues: Cues) -> tuple[str, ...]:
        """The few features that pushed hardest towards the chosen category, in words a person can check."""
        idx = CATEGORIES.index(category)
        scored = {f: w[idx] for f, w in vectors.items() if w is not None and w[idx] > 0}
        top = [_describe(f) for f in sorted(scored, key=lambda f: (-scored[f], f))[:3]]
        if category == "spam":
            top = [f"spam sign: {name}" for name, w in sorted(cues.spam, key=lambda r: -r[1]) if w > 0][:2] + top
        return tuple(dict.fromkeys(top))[:4]


def _list_mail(probs: dict[str, float]) -> tuple[str, float, str | None]:
    """Bulk/list mail is spam or newsletter, unless it clearly reads as business (then a person looks).

    Spam and newsletter lead to the same action (trash after the grace period), so list mail that is spam is as
    sure as it is one of the two: torn between spam and newsletter is not doubtful. Newsletter confidence is that
    it is not spam, which business mail was just ruled out of.
    """
    if probs["spam"] >= 0.5:
        return "spam", probs["spam"] + probs["newsletter"], None
    business = best(probs, _BUSINESS)
    if probs[business] >= probs["newsletter"]:
        return business, probs[business], "business mail arrived through a mailing list"
    return "newsletter", 1.0 - probs["spam"], None


def _label_lines(gold_dir: Path) -> list[str]:
    merged = gold_dir / "labels.jsonl"
    paths = [merged] if merged.is_file() else sorted(gold_dir.glob("labels.part*.jsonl"))
    lines: list[str] = []
    for p in paths:
        lines += p.read_text(encoding="utf-8").splitlines()
    return lines


_GOLD_FILE = re.compile(r"^[\w.-]+\.eml$")


def gold_labels(gold_dir: Path) -> list[dict[str, Any]]:
    """The gold label records whose file name is a plain .eml name inside gold_dir."""
    records = []
    for line in _label_lines(gold_dir):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("file"), str) and _GOLD_FILE.match(rec["file"]) \
                and (gold_dir / rec["file"]).is_file():
            records.append(rec)
    return records


def _examples(folder: Path, wanted: Callable[[dict[str, Any]], bool], text_chars: int) -> list[tuple[Email, str]]:
    from bot.mime import parse_email  # the parser is only needed when training

    out = []
    for rec in gold_labels(folder):
        if wanted(rec) and rec.get("category") in CATEGORIES:
            raw = (folder / rec["file"]).read_bytes()
            out.append((parse_email(raw, provider_id=rec["file"], thread_id=rec["file"], text_chars=text_chars),
                        rec["category"]))
    return out


def base_examples(gold_dir: Path, split: str = "train", text_chars: int = 1500) -> list[tuple[Email, str]]:
    """The gold messages of one split with their categories: what the shipped model learns from. The train split
    also takes every message of the training set beside the gold set (data/train, labelled like the gold set but
    without a split: all of it is for training), which is never scored."""
    out = _examples(gold_dir, lambda rec: rec.get("split") == split, text_chars)
    extra = gold_dir.parent / TRAIN_DIR_NAME
    if split == "train" and extra.is_dir() and extra.resolve() != gold_dir.resolve():
        out += _examples(extra, lambda rec: rec.get("split", "train") == "train", text_chars)
    return out


def load_or_train(model_path: Path, gold_dir: Path, languages: Sequence[str], default_language: str,
                  text_chars: int, own_names: Sequence[str] = (), own_domains: Sequence[str] = ()
                  ) -> OfflineClassifier:
    """The saved model (what `learn` wrote) when it is valid, else a model trained on base_examples."""
    model: Model | None = None
    if model_path.is_file():
        try:
            model = Model.load(model_path)
        except ValueError as exc:
            log.warning("ignoring the saved model at %s: %s; training on the gold set", model_path, exc)
    if model is None:
        model = train(base_examples(gold_dir, text_chars=text_chars))
    return OfflineClassifier(model, languages, default_language, text_chars, own_names, own_domains)
