"""What the offline model reads of a message: hashed features with their values.

Words and word pairs of the text (subject and the sender's own text, quotes and signature cut) share one unit of
weight (each counts 1/sqrt(distinct words), so long and short mail weigh alike); every cue (bot.classify.cues:
phrase groups in the sales languages, the form of the message, the sender's role) counts 1. Features read from
headers can be switched off: training data whose headers are placeholders must not teach the model to recognise
its source by them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

from bot.classify import phishing
from bot.classify.cues import HEADER_FLAGS, Cues, analyse, features
from bot.classify.extract import is_form_notification
from bot.classify.model import BUCKETS
from bot.models import Email

_MASK = BUCKETS - 1


def bucket(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & _MASK


_HEADER_SIGNS = frozenset(f"!phish:{r}" for r in phishing.HEADER_RULES) | {"!shape:answers our mail"}


def _from_headers(feature: str) -> bool:
    kind, _, name = feature[1:].partition(":")
    return kind == "role" or (kind in ("flag", "spam") and name in HEADER_FLAGS) or feature in _HEADER_SIGNS


def vector(feats: Iterable[str], headers: bool = True, words: bool = True) -> dict[int, float]:
    """Hashed features -> value: words share one unit of weight, each cue counts 1. words=False: the cues only
    (the form of a message and its signs, no vocabulary: what the second view of junk reads)."""
    texts: set[str] = set()
    cues: set[str] = set()
    for f in feats:
        if f[0] == "!":
            if headers or not _from_headers(f):
                cues.add(f)
        elif words:
            texts.add(f)
    row: dict[int, float] = {}
    if texts:
        x = 1.0 / math.sqrt(len(texts))
        for w in texts:
            b = bucket(w)
            row[b] = row.get(b, 0.0) + x
    for c in cues:
        b = bucket(c)
        row[b] = row.get(b, 0.0) + 1.0
    return row


def message_features(email: Email, cues: Cues | None = None, verdict: phishing.Verdict | None = None,
                     own_domains: Sequence[str] = ()) -> list[str]:
    """Every feature of one message: words, cues, the phishing signs and the shapes of sales-inbox mail."""
    feats = features(email, cues or analyse(email))
    if verdict is not None:
        feats += phishing.feature_names(verdict)
    feats += shape_features(email, own_domains)
    return feats


def shape_features(email: Email, own_domains: Sequence[str]) -> list[str]:
    """A website's form or chat notification; a reply in a thread that holds mail of ours (a quote we sent)."""
    out = []
    if is_form_notification(email, own_domains):
        out.append("!shape:web form")
    ids = (email.in_reply_to, *email.references)
    if own_domains and any(i.rstrip(">").lower().endswith(tuple("@" + d.lower() for d in own_domains)) for i in ids):
        out.append("!shape:answers our mail")
    return out


def feature_vectors(email: Email, headers: bool = True, own_domains: tuple[str, ...] = (),
                    own_names: tuple[str, ...] = ()) -> tuple[dict[int, float], dict[int, float]]:
    """The inputs of the two views for one training message: everything, and the cues alone."""
    verdict = phishing.inspect(email, own_domains, own_names)
    feats = message_features(email, verdict=verdict, own_domains=own_domains)
    return vector(feats, headers), vector(feats, headers, words=False)
