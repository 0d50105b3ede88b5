"""Progress on long work (eval, learn, a first sync): a bar on a terminal, a log line every few seconds elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")
log = logging.getLogger("bot.progress")

LOG_EVERY = 5.0  # seconds between log lines
BAR = 30


class Progress:
    def __init__(self, what: str, total: int, stream: TextIO | None = None, tty: bool | None = None,
                 every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.done = what, total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every, self.clock = every, clock
        self.started = self.last = clock()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.tty:
            filled = BAR * self.done // max(1, self.total)
            self.stream.write(f"\r{self.what} [{'#' * filled}{'.' * (BAR - filled)}] {self.done}/{self.total}")
            self.stream.flush()
        elif now - self.last >= self.every:
            self.last = now
            rate = self.done / max(1e-9, now - self.started)
            left = (self.total - self.done) / rate if rate else 0
            log.info("%s: %d of %d (%.1f/s, about %.0f s left)", self.what, self.done, self.total, rate, left)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def tracked(items: Iterable[T], what: str, total: int, show: bool = True) -> Iterator[T]:
    """Yield the items, showing progress (nothing when show is False)."""
    if not show:
        yield from items
        return
    bar = Progress(what, total)
    try:
        for item in items:
            yield item
            bar.step()
    finally:
        bar.finish()
