"""A stateful fake of the Slack Web API methods the notifier uses.

Like Slack, it answers errors as HTTP 200 {"ok": false, "error": ...}, accepts arguments as a query string, a form
or JSON, keeps one DM channel per user, and returns message metadata only when include_all_metadata is set.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.httpfake import FakeServer, Request, Response


@dataclass
class Posted:
    channel: str  # where it landed (a D... id for a DM)
    ts: str
    args: dict[str, Any]  # the chat.postMessage arguments as sent

    @property
    def text(self) -> str:
        return str(self.args.get("text", ""))

    @property
    def blocks_json(self) -> str:
        return json.dumps(self.args.get("blocks", []), ensure_ascii=False)


@dataclass
class FakeSlack:
    srv: FakeServer
    token: str = "xoxb-test-token"
    users: dict[str, str] = field(default_factory=dict)  # email -> user id
    channels: set[str] = field(default_factory=set)  # public/private channel ids that exist
    dms: dict[str, str] = field(default_factory=dict)  # user id -> DM channel id
    posted: list[Posted] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lost_post_responses: int = 0  # the next N posts are delivered, then answered 503 (a lost response)

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        for method, handler in (("users.lookupByEmail", self._lookup), ("chat.postMessage", self._post),
                                ("conversations.open", self._open), ("conversations.history", self._history),
                                ("auth.test", self._auth_test)):
            for verb in ("GET", "POST"):
                self.srv.route(verb, f"/api/{method}", self._wrap(method, handler))

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [args for m, args in self.calls if m == method]

    def in_channel(self, channel: str) -> list[Posted]:
        return [p for p in self.posted if p.channel == channel]

    # ------------------------------------------------------------ plumbing

    def _wrap(self, method: str, handler: Any) -> Any:
        def serve(req: Request) -> Response:
            if req.headers.get("authorization") != f"Bearer {self.token}":
                return Response(200, {"ok": False, "error": "invalid_auth"})
            args: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
            ctype = req.headers.get("content-type", "")
            if "json" in ctype and req.body:
                args.update(req.json())
            elif req.body:
                args.update(req.form())
            self.calls.append((method, args))
            body = handler(args)
            if method == "chat.postMessage" and self.lost_post_responses > 0 and "error" not in body:
                self.lost_post_responses -= 1
                return Response(503, "upstream connect error")
            return Response(200, {"ok": "error" not in body, **body})
        return serve

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"team": "Acme Pumps", "user": "triage-bot", "user_id": "U0BOT"}

    def _dm(self, user: str) -> str:
        return self.dms.setdefault(user, "D" + user[1:])

    def _resolve(self, channel: str) -> str | None:
        if channel in self.users.values():
            return self._dm(channel)
        if channel in self.channels or channel in self.dms.values():
            return channel
        return None

    # ------------------------------------------------------------ methods

    def _lookup(self, args: dict[str, Any]) -> dict[str, Any]:
        uid = self.users.get(str(args.get("email", "")).lower())
        if uid is None:
            return {"error": "users_not_found"}
        return {"user": {"id": uid, "profile": {"email": args["email"]}}}

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(args.get("channel", "")))
        if channel is None:
            return {"error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"error": "no_text"}
        md = args.get("metadata")
        if md is not None and (not isinstance(md, dict) or not isinstance(md.get("event_type"), str)
                               or not isinstance(md.get("event_payload"), dict)):
            return {"error": "invalid_metadata_format"}
        ts = f"1700000000.{next(self._ts):06d}"
        self.posted.append(Posted(channel, ts, args))
        return {"channel": channel, "ts": ts, "message": {"text": args.get("text", ""), "ts": ts}}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("users", ""))
        if user not in self.users.values():
            return {"error": "user_not_found"}
        return {"channel": {"id": self._dm(user)}}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self.channels and channel not in self.dms.values():
            return {"error": "channel_not_found"}
        limit = int(args.get("limit", 100))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        newest_first = list(reversed(self.in_channel(channel)))
        messages = []
        for p in newest_first[:limit]:
            m: dict[str, Any] = {"type": "message", "ts": p.ts, "text": p.text}
            if with_metadata and p.args.get("metadata"):
                m["metadata"] = p.args["metadata"]
            messages.append(m)
        return {"messages": messages, "has_more": len(newest_first) > limit}
