"""Training the offline model with scikit-learn: hashed features, a multinomial logistic regression, and a
temperature that makes its confidence mean what it says on mail from sources it has not seen.

Only training needs scikit-learn (`learn`, the quality bench, building the shipped model); the running bot reads
the coefficients from JSON (bot.classify.model) and needs nothing but the standard library.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.classify.features import feature_vectors
from bot.classify.model import BUCKETS, LinearModel
from bot.models import CATEGORIES, Email

SOURCE_CAP = 300  # messages of one source that count in full: a big source must not outvote the others
PRUNE = 0.003  # weights smaller than this are left out of the model file: a word moves a logit by < 0.001


@dataclass(frozen=True)
class Example:
    """One labelled training message, with where it comes from and whose inbox it reached."""

    email: Email
    category: str
    source: str
    headers_real: bool = True  # False: placeholder headers (wrapped text), no header feature is learnt from it
    own_domains: tuple[str, ...] = ()
    own_names: tuple[str, ...] = ()


def _matrix(rows: Sequence[dict[int, float]]) -> Any:
    from scipy.sparse import csr_matrix

    indptr, indices, data = [0], [], []
    for row in rows:
        for k, v in row.items():
            indices.append(k)
            data.append(v)
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(rows), BUCKETS), dtype="float64")


def source_weights(sources: Sequence[str]) -> list[float]:
    """Each message's weight: 1, or SOURCE_CAP / size for sources bigger than SOURCE_CAP."""
    sizes = Counter(sources)
    return [min(1.0, SOURCE_CAP / sizes[s]) for s in sources]


def fit(rows: Sequence[dict[int, float]], labels: Sequence[str], weights: Sequence[float], c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    y = [CATEGORIES.index(x) for x in labels]
    clf = LogisticRegression(C=c, solver="saga", max_iter=100, tol=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga stops at max_iter a little short of the last digits: harmless
        clf.fit(_matrix(rows), y, sample_weight=list(weights))
    return clf


def to_model(clf: Any, temperature: float = 1.0, meta: Mapping[str, Any] | None = None) -> LinearModel:
    """The fitted coefficients as a LinearModel (rows of categories, only features with a weight)."""
    import numpy as np

    coef = np.zeros((len(CATEGORIES), BUCKETS))
    bias = [0.0] * len(CATEGORIES)
    if len(clf.classes_) == 2:  # one weight row for "the second class": the same as a softmax of -z/2 and z/2
        rows, intercepts = [-clf.coef_[0] / 2, clf.coef_[0] / 2], [-clf.intercept_[0] / 2, clf.intercept_[0] / 2]
    else:
        rows, intercepts = list(clf.coef_), list(clf.intercept_)
    for i, k in enumerate(clf.classes_):
        coef[int(k)] = rows[i]
        bias[int(k)] = float(intercepts[i])
    missing = [i for i in range(len(CATEGORIES)) if i not in set(int(k) for k in clf.classes_)]
    for i in missing:
        bias[i] = -30.0  # a category the training data never showed is never predicted
    used = np.flatnonzero(np.abs(coef).max(axis=0) > PRUNE)
    weights = {int(b): [float(x) for x in coef[:, b]] for b in used}
    return LinearModel(bias=bias, weights=weights, temperature=temperature, meta=dict(meta or {}))


def fit_temperature(logits: Sequence[Sequence[float]], labels: Sequence[int], weights: Sequence[float]) -> float:
    """The temperature T minimising the weighted log-loss of softmax(logits / T) (a 1-D search)."""
    def loss(t: float) -> float:
        total = 0.0
        for z, y, w in zip(logits, labels, weights, strict=True):
            top = max(z)
            lse = top / t + math.log(sum(math.exp((v - top) / t) for v in z))
            total += w * (lse - z[y] / t)
        return total

    lo, hi = 0.3, 8.0
    for _ in range(40):  # golden-section search on a unimodal loss
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return round((lo + hi) / 2, 4)


def grouped_temperature(rows: Sequence[dict[int, float]], labels: Sequence[str], weights: Sequence[float],
                        groups: Sequence[str], c: float, calibrate_on: Sequence[str] | None = None,
                        folds: int = 4) -> float:
    """Fit without some sources, predict them: the temperature that calibrates predictions on sources the model
    has not seen. `calibrate_on` names the sources predicted (default all): the ones like the mail the bot will
    read, so that very different training sources do not set everyone's confidence."""
    names = sorted(set(calibrate_on or groups) & set(groups))
    if len(set(groups)) < 2 or not names:
        return 1.0
    sizes = Counter(groups)
    fold_of = {g: i % folds for i, g in enumerate(sorted(names, key=lambda g: (-sizes[g], g)))}
    logits: list[list[float]] = [[] for _ in rows]
    for f in range(min(folds, len(names))):
        held = {g for g, k in fold_of.items() if k == f}
        train = [i for i, g in enumerate(groups) if g not in held]
        if len({labels[i] for i in train}) < 2:
            continue
        model = to_model(fit([rows[i] for i in train], [labels[i] for i in train], [weights[i] for i in train], c))
        for i, g in enumerate(groups):
            if g in held:
                logits[i] = model.logits(rows[i])
    scored = [i for i, z in enumerate(logits) if z]
    return fit_temperature([logits[i] for i in scored], [CATEGORIES.index(labels[i]) for i in scored],
                           [1.0 / sizes[groups[i]] for i in scored])  # each source counts the same


Rows = tuple[dict[int, float], dict[int, float]]  # one message: everything, and the cues alone


def train_model(examples: Sequence[Example], c: float = 1.0, calibrate: bool = True,
                progress: Callable[[str], None] | None = None,
                calibrate_on: Sequence[str] | None = None) -> LinearModel:
    """Fit on labelled examples; the temperature comes from out-of-source predictions."""
    rows = [example_rows(x) for x in examples]
    return train_rows(rows, [x.category for x in examples], [x.source for x in examples], c, calibrate, progress,
                      calibrate_on)


def example_rows(x: Example) -> Rows:
    return feature_vectors(x.email, x.headers_real, x.own_domains, x.own_names)


def train_rows(rows: Sequence[Rows], labels: Sequence[str], groups: Sequence[str], c: float = 1.0,
               calibrate: bool = True, progress: Callable[[str], None] | None = None,
               calibrate_on: Sequence[str] | None = None) -> LinearModel:
    """Fit both views on feature rows with their categories and sources."""
    weights = source_weights(groups)
    full = [r for r, _ in rows]
    temperature = grouped_temperature(full, labels, weights, groups, c, calibrate_on) if calibrate else 1.0
    if progress:
        progress(f"temperature {temperature}")
    clf = fit(full, labels, weights, c)
    signs = to_model(fit([s for _, s in rows], labels, weights, c))
    counts = Counter(labels)
    model = to_model(clf, temperature, {"examples": {k: counts[k] for k in CATEGORIES if counts[k]},
                                        "sources": sorted(set(groups)), "c": c})
    model.signs = signs
    return model
