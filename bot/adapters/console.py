"""The offline notifier: one readable log line per new lead, printed at most once per message."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("bot.notify")


def _plain(value: Any, limit: int = 120) -> str:
    # Mail text is untrusted: keep it on one line so it cannot forge further log lines.
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConsoleNotifier:
    name = "console"

    def notify(self, payload: dict[str, Any], retry: bool) -> str:
        """Log the lead's line, at most once per message. A replay (retry=True) means an earlier call for this
        message began, and printing cannot fail: unless the process died in the instant before it printed, the
        line is out already, so it is not printed again (the audit row and the draft remain the record)."""
        if retry:
            return "console (printed before)"
        who = payload.get("from_name") or payload.get("from_addr")
        company = f" ({_plain(payload.get('company'))})" if payload.get("company") else ""
        if payload.get("kind", "lead") != "lead":  # a follow-up: reminder, escalation, reassignment
            log.info("%s for %s: %s%s, %r: %s", _plain(payload.get("kind")).replace("_", " "),
                     _plain(payload.get("assignee_email")), _plain(who), company, _plain(payload.get("subject")),
                     _plain(payload.get("note"), 300))
            return "console"
        log.info("new %s for %s: %s%s, %r [%s], draft %s", _plain(payload.get("category")),
                 _plain(payload.get("assignee_email")), _plain(who), company, _plain(payload.get("subject")),
                 _plain(payload.get("language")) or "?", _plain(payload.get("draft_link")) or "none")
        return "console"
