"""The OpenAPI 3.1 document of the HTTP API, served at ``/api/v1/openapi.json``.

Schemas are generated from the very types the handlers decode and encode
(:mod:`termwatch.web.models`, :class:`terminals.contract.Complaint`), then the few rules a
struct checks in code (complaint categories; ``tid`` or ``address``) are written into the
complaint's schema, so a client that follows the document is never refused.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Final

import msgspec

from terminals.contract import COMPLAINT_CATEGORIES, Complaint
from terminals.kinds import INCIDENT_KINDS
from termwatch import __version__
from termwatch.web.models import (
    INCIDENT_STATUSES,
    ComplaintResult,
    Error,
    Expired,
    Incident,
    IncidentDetail,
    NoteIn,
    SearchHit,
    Silence,
    SilenceIn,
    SilencePreview,
    SilencePreviewIn,
    TerminalCard,
)

_REF: Final = "#/components/schemas/{name}"
#: PostgreSQL cannot store NUL, so no text the API takes may contain it.
NO_NUL: Final = "^[^\\u0000]*$"
_TID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,32}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        401: "missing or unknown token",
        403: "the token's role may not do this",
        404: "not found",
        409: "a conflict with the stored state: the incident's state does not allow this,"
        " or the complaint's operation already has one (see `confirm_repeat`)",
        413: "the body is too large",
        422: "a bad input; `field` names it",
        503: "the database is unavailable; retry after `Retry-After` seconds",
    }
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": NO_NUL}


def _id_param(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "description": description,
    }


_READ = (401, 403, 422, 503)
_WRITE = (401, 403, 413, 422, 503)


def _components() -> dict[str, Any]:
    types = [
        Complaint,
        ComplaintResult,
        Incident,
        IncidentDetail,
        TerminalCard,
        SearchHit,
        NoteIn,
        SilenceIn,
        SilencePreviewIn,
        Silence,
        SilencePreview,
        Expired,
        Error,
    ]
    _, schemas = msgspec.json.schema_components(types, ref_template=_REF)
    complaint = schemas["Complaint"]
    complaint["properties"]["category"] = {"type": "string", "enum": list(COMPLAINT_CATEGORIES)}
    complaint["anyOf"] = [
        {"required": ["tid"], "properties": {"tid": {"type": "string"}}},
        {"required": ["address"], "properties": {"address": {"type": "string"}}},
    ]
    for name in ("Complaint", "NoteIn", "SilenceIn", "SilencePreviewIn"):
        for prop in schemas[name]["properties"].values():
            for option in prop.get("anyOf", [prop]):
                plain = not {"pattern", "enum", "format"} & set(option)
                if option.get("type") == "string" and plain:
                    option["pattern"] = NO_NUL
    silence = schemas["SilenceIn"]
    silence["anyOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("tid", "region", "kind", "matchers")
    ]
    silence["oneOf"] = [
        {
            "required": [name],
            "properties": {name: {"not": {"type": "null"}}, other: {"type": "null"}},
        }
        for name, other in (("ends_at", "duration_s"), ("duration_s", "ends_at"))
    ]
    return schemas


@cache
def _document() -> dict[str, Any]:
    card_params = [
        _query("lang", {"type": "string", "enum": ["en", "ru"]}, "language of words and guidance"),
        _query(
            "amount_minor",
            {"type": "integer", "minimum": 0, "maximum": 10**15},
            "only operations of this amount (minor units)",
        ),
        _query("at", {"type": "string", "format": "date-time"}, "operations near this time"),
        _query(
            "window_min",
            {"type": "integer", "minimum": 1, "maximum": 1440},
            "minutes either side of `at` (default 30)",
        ),
        _query("op_id", _text(128), "select this operation"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "operations listed"),
        _query(
            "tz_offset_min",
            {"type": "integer", "minimum": -720, "maximum": 840},
            "minutes east of UTC for times in the guidance text (default 0)",
        ),
    ]
    note_body = {
        "required": False,
        "content": {"application/json": {"schema": _ref("NoteIn")}},
    }
    paths: dict[str, Any] = {
        "/api/v1/complaints": {
            "post": {
                "operationId": "postComplaint",
                "summary": "Register a customer complaint (idempotent by `ref`)",
                "parameters": [
                    _query(
                        "confirm_repeat",
                        {"type": "string", "enum": ["true", "false"]},
                        "register it although its operation already has a complaint",
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Complaint")}},
                },
                "responses": {
                    "201": _json(_ref("ComplaintResult"), "stored and correlated"),
                    "200": _json(_ref("ComplaintResult"), "the `ref` was known: first result"),
                    **_errors(*_WRITE, 409),
                },
            }
        },
        "/api/v1/incidents": {
            "get": {
                "operationId": "listIncidents",
                "summary": "Incidents, newest first",
                "parameters": [
                    _query("status", {"type": "string", "enum": list(INCIDENT_STATUSES)}, ""),
                    _query("tid", _text(64), "one terminal"),
                    _query("kind", {"type": "string", "enum": list(INCIDENT_KINDS)}, ""),
                    _query("service_group", _text(200), ""),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, ""),
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Incident")}, "incidents"),
                    **_errors(*_READ),
                },
            }
        },
        "/api/v1/incidents/{id}": {
            "get": {
                "operationId": "getIncident",
                "summary": "One incident with its evidence",
                "parameters": [_id_param("incident id")],
                "responses": {
                    "200": _json(_ref("IncidentDetail"), "the incident"),
                    **_errors(*_READ, 404),
                },
            }
        },
        "/api/v1/incidents/{id}/ack": {
            "post": {
                "operationId": "acknowledgeIncident",
                "summary": "Acknowledge an open incident",
                "parameters": [_id_param("incident id")],
                "requestBody": note_body,
                "responses": {
                    "200": _json(_ref("IncidentDetail"), "acknowledged"),
                    **_errors(*_WRITE, 404, 409),
                },
            }
        },
        "/api/v1/incidents/{id}/resolve": {
            "post": {
                "operationId": "resolveIncident",
                "summary": "Resolve an incident",
                "parameters": [_id_param("incident id")],
                "requestBody": note_body,
                "responses": {
                    "200": _json(_ref("IncidentDetail"), "resolved"),
                    **_errors(*_WRITE, 404, 409),
                },
            }
        },
        "/api/v1/terminals": {
            "get": {
                "operationId": "searchTerminals",
                "summary": "Find terminals by id, name, address or city",
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "schema": {
                            **_text(200),
                            "minLength": 1,
                            "pattern": r"^[^\u0000]*\S[^\u0000]*$",
                        },
                        "description": "words that must all occur (any order, any case)",
                    },
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, ""),
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("SearchHit")}, "matches"),
                    **_errors(*_READ),
                },
            }
        },
        "/api/v1/terminals/{tid}": {
            "get": {
                "operationId": "getTerminal",
                "summary": "The support agent's card of one terminal, with guidance",
                "parameters": [
                    {
                        "name": "tid",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": _TID_PATTERN},
                        "example": "T-000042",
                    },
                    *card_params,
                ],
                "responses": {
                    "200": _json(_ref("TerminalCard"), "the card"),
                    **_errors(*_READ, 404),
                },
            }
        },
        "/api/v1/silences": {
            "get": {
                "operationId": "listSilences",
                "summary": "Silences in force",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Silence")}, "silences"),
                    **_errors(401, 403, 503),
                },
            },
            "post": {
                "operationId": "createSilence",
                "summary": "Silence notifications for a terminal, region and/or kind",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SilenceIn")}},
                },
                "responses": {
                    "201": _json(_ref("Silence"), "created"),
                    **_errors(*_WRITE, 409),
                },
            },
        },
        "/api/v1/silences/preview": {
            "post": {
                "operationId": "previewSilence",
                "summary": "The open incidents a silence with these matchers would match",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SilencePreviewIn")}},
                },
                "responses": {
                    "200": _json(_ref("SilencePreview"), "the matches and warnings"),
                    **_errors(*_WRITE),
                },
            },
        },
        "/api/v1/silences/{id}": {
            "delete": {
                "operationId": "expireSilence",
                "summary": "End a silence now",
                "parameters": [_id_param("silence id")],
                "responses": {
                    "200": _json(_ref("Expired"), "expired"),
                    **_errors(*_READ, 404),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "termwatch",
            "version": __version__,
            "description": "Complaints, incidents, terminals and silences (api.md, version 1).",
        },
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def openapi_document() -> dict[str, Any]:
    """The document (a copy: callers may change it)."""
    return copy.deepcopy(_document())
