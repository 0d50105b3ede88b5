"""Labelled mail from every source the triage figures are reported on, for the quality scripts in bench/.

A source is one independent origin of mail: each writer of the bundled gold set (its `source` field), the
training set beside it, each folder of the development corpus (../shared/data/train-corpus) and each folder of
the SpamAssassin development set (../shared/data/spamassassin-dev). Figures are reported per source, and the
headline is the worst source when it is left out of training (a new customer's inbox is a source the model has
never seen).

The development data stays outside the repository; this module only reads it. Its caveats are handled here:
the wrapped sources' headers are placeholders (no header feature may be learnt from them), the scrubbed spam
archive has "[removed]" for every address, the SpamAssassin ham has no finer label than "not spam".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "bot" / "data" / "gold"
TRAIN = ROOT / "bot" / "data" / "train"
# The development data sits next to the repository (../shared/data); a git worktree may be nested deeper.
SHARED = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
              ROOT.parent / "shared" / "data")
DEV = SHARED / "train-corpus"
SPAMASSASSIN = SHARED / "spamassassin-dev"

# SpamAssassin folders: (category for training, the categories that count as right)
_SA = {"easy-ham-1": ("other", None), "hard-ham-1": ("newsletter", None), "spam-1": ("spam", ("spam",))}
_TRAINCORPUS_HEADER = re.compile(rb"^X-Traincorpus-[\w-]+:.*(?:\r?\n[ \t].*)*\r?\n", re.M | re.I)


@dataclass
class Item:
    """One labelled message: where it comes from, its bytes and its label."""

    source: str
    file: str
    path: Path
    category: str
    split: str = "train"  # gold: train | test; every other source is development data ("train")
    language: str | None = None
    automatic: bool | None = None  # machine-sent (auto-reply, bounce, receipt, bulk); None when not known
    coarse: bool = False  # only "spam or not" is known (SpamAssassin ham)
    headers_real: bool = True  # False: the headers are placeholders, nothing may be learnt from them
    company_key: str | None = None
    label: dict[str, Any] = field(default_factory=dict)

    def raw(self) -> bytes:
        data = self.path.read_bytes()
        if not self.headers_real or b"X-Traincorpus" in data[:4000]:
            head, sep, body = data.partition(b"\n\n")
            data = _TRAINCORPUS_HEADER.sub(b"", head + b"\n") .rstrip(b"\n") + sep + body
        return data.replace(b"[removed]", b"") if self.source == "glitchyzorua_spam_archive" else data


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def gold_items(splits: Iterable[str] = ("train",)) -> list[Item]:
    """The bundled gold set (by default only its train split: the test split is for the final figures)."""
    wanted = set(splits)
    out = []
    for rec in _jsonl(GOLD / "labels.jsonl"):
        if rec.get("split") in wanted:
            out.append(Item(rec.get("source") or "gold", rec["file"], GOLD / rec["file"], rec["category"],
                            rec["split"], rec.get("language"), rec.get("automatic"), company_key=rec.get("company_key"),
                            label=rec))
    return out


def train_items() -> list[Item]:
    """The hand-written training set beside the gold set (all of it is for training)."""
    return [Item("gold-t", rec["file"], TRAIN / rec["file"], rec["category"], "train", rec.get("language"),
                 None, company_key="acme-pumps", label=rec) for rec in _jsonl(TRAIN / "labels.jsonl")]


def dev_items() -> list[Item]:
    """The development corpus; "auto" (bounces, auto-replies) is our category other, machine-sent."""
    out = []
    if not DEV.is_dir():
        return out
    for folder in sorted(p for p in DEV.iterdir() if (p / "labels.jsonl").is_file()):
        for rec in _jsonl(folder / "labels.jsonl"):
            auto = rec["category"] == "auto"
            # Wrapped text has placeholder headers; the scrubbed spam archive has its senders and recipients
            # emptied: neither may teach a feature read from headers.
            real = not rec.get("wrapped") and not rec.get("redacted_addresses")
            out.append(Item(folder.name, rec["file"], folder / rec["file"], "other" if auto else rec["category"],
                            "train", rec.get("language"), True if auto or rec["category"] == "newsletter" else None,
                            headers_real=real, label=rec))
    return out


def spamassassin_items() -> list[Item]:
    out = []
    for name, (category, _) in _SA.items():
        folder = SPAMASSASSIN / name
        if folder.is_dir():
            for path in sorted(folder.glob("*.eml")):
                out.append(Item(f"sa-{name}", path.name, path, category, "train", None,
                                True if category in ("spam", "newsletter") else None, coarse=category != "spam"))
    return out


def everything(gold_splits: Iterable[str] = ("train",)) -> list[Item]:
    return [*gold_items(gold_splits), *train_items(), *dev_items(), *spamassassin_items()]


def companies() -> dict[str, dict[str, Any]]:
    """The gold set's inbox owners: company key -> name, domains, mailbox, industry."""
    data: dict[str, dict[str, Any]] = json.loads((GOLD / "companies.json").read_text(encoding="utf-8"))
    return data
