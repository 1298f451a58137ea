"""The OpenAPI 3.1 description of the secretariat's JSON API (served at /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from gateway.review import SORTS
from intake import workflow

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema or _ERROR}}}


_ERRORS = {
    "401": _answer("No valid bearer token (missing, tampered, expired or logged out)."),
    "403": _answer("The user's role may not do this."),
    "404": _answer("No application has this reference."),
}
_FILTERS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(
        workflow.STATUSES)}},
    {"name": "channel", "in": "query", "schema": {"type": "string"}},
    {"name": "language", "in": "query", "schema": {"type": "string"},
     "description": "ISO 639-1 code of the conversation language"},
    {"name": "country", "in": "query", "schema": {"type": "string"},
     "description": "country of the dispute's location, e.g. `DR Congo`"},
    {"name": "mineral", "in": "query", "schema": {"type": "string"},
     "description": "a choice id of `dispute.minerals`, e.g. `cobalt`"},
    {"name": "issue_type", "in": "query", "schema": {"type": "string"},
     "description": "a choice id of `dispute.issue_types`, e.g. `environmental`"},
    {"name": "confidentiality", "in": "query", "schema": {"type": "string",
                                                          "enum": ["yes", "no"]}},
    {"name": "overdue", "in": "query", "schema": {"type": "string", "enum": ["yes", "no"]},
     "description": "formal review or confidentiality decision past its deadline"},
    {"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(SORTS)}},
]
_REFERENCE = {"name": "reference", "in": "path", "required": True,
              "schema": {"type": "string", "example": "MCM-2026-7K3Q9X"}}
_DEADLINES = {
    "formal_review_deadline": {"type": "string", "format": "date"},
    "formal_review_deadline_provisional": {"type": "boolean"},
    "formal_review_working_days_left": {"type": ["integer", "null"],
                                        "description": "negative when overdue; null once "
                                                       "decided"},
    "formal_review_overdue": {"type": "boolean"},
    "confidentiality_requested": {"type": "boolean"},
    "confidentiality_decision": {"type": ["string", "null"], "enum": ["granted", "refused", None]},
    "confidentiality_decision_deadline": {"type": ["string", "null"], "format": "date"},
    "confidentiality_working_days_left": {"type": ["integer", "null"]},
    "confidentiality_overdue": {"type": "boolean"},
}


def openapi_document() -> dict[str, Any]:
    """The description, built from the same constants the API checks against."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "MCM intake gateway: secretariat API", "version": "1",
                 "description": "The secretariat's queue and decisions. Identity data under a "
                                "confidentiality request is masked as `[confidential]` unless "
                                "revealed by a supervisor or admin; every view of identity "
                                "data and every decision is written to the audit log."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/session": {
                "post": {"summary": "Log in: a bearer token for the other calls",
                         "security": [],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Credentials"}}}},
                         "responses": {
                             "200": _answer("Logged in.", {"$ref": "#/components/schemas/Token"}),
                             "400": _answer("Not a JSON object with username and password."),
                             "401": _answer("Wrong user name or password, or user disabled."),
                             "429": _answer("Too many failed attempts for this user or address; "
                                            "see Retry-After.")}},
                "delete": {"summary": "Log out: the token stops working",
                           "responses": {"204": {"description": "Logged out."},
                                         "401": _ERRORS["401"]}},
            },
            "/api/applications": {
                "get": {"summary": "The queue, earliest formal-review deadline first",
                        "parameters": _FILTERS,
                        "responses": {"200": _answer("The applications.", {
                            "type": "object", "required": ["applications", "count"],
                            "properties": {"count": {"type": "integer"}, "applications": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/QueueEntry"}}}}),
                            "400": _answer("A filter value that is not allowed."),
                            "401": _ERRORS["401"]}},
            },
            "/api/applications/{reference}": {
                "get": {"summary": "One application: fields, evidence, transcript, history",
                        "parameters": [_REFERENCE],
                        "responses": {"200": _answer("The application.", {
                            "$ref": "#/components/schemas/Application"}), **_ERRORS}},
            },
            "/api/applications/{reference}/reveal": {
                "post": {"summary": "One application with identity data revealed (supervisor, "
                                   "admin); logged",
                         "parameters": [_REFERENCE],
                         "responses": {"200": _answer("The application, unmasked.", {
                             "$ref": "#/components/schemas/Application"}), **_ERRORS}},
            },
            "/api/applications/{reference}/actions": {
                "post": {"summary": "Apply one action; the applicant's notice goes to the outbox",
                         "parameters": [_REFERENCE],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/ActionRequest"}}}},
                         "responses": {
                             "200": _answer("Applied.", {"$ref": "#/components/schemas/Outcome"}),
                             "400": _answer("Unknown action, missing message, or bad body."),
                             **_ERRORS,
                             "409": _answer("Not possible in the application's status, no "
                                            "pending confidentiality request, or the "
                                            "application changed since `version`.")}},
            },
            "/api/statistics": {
                "get": {"summary": "Counts and medians for the published reports",
                        "responses": {"200": _answer("The figures.", {"type": "object"}),
                                      "401": _ERRORS["401"]}},
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the token from POST /api/session"}},
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    queue_entry = {
        "type": "object",
        "required": ["reference", "status", "completeness", "formal_review_deadline"],
        "properties": {
            "reference": {"type": "string"},
            "status": {"type": "string", "enum": list(workflow.STATUSES)},
            "version": {"type": "integer", "description": "send it back with an action to be "
                                                          "refused if someone acted meanwhile"},
            "channel": {"type": "string"}, "language": {"type": "string"},
            "country": {"type": ["string", "null"]},
            "minerals": {"type": "array", "items": {"type": "string"}},
            "issue_types": {"type": "array", "items": {"type": "string"}},
            "submitted_at": {"type": "string", "format": "date-time"},
            "completeness": {"type": "object", "additionalProperties": {"type": "boolean"},
                             "description": "the nine required items (Ch.3 §2) by field key"},
            "identity_masked": {"type": "boolean"},
            "applicant": {"type": ["string", "null"],
                          "description": "`[confidential]` when masked"},
            "overdue": {"type": "boolean"},
            "translation": {
                "type": "object", "description": "the machine translations into Chinese and "
                "English: `pending` while any waits (no model installed yet, or not yet run), "
                "else `failed` if one failed, `done`, or `none` without free text",
                "properties": {"status": {"type": "string",
                                          "enum": ["pending", "failed", "done", "none"]},
                               "pending": {"type": "integer"}, "done": {"type": "integer"},
                               "failed": {"type": "integer"}}},
            **_DEADLINES,
        },
    }
    return {
        "Error": {"type": "object", "required": ["error", "code"],
                  "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
        "Credentials": {"type": "object", "required": ["username", "password"],
                        "properties": {"username": {"type": "string"},
                                       "password": {"type": "string", "format": "password"}}},
        "Token": {"type": "object", "required": ["token"],
                  "properties": {"token": {"type": "string"},
                                 "token_type": {"type": "string", "const": "Bearer"},
                                 "expires_in": {"type": "integer"},
                                 "username": {"type": "string"}, "role": {"type": "string"}}},
        "QueueEntry": queue_entry,
        "Application": {"allOf": [{"$ref": "#/components/schemas/QueueEntry"}, {
            "type": "object",
            "properties": {
                "fields": {"type": "object", "description": "answers by stable field key"},
                "field_rows": {"type": "array", "items": {"type": "object"}},
                "evidence": {"type": "array", "items": {"type": "object"}},
                "transcript": {"type": "array", "items": {"type": "object"}},
                "history": {"type": "array", "items": {"type": "object"}},
                "actions": {"type": "array", "items": {"type": "string"},
                            "description": "what this user may do now"},
            }}]},
        "ActionRequest": {
            "type": "object", "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": list(workflow.ACTIONS)},
                "message": {"type": "string", "maxLength": workflow.MAX_MESSAGE_CHARS,
                            "description": "the notice to the applicant; required for "
                                           "request_supplement, reject, "
                                           "refuse_confidentiality"},
                "message_language": {"type": "string", "enum": list(workflow.NOTICE_LANGUAGES)},
                "note": {"type": "string", "maxLength": workflow.MAX_NOTE_CHARS,
                         "description": "internal; never shown to the applicant"},
                "version": {"type": "integer"},
            }},
        "Outcome": {"type": "object",
                    "properties": {"reference": {"type": "string"},
                                   "action": {"type": "string"},
                                   "status": {"type": "string"},
                                   "version": {"type": "integer"},
                                   "notice_outbox_id": {"type": ["integer", "null"]}}},
    }
