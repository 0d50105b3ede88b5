"""The offline text model as the running bot uses it: a linear model over hashed features, read from JSON.

A message's features (bot.classify.features) are hashed into BUCKETS buckets; the model holds one weight per
category for every bucket training gave a weight, one bias per category and a temperature. The probabilities are
softmax((bias + sum of weights * feature values) / temperature). The file holds numbers only: no code is loaded
(no pickle), and no word of the training mail can be read back from it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import tempfile
import zlib
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.models import CATEGORIES

BUCKETS = 1 << 18
FORMAT = "triage-linear-1"
_N = len(CATEGORIES)


def _pack(values: array) -> str:
    return base64.b64encode(zlib.compress(values.tobytes(), 9)).decode("ascii")


def _unpack(text: str, typecode: str) -> array:
    out = array(typecode)
    out.frombytes(zlib.decompress(base64.b64decode(text)))
    return out


class LinearModel:
    """Weights live in one dense float32 array (BUCKETS x categories, 8 MB): a lookup per feature, no dict."""

    def __init__(self, bias: list[float], weights: Mapping[int, list[float]], temperature: float = 1.0,
                 meta: dict[str, Any] | None = None, signs: LinearModel | None = None) -> None:
        self.bias = list(bias)
        self.temperature = temperature
        self.meta = dict(meta or {})
        self.signs = signs  # the second view: the same categories from the cues alone, no vocabulary
        dense = array("f", bytes(4 * _N * BUCKETS))
        for b, w in weights.items():
            dense[b * _N:(b + 1) * _N] = array("f", w)
        self._dense = dense

    @classmethod
    def from_dense(cls, bias: list[float], dense: bytes, temperature: float = 1.0,
                   meta: dict[str, Any] | None = None, signs: LinearModel | None = None) -> LinearModel:
        """A model from its weights as float32 bytes (BUCKETS x categories), as numpy arithmetic leaves them."""
        model = cls(bias, {}, temperature, meta, signs)
        if len(dense) != 4 * _N * BUCKETS:
            raise ValueError("weights of the wrong size")
        model._dense = array("f", dense)
        return model

    @property
    def dense(self) -> bytes:
        return self._dense.tobytes()

    @property
    def weights(self) -> dict[int, list[float]]:
        """bucket -> one weight per category, for the buckets that have a weight."""
        dense, out = self._dense, {}
        for b in range(BUCKETS):
            row = dense[b * _N:(b + 1) * _N]
            if any(row):
                out[b] = list(row)
        return out

    def logits(self, row: Mapping[int, float]) -> list[float]:
        """bias + weights . features, before the temperature."""
        z = list(self.bias)
        dense = self._dense
        for b, x in row.items():
            base = b * _N
            for i in range(_N):
                z[i] += dense[base + i] * x
        return z

    def probabilities(self, row: Mapping[int, float]) -> list[float]:
        z = [v / self.temperature for v in self.logits(row)]
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        return [e / total for e in exps]

    def weight(self, bucket: int, category: int) -> float:
        return self._dense[bucket * _N + category]

    def to_json(self) -> dict[str, Any]:
        weights = self.weights
        buckets = sorted(weights)
        flat = array("f", [x for b in buckets for x in weights[b]])
        doc = {"format": FORMAT, "categories": list(CATEGORIES), "buckets_total": BUCKETS,
               "bias": [round(x, 6) for x in self.bias], "temperature": self.temperature, "meta": self.meta,
               "buckets": _pack(array("i", buckets)), "weights": _pack(flat)}
        if self.signs is not None:
            doc["signs"] = self.signs.to_json()
        return doc

    def save(self, path: Path) -> None:
        """Write the model as JSON, atomically and readable only by the owner."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        """Read a saved model; ValueError when it is not one this version can use."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the model: {exc}") from None
        return cls.from_json(doc)

    @classmethod
    def from_json(cls, doc: Any, nested: bool = False) -> LinearModel:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or tuple(doc.get("categories", ())) != CATEGORIES \
                or doc.get("buckets_total") != BUCKETS:
            raise ValueError("the model was made for another version or set of categories")
        try:
            buckets = _unpack(doc["buckets"], "i")
            flat = _unpack(doc["weights"], "f")
            bias = [float(x) for x in doc["bias"]]
            temperature = float(doc["temperature"])
            meta = dict(doc.get("meta") or {})
            signs = cls.from_json(doc["signs"], nested=True) if "signs" in doc and not nested else None
        except (KeyError, TypeError, ValueError, zlib.error, AttributeError) as exc:
            raise ValueError(f"the model file is malformed ({type(exc).__name__})") from None
        if len(bias) != _N or len(flat) != _N * len(buckets) or not 0.05 < temperature < 50 \
                or any(not 0 <= b < BUCKETS for b in buckets):
            raise ValueError("the model file is malformed")
        weights = {int(b): list(flat[i * _N:(i + 1) * _N]) for i, b in enumerate(buckets)}
        return cls(bias=bias, weights=weights, temperature=temperature, meta=meta, signs=signs)
