"""A stateful fake of the HubSpot CRM endpoints the CRM adapter uses.

Like HubSpot: contact emails are unique (a second create answers 409 "Contact already exists. Existing ID: N"),
unknown properties and invalid enum options are refused with 400, and search reads an index that can lag
behind writes (`index_lag = True` keeps new records out of search until `reindex()`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.httpfake import FakeServer, Request, Response

KNOWN: dict[str, set[str]] = {
    "contacts": {"email", "firstname", "lastname", "company", "hs_language", "hubspot_owner_id", "lifecyclestage",
                 "hs_lead_status", "phone", "jobtitle"},
    "companies": {"domain", "name", "industry"},
    "notes": {"hs_note_body", "hs_timestamp"},
}
OPTIONS: dict[str, set[str]] = {
    "hs_language": {"en", "de", "fr", "es", "it", "nl", "pt-br", "ja"},
    "lifecyclestage": {"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                       "customer"},
    "hs_lead_status": {"NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED"},
}
_PLURAL = {"contact": "contacts", "company": "companies", "note": "notes", "0-1": "contacts", "0-2": "companies"}
KIND = r"(?P<kind>contacts|companies|notes)"


def _kind(name: str) -> str:
    return _PLURAL.get(name, name)


def _error(status: int, category: str, message: str) -> Response:
    return Response(status, {"status": "error", "message": message, "category": category,
                             "correlationId": "00000000-fake"})


@dataclass
class FakeHubspot:
    srv: FakeServer
    token: str = "pat-test-token"
    records: dict[str, dict[str, dict[str, str]]] = field(default_factory=lambda: {k: {} for k in KNOWN})
    associations: set[tuple[str, str, str, str]] = field(default_factory=set)  # (kind, id, kind, id), both ways
    index_lag: bool = False
    unindexed: set[str] = field(default_factory=set)
    lost_create_responses: int = 0  # the next N creates are stored, then answered 502 (a lost response)

    def __post_init__(self) -> None:
        self._ids = itertools.count(501)
        routes = [
            ("POST", rf"/crm/v3/objects/{KIND}/search", self._search),
            ("POST", r"/crm/v3/objects/notes/batch/read", self._batch_read),
            ("POST", rf"/crm/v3/objects/{KIND}", self._create),
            ("GET", rf"/crm/v3/objects/{KIND}/(?P<id>\d+)", self._get),
            ("PATCH", rf"/crm/v3/objects/{KIND}/(?P<id>\d+)", self._update),
            ("PUT", r"/crm/v4/objects/(?P<a>[\w-]+)/(?P<aid>\d+)/associations/default/(?P<b>[\w-]+)/(?P<bid>\d+)",
             self._associate),
            ("GET", r"/crm/v4/objects/(?P<a>[\w-]+)/(?P<aid>\d+)/associations/(?P<b>[\w-]+)", self._list_assoc),
        ]
        for method, pattern, handler in routes:
            self.srv.route(method, pattern, self._auth(handler))

    # ------------------------------------------------------------ test helpers

    def of(self, kind: str) -> dict[str, dict[str, str]]:
        return self.records[kind]

    def linked(self, kind: str, rid: str, other: str) -> list[str]:
        return sorted(b for (a, aid, k, b) in self.associations if a == kind and aid == rid and k == other)

    def reindex(self) -> None:
        self.unindexed.clear()

    # ------------------------------------------------------------ plumbing

    def _auth(self, handler: Any) -> Any:
        def serve(req: Request) -> Response:
            if req.headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
            return handler(req)
        return serve

    def _validate(self, kind: str, props: dict[str, Any]) -> Response | None:
        for name, value in props.items():
            if name not in KNOWN[kind]:
                return _error(400, "VALIDATION_ERROR", 'Property values were not valid: [{"isValid":false,'
                              f'"message":"Property \\"{name}\\" does not exist","error":"PROPERTY_DOESNT_EXIST",'
                              f'"name":"{name}"}}]')
            if name in OPTIONS and value not in OPTIONS[name]:
                return _error(400, "VALIDATION_ERROR", 'Property values were not valid: [{"isValid":false,'
                              f'"message":"{value} was not one of the allowed options","error":"INVALID_OPTION",'
                              f'"name":"{name}"}}]')
        return None

    def _link(self, a: str, aid: str, b: str, bid: str) -> None:
        self.associations |= {(a, aid, b, bid), (b, bid, a, aid)}

    def _view(self, kind: str, rid: str, props: list[str] | None) -> dict[str, Any]:
        stored = self.records[kind][rid]
        shown = {p: stored.get(p) for p in (props or stored)} | {"hs_object_id": rid}
        return {"id": rid, "properties": shown, "archived": False,
                "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:00:00Z"}

    # ------------------------------------------------------------ handlers

    def _search(self, req: Request) -> Response:
        assert req.match is not None
        kind = req.match.group("kind")
        body = req.json()
        (group,) = body["filterGroups"]
        hits = []
        for rid, props in self.records[kind].items():
            if rid in self.unindexed:
                continue
            if all(f["operator"] == "EQ" and str(props.get(f["propertyName"], "")).lower() == str(f["value"]).lower()
                   for f in group["filters"]):
                hits.append(self._view(kind, rid, body.get("properties")))
        return Response(200, {"total": len(hits), "results": hits[: int(body.get("limit", 10))]})

    def _create(self, req: Request) -> Response:
        assert req.match is not None
        kind = req.match.group("kind")
        body = req.json()
        props = body.get("properties") or {}
        bad = self._validate(kind, props)
        if bad:
            return bad
        if kind == "contacts":
            email = str(props.get("email", "")).lower()
            for rid, other in self.records["contacts"].items():
                if email and str(other.get("email", "")).lower() == email:
                    return _error(409, "CONFLICT", f"Contact already exists. Existing ID: {rid}")
        rid = str(next(self._ids))
        self.records[kind][rid] = {k: str(v) for k, v in props.items()}
        for assoc in body.get("associations") or []:
            self._link(kind, rid, "contacts", str(assoc["to"]["id"]))  # notes are only linked to contacts here
        if self.index_lag:
            self.unindexed.add(rid)
        if self.lost_create_responses > 0:
            self.lost_create_responses -= 1
            return Response(502, "Bad Gateway")
        return Response(201, self._view(kind, rid, None))

    def _get(self, req: Request) -> Response:
        assert req.match is not None
        kind, rid = req.match.group("kind"), req.match.group("id")
        if rid not in self.records[kind]:
            return _error(404, "OBJECT_NOT_FOUND", "resource not found")
        wanted = (req.arg("properties") or "").split(",") if req.arg("properties") else None
        return Response(200, self._view(kind, rid, wanted))

    def _update(self, req: Request) -> Response:
        assert req.match is not None
        kind, rid = req.match.group("kind"), req.match.group("id")
        if rid not in self.records[kind]:
            return _error(404, "OBJECT_NOT_FOUND", "resource not found")
        props = req.json().get("properties") or {}
        bad = self._validate(kind, props)
        if bad:
            return bad
        self.records[kind][rid].update({k: str(v) for k, v in props.items()})
        return Response(200, self._view(kind, rid, None))

    def _associate(self, req: Request) -> Response:
        assert req.match is not None
        a, b = _kind(req.match.group("a")), _kind(req.match.group("b"))
        aid, bid = req.match.group("aid"), req.match.group("bid")
        if aid not in self.records.get(a, {}) or bid not in self.records.get(b, {}):
            return _error(404, "OBJECT_NOT_FOUND", "one of the records does not exist")
        self._link(a, aid, b, bid)
        return Response(200, {"status": "COMPLETE", "results": [{"from": {"id": aid}, "to": {"id": bid}}]})

    def _list_assoc(self, req: Request) -> Response:
        assert req.match is not None
        a, b, aid = _kind(req.match.group("a")), _kind(req.match.group("b")), req.match.group("aid")
        results = [{"toObjectId": int(bid), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 202}]}
                   for bid in self.linked(a, aid, b)]
        return Response(200, {"results": results})

    def _batch_read(self, req: Request) -> Response:
        body = req.json()
        if len(body["inputs"]) > 100:
            return _error(400, "VALIDATION_ERROR", "at most 100 inputs")
        found = [self._view("notes", i["id"], body.get("properties")) for i in body["inputs"]
                 if i["id"] in self.records["notes"]]
        return Response(200, {"status": "COMPLETE", "results": found})
