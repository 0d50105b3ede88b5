"""The demo inbox through `run.py --once` with a local OpenAI-compatible server and the README's settings for one.

Used by the opt-in test (tests/integration/test_local_llm.py) and by bench/local_llm_demo.py, which prints the
figures. Each run starts from a fresh state folder with the demo inbox seeded into its Maildir.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.models import DISPOSABLE

ROOT = Path(__file__).resolve().parents[2]


def local_server_settings(url: str, model: str) -> dict[str, Any]:
    """classify.llm for a llama.cpp server with a Gemma model, as the README gives it: everything else default."""
    return {"enabled": True, "base_url": url, "model": model, "mode": "json_object", "system_role": False,
            "input_usd_per_mtok": 0, "output_usd_per_mtok": 0}


@dataclass
class DemoRun:
    mails: int = 0
    processed: int = 0  # decided (and acted on)
    deferred: int = 0  # waiting for the LLM: tried again next cycle
    failed: int = 0  # failed for any other reason
    review: int = 0
    review_reasons: Counter[str] = field(default_factory=Counter)
    llm_calls: int = 0
    drafts: int = 0
    trash: int = 0
    seconds: list[float] = field(default_factory=list)  # wall time of each cycle
    unsafe: list[str] = field(default_factory=list)  # drafted or trashed although the two classifiers disagreed


def _offline_side(classification: dict[str, Any]) -> bool | None:
    """Whether the offline classifier called the mail spam/newsletter, from the cascade's first reason."""
    for reason in classification.get("reasons") or ():
        if reason.startswith("offline: "):
            return reason.split()[1] in DISPOSABLE
    return None


def _reason_kind(reason: str) -> str:
    return re.sub(r" \([^)]*\)", "", reason)  # without the particulars: "the LLM and the offline ... disagree"


def tally(ledger_path: Path, mails: int) -> DemoRun:
    run = DemoRun(mails=mails)
    db = sqlite3.connect(ledger_path)
    for status, error, review, llm_calls, record in db.execute(
            "SELECT status, last_error, review, llm_calls, record FROM messages"):
        run.llm_calls += llm_calls
        if status == "failed":
            if error.startswith("LlmUnavailable"):
                run.deferred += 1
            else:
                run.failed += 1
            continue
        run.processed += 1
        rec = json.loads(record)
        c, d = rec.get("classification") or {}, rec["decision"]
        if review:
            run.review += 1
            run.review_reasons[_reason_kind(c.get("review_reason") or "confidence below the threshold")] += 1
        run.drafts += bool(d["draft"])
        run.trash += d["trash_after_hours"] is not None
        offline = _offline_side(c)
        if (d["draft"] or d["trash_after_hours"] is not None) and offline is not None and offline != (
                c["category"] in DISPOSABLE):
            run.unsafe.append(rec.get("email", {}).get("subject", "?"))
    db.close()
    return run


def run_demo(url: str, model: str, workdir: Path, cycles: int = 1) -> DemoRun:
    """Run `cycles` cycles of `run.py --once` on a fresh copy of the demo inbox and tally the ledger."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(workdir / "state")
    data["mail"]["maildir"].update(path=str(workdir / "maildir"), seed=str(ROOT / "demo" / "inbox"))
    data["audit"]["csv_path"] = str(workdir / "audit.csv")
    data["classify"]["model_path"] = str(workdir / "model.json")  # none there: the shipped model, trained on gold
    data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
    data["classify"]["llm"].update(local_server_settings(url, model))
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    seconds = []
    for _ in range(cycles):
        started = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "run.py"), "--config", str(config), "--once"], cwd=ROOT,
                       check=True, capture_output=True)
        seconds.append(round(time.monotonic() - started, 1))
    run = tally(workdir / "state" / "ledger.sqlite3", len(list((ROOT / "demo" / "inbox").glob("*.eml"))))
    run.seconds = seconds
    return run


def describe(run: DemoRun) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in run.review_reasons.most_common())
    return (f"{run.mails} mails; cycles took {', '.join(f'{s:g} s' for s in run.seconds)}\n"
            f"processed {run.processed}, deferred to the next cycle {run.deferred}, failed otherwise {run.failed}\n"
            f"sent to review {run.review} ({reasons})\n"
            f"LLM calls for the processed mail {run.llm_calls}; drafts {run.drafts}; scheduled for the trash "
            f"{run.trash}; drafted or trashed against the offline classifier {len(run.unsafe)}")
