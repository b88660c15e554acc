"""Schemathesis over the whole OpenAPI schema (/api/schema/) against the live server, every
built-in check, positive and negative examples: what the schema says is what the server does.

Portal API operations run with a JWT, the /v1 and native task operations with an API key; each
as its own user, so keys that the portal operations revoke or rotate are never the key in use.
Examples are bounded (EXAMPLES per operation and mode) and generation costs at most one token.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.e2e

# Per operation and generation phase; the coverage phase adds its own boundary cases. About two
# minutes on 2 cores. SCHEMATHESIS_TIMING=<file> logs each call's duration to tune it.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))
GENERATIVE = {"/v1/chat/completions", "/v1/completions", "/api/v1/generate", "/api/v1/ask"}


@pytest.fixture(scope="module")
def credentials(portal_server) -> dict[str, str]:
    password = "schemathesis-passphrase-1"
    api_key = portal_server.create_user_and_key("schemathesis-key@example.com", password)
    portal_server.create_user_and_key("schemathesis-jwt@example.com", password)
    response = httpx.post(
        f"{portal_server.url}/api/token/",
        json={"username": "schemathesis-jwt@example.com", "password": password},
        timeout=30,
    )
    response.raise_for_status()
    return {"api_key": api_key, "jwt": response.json()["access"]}


# Some operations also depend on state the schema cannot describe, and only there may a
# schema-valid request get a 400 (its reason in the body): creating and rotating keys (how many
# active keys the user has, MAX_ACTIVE_KEYS_PER_USER; whether `expires_at` is still ahead), the
# usage range (at most 366 days, counted from today when `end` is left out) and the audit log's
# filters (`start` after `end`; a page past the last is a 404).
_MAY_REFUSE = {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]}}
STATEFUL = [
    {"include-path-regex": r"^/api/keys/(\{id\}/rotate/)?$", "include-method": "POST", "checks": _MAY_REFUSE},
    {"include-path": "/api/usage/", "include-method": "GET", "checks": _MAY_REFUSE},
    {"include-path": "/api/audit/", "include-method": "GET", "checks": _MAY_REFUSE},
    # Organizations: an invitation token is valid only as e-mailed; inviting an address that is
    # already a member; the last owner cannot leave, be removed or demoted; org keys as above.
    {"include-path": "/api/invitations/accept/", "include-method": "POST", "checks": _MAY_REFUSE},
    {
        "include-path-regex": r"^/api/orgs/\{org_id\}/(invitations|keys|leave)/$",
        "include-method": "POST",
        "checks": _MAY_REFUSE,
    },
    {"include-path": "/api/orgs/{org_id}/members/{membership_id}/", "checks": _MAY_REFUSE},
]


@pytest.fixture(scope="module")
def api_schema(portal_server):
    config = schemathesis.Config.from_dict({"operations": STATEFUL})
    return schemathesis.openapi.from_url(f"{portal_server.url}/api/schema/", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """schemathesis 4.32's lazy loader reads `node._nodeid`, which pytest 9 no longer keeps."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


PROMPT_FIELDS = ("prompt", "question", "context", "content", "text")
MAX_PROMPT_CHARS = 300


def _shorten(value) -> None:
    """Cut generated prompt texts (strings only; wrong types stay wrong) to MAX_PROMPT_CHARS."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if key in PROMPT_FIELDS and isinstance(item, str):
            value[key] = item[:MAX_PROMPT_CHARS]
        elif key in ("messages", "content", "prompt") or isinstance(key, int):
            _shorten(item)


def _cheap(case) -> None:
    """Keep generation to one token per choice, and within the two rules the schema can only
    describe in words (stream_options needs stream: true; dimensions is the model's own)."""
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path in GENERATIVE:
        for field in ("max_tokens", "max_completion_tokens", "max_length"):
            if isinstance(body.get(field), int) and not isinstance(body.get(field), bool) and body[field] > 1:
                body[field] = 1
        if case.path.startswith("/v1/"):
            for field in ("max_tokens", "max_completion_tokens"):
                if body.get(field) is None:  # absent or null: the server's default would be 256 tokens
                    body[field] = 1
        if case.path.startswith("/api/v1/") and "max_length" not in body:
            body["max_length"] = 1
        if isinstance(body.get("n"), int) and not isinstance(body["n"], bool) and body["n"] > 1:
            body["n"] = 1
    if case.meta is not None and case.meta.generation.mode.is_positive:
        if case.path in GENERATIVE:
            _shorten(body)  # a long prompt costs seconds of prefill on 2 cores (the schema allows 100k characters)
        if body.get("stream_options") and body.get("stream") is not True:
            body.pop("stream_options")
        if case.path == "/v1/embeddings":
            body.pop("dimensions", None)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    print_blob=True,
)
def test_the_server_does_what_the_schema_says(case, credentials):
    token = credentials["api_key"] if case.path.startswith(("/v1/", "/api/v1/")) else credentials["jwt"]
    _cheap(case)
    started = time.monotonic()
    try:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    finally:
        if os.environ.get("SCHEMATHESIS_TIMING"):
            with open(os.environ["SCHEMATHESIS_TIMING"], "a") as log:
                phase = case.meta.phase.name.value if case.meta else "?"
                log.write(f"{case.method} {case.path} {phase} {time.monotonic() - started:.3f}\n")
