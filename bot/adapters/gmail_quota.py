"""Gmail quota: what each API method costs, and a pacer that keeps the bot under the per-user rate.

Gmail charges every call in quota units (a batch request is charged item by item) and allows 15,000 units per
user per minute; beyond that it answers 429 userRateLimitExceeded. A backlog (the first sync of a full inbox, or
the catch-up after an outage) would otherwise spend ~25,000 units a minute on 20 ms round trips, and then spend
its time in retry back-offs instead of work. The pacer makes the waits deliberate and short instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Units per method (https://developers.google.com/gmail/api/reference/quota).
UNITS: dict[str, int] = {
    "users.getProfile": 1,
    "labels.list": 1,
    "labels.create": 5,
    "history.list": 2,
    "messages.list": 5,
    "messages.get": 5,
    "messages.modify": 5,
    "messages.trash": 5,
    "messages.batchModify": 50,
    "threads.get": 10,
    "drafts.list": 5,
    "drafts.create": 10,
}
USER_LIMIT_PER_MINUTE = 15_000
# The bot's default share: headroom for other clients of the same mailbox and for the two sides counting
# minutes slightly differently.
DEFAULT_PER_MINUTE = 14_500


class QuotaPacer:
    """A token bucket over quota units: no 60-second window ever sees more than `per_minute` units.

    The bucket holds at most `burst` units and refills at (per_minute - burst) / 60 units a second, so a window
    gets at most the full bucket plus one minute of refill. A call that finds too few units waits for them
    before it is sent. An idle cycle (3 units) or a handful of new messages never waits. The bound needs
    `burst` to cover the largest single charge: GmailProvider's is a batch of 50 messages.get, 250 units.
    One pacer per mailbox: two providers for the same user would each spend the whole rate.
    """

    def __init__(self, per_minute: float = DEFAULT_PER_MINUTE, burst: float = 500.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < burst < per_minute:
            raise ValueError("burst must be positive and smaller than per_minute")
        self.rate = (per_minute - burst) / 60.0
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._tokens = burst
        self._at = clock()
        self.spent = 0  # units charged so far
        self.waited = 0.0  # seconds slept for quota so far

    def spend(self, method: str, count: int = 1) -> None:
        """Wait until `count` calls of `method` fit, then charge them."""
        units = UNITS.get(method, 5) * count
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= units  # a debt is paid by waiting; time slept refills the bucket on the next call
        self.spent += units
        if self._tokens < 0:
            wait = -self._tokens / self.rate
            log.debug("Gmail quota: waiting %.2f s before %d x %s", wait, count, method)
            self._sleep(wait)
            self.waited += wait
