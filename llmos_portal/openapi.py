"""drf-spectacular postprocessing: the /v1 API (inference.openapi) joins the generated schema, and
every operation lists the errors the server actually sends, in its API's shape.

DRF answers `{"detail": ...}` (401, 403, 404, 405, 415, 429, 503) and `{"field": ["message"]}` for
invalid input (400); /v1 answers OpenAI's `{"error": {...}}` (described in inference.openapi).
"""

from __future__ import annotations

from typing import Any

DETAIL = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
}
VALIDATION = {
    "type": "object",
    "description": 'Messages by field, e.g. {"name": ["This field is required."]}, or {"detail": "..."}.',
    "additionalProperties": True,
}
DESCRIPTIONS = {
    400: "Invalid input",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    415: "Unsupported media type: send JSON",
    429: "Too many requests (see Retry-After)",
    503: "The database cannot be reached or the model is overloaded (see Retry-After)",
}


def _response(status: int, schema_name: str) -> dict:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def _add_drf_errors(path: str, method: str, operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    statuses = {405, 503}
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if any(p.get("in") == "query" and p.get("name") == "page" for p in parameters):
        statuses.add(404)  # a page past the last (DRF's page-number pagination)
    if operation.get("requestBody") or any(p.get("in") == "query" for p in parameters):
        statuses.add(400)
    if operation.get("requestBody"):
        statuses.add(415)
    if method == "post":
        statuses.add(400)
    if path.startswith("/api/v1/") or path == "/api/token/":
        statuses |= {400, 429}
    if path.startswith("/api/token/"):
        statuses.add(401)  # wrong credentials, an invalid or expired refresh token
    if path.startswith("/api/v1/"):
        statuses.add(404)  # an unknown model
    for status in sorted(statuses):
        existing = responses.get(str(status), {})
        if existing.get("content"):
            continue
        response = _response(status, "ValidationErrors" if status == 400 else "ErrorDetail")
        if existing.get("description"):
            response["description"] = existing["description"]
        responses[str(status)] = response


# DRF's CharField (the strict ones too) refuses NUL characters and trims whitespace before it
# checks for blanks: say so, so that a schema-valid string is one the server accepts.
NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"


def _describe_char_fields(schema: dict) -> None:
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _describe_char_fields(schema["items"])
    if schema.get("type") != "string" or "format" in schema or "enum" in schema or "pattern" in schema:
        return
    schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_NUL


def postprocess(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    from inference import openapi as openai_schema
    from knowledge import openapi as knowledge_schema

    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorDetail", DETAIL)
    schemas.setdefault("ValidationErrors", VALIDATION)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                _add_drf_errors(path, method, operation)
    for name, component in schemas.items():
        if name.endswith("Request"):  # the request bodies drf-spectacular generated from serializers
            for field in component.get("properties", {}).values():
                _describe_char_fields(field)
    for component, fields in openai_schema.NATIVE_FIELD_PATCHES.items():
        properties = schemas.get(component, {}).get("properties", {})
        for field, patch in fields.items():
            if field in properties:
                properties[field].update(patch)
    schemas.update(openai_schema.SCHEMAS)
    schemas.update(knowledge_schema.SCHEMAS)
    result.setdefault("paths", {}).update(openai_schema.PATHS)
    result["paths"].update(knowledge_schema.PATHS)
    tags = result.setdefault("tags", [])
    if not any(tag.get("name") == openai_schema.TAG for tag in tags):
        tags.append({"name": openai_schema.TAG, "description": "The OpenAI-compatible API, with API keys."})
    return result
