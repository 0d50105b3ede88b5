"""Is the bot alive? The heartbeat it leaves after every cycle, and the verdict `python run.py health` gives.

The heartbeat is kept twice: in the ledger (cursor "heartbeat", with the rest of the bot's memory) and as
state/heartbeat.json, which a health probe can read without opening the database. Healthy means: a cycle
succeeded within HEALTHY_INTERVALS poll intervals, no sink queue is older than health.max_outbox_age_minutes,
and the mailbox is authorized (the last cycle did not end in lost authorization).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Config
from bot.state import Ledger, StateError, iso

HEALTHY_INTERVALS = 3
HEARTBEAT_KEY = "heartbeat"
AUTH_LOST = "authorization lost"


@dataclass(frozen=True)
class Heartbeat:
    last_cycle: str  # ISO 8601 UTC: when the last cycle ended, whatever its outcome
    last_success: str  # when the last successful cycle ended ("" when none has)
    outcome: str  # "ok", "failed: <error>", "authorization lost: <error>"
    summary: str  # the last successful cycle's summary
    interval_seconds: int
    pid: int

    @classmethod
    def from_json(cls, text: str) -> Heartbeat | None:
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):
            return None


def heartbeat_path(cfg: Config) -> Path:
    return cfg.state_dir / "heartbeat.json"


def beat(cfg: Config, ledger: Ledger, now: datetime, outcome: str, summary: str = "") -> Heartbeat:
    """Record the end of a cycle in the ledger and in state/heartbeat.json; returns the new heartbeat."""
    old = read_heartbeat(cfg, ledger)
    ok = outcome == "ok"
    hb = Heartbeat(last_cycle=iso(now), last_success=iso(now) if ok else (old.last_success if old else ""),
                   outcome=outcome[:500], summary=summary if ok else (old.summary if old else ""),
                   interval_seconds=cfg.poll.interval_seconds, pid=os.getpid())
    text = json.dumps(asdict(hb))
    with ledger.transaction():
        ledger.set_cursor(HEARTBEAT_KEY, text)
    _write_atomically(heartbeat_path(cfg), text)
    return hb


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_heartbeat(cfg: Config, ledger: Ledger | None = None) -> Heartbeat | None:
    """The file's heartbeat, else the ledger's (the file may have been removed), else None."""
    try:
        found = Heartbeat.from_json(heartbeat_path(cfg).read_text(encoding="utf-8"))
    except OSError:
        found = None
    if found is None and ledger is not None:
        text = ledger.get_cursor(HEARTBEAT_KEY)
        found = Heartbeat.from_json(text) if text else None
    return found


def ago(seconds: float) -> str:
    """A short human duration: 45s, 12 min, 3.5 h, 2.0 d."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _age(stamp: str, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return float("inf")


def verdict(cfg: Config, hb: Heartbeat | None, queues: dict[str, tuple[int, str, str]],
            now: datetime) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    if hb is None:
        return False, "unhealthy: no cycle has completed yet"
    if hb.outcome.startswith(AUTH_LOST):
        return False, f"unhealthy: the mailbox is not authorized ({hb.outcome})"
    limit = timedelta(seconds=HEALTHY_INTERVALS * cfg.poll.interval_seconds).total_seconds()
    since = _age(hb.last_success, now) if hb.last_success else float("inf")
    if since > limit:
        last = f"last success {ago(since)} ago" if hb.last_success else "no cycle has succeeded yet"
        why = f"; last cycle {hb.outcome}" if hb.outcome != "ok" else ""
        return False, f"unhealthy: {last} (limit {ago(limit)}, {HEALTHY_INTERVALS} poll intervals){why}"
    max_age = cfg.operations.health.max_outbox_age_minutes * 60
    for sink, (count, oldest, _) in sorted(queues.items()):
        if _age(oldest, now) > max_age:
            return False, (f"unhealthy: {sink} has {count} item(s) queued, the oldest {ago(_age(oldest, now))} old "
                           f"(limit {ago(max_age)})")
    queued = sum(n for n, _, _ in queues.values())
    return True, f"healthy: last cycle {ago(since)} ago, {queued} item(s) queued for sinks"


def check(cfg: Config, now: datetime) -> tuple[bool, str]:
    """The verdict from what is on disk (the command and a probe in another process use this)."""
    path = cfg.state_dir / "ledger.sqlite3"
    if not path.exists():
        return verdict(cfg, read_heartbeat(cfg), {}, now)
    try:
        ledger = Ledger(path, readonly=True)
    except StateError as exc:
        return False, f"unhealthy: {exc}"
    try:
        return verdict(cfg, read_heartbeat(cfg, ledger), ledger.outbox_queues(), now)
    finally:
        ledger.close()
