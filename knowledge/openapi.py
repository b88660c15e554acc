"""The OpenAPI description of /v1/vector_stores (plain async views, written by hand like
inference.openapi, which it reuses), merged into /api/schema/ by llmos_portal.openapi."""

from __future__ import annotations

from typing import Any

from inference.openapi import _NO_NUL, _SECURITY, TAG, _errors, _json, _nullable, _ref
from knowledge.serializers import MAX_QUERY_CHARS, MAX_RESULTS

_TS = {"type": "integer"}
_METADATA = _nullable(
    {
        "type": "object",
        "maxProperties": 16,
        "additionalProperties": {"type": "string", "maxLength": 512, "pattern": _NO_NUL},
        "propertyNames": {"maxLength": 64, "pattern": _NO_NUL},
    }
)
_COUNTS = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, Any] = {
    "VectorStore": {
        "type": "object",
        "required": ["id", "object", "created_at", "name", "usage_bytes", "file_counts", "status", "metadata"],
        "properties": {
            "id": {"type": "string", "example": "vs_0123456789abcdef01234567"},
            "object": {"type": "string", "enum": ["vector_store"]},
            "created_at": _TS,
            "name": {"type": "string"},
            "usage_bytes": _COUNTS,
            "file_counts": {
                "type": "object",
                "required": ["in_progress", "completed", "failed", "cancelled", "total"],
                "properties": dict.fromkeys(("in_progress", "completed", "failed", "cancelled", "total"), _COUNTS),
            },
            "status": {"type": "string", "enum": ["in_progress", "completed", "expired"]},
            "expires_after": _nullable({"type": "object"}),
            "expires_at": _nullable(_TS),
            "last_active_at": _nullable(_TS),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "embedding_model": {"type": "string", "description": "The model documents and queries are embedded with"},
        },
    },
    "VectorStoreList": {
        "type": "object",
        "required": ["object", "data", "has_more"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("VectorStore")},
            "first_id": _nullable({"type": "string"}),
            "last_id": _nullable({"type": "string"}),
            "has_more": {"type": "boolean"},
        },
    },
    "VectorStoreCreateRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 200, "pattern": _NO_NUL},
            "file_ids": {
                "type": "array",
                "maxItems": 500,
                "items": {"type": "string", "maxLength": 40, "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$"},
                "description": "Files uploaded with purpose `assistants` (POST /v1/files)",
            },
            "metadata": _METADATA,
            "embedding_model": {
                "type": "string",
                "maxLength": 200,
                "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$",
                "description": "An embedding model from /v1/models (not OpenAI's API); the default is all-MiniLM-L6-v2",
            },
        },
    },
    "VectorStoreUpdateRequest": {
        "type": "object",
        "properties": {
            "name": _nullable({"type": "string", "maxLength": 200, "pattern": _NO_NUL}),
            "metadata": _METADATA,
        },
    },
    "VectorStoreDeleted": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["vector_store.deleted"]},
            "deleted": {"type": "boolean"},
        },
    },
    "VectorStoreFile": {
        "type": "object",
        "required": ["id", "object", "usage_bytes", "created_at", "vector_store_id", "status", "last_error"],
        "properties": {
            "id": {"type": "string", "description": "The file's id"},
            "object": {"type": "string", "enum": ["vector_store.file"]},
            "usage_bytes": _COUNTS,
            "created_at": _TS,
            "vector_store_id": {"type": "string"},
            "status": {"type": "string", "enum": ["in_progress", "completed", "failed", "cancelled"]},
            "last_error": _nullable(
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": ["server_error", "unsupported_file", "invalid_file"]},
                        "message": {"type": "string"},
                    },
                }
            ),
            "chunking_strategy": {"type": "object"},
            "attributes": {"type": "object"},
            "filename": {"type": "string"},
            "chunks_total": _COUNTS,
            "chunks_done": _COUNTS,
        },
    },
    "VectorStoreFileList": {
        "type": "object",
        "required": ["object", "data", "has_more"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("VectorStoreFile")},
            "first_id": _nullable({"type": "string"}),
            "last_id": _nullable({"type": "string"}),
            "has_more": {"type": "boolean"},
        },
    },
    "VectorStoreFileCreateRequest": {
        "type": "object",
        "required": ["file_id"],
        "properties": {"file_id": {"type": "string", "maxLength": 40, "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$"}},
    },
    "VectorStoreFileDeleted": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["vector_store.file.deleted"]},
            "deleted": {"type": "boolean"},
        },
    },
    "VectorStoreSearchRequest": {
        "type": "object",
        "required": ["query"],
        "properties": {
            "query": {
                "description": f"A string or a list of strings (joined); at most {MAX_QUERY_CHARS} characters.",
                "oneOf": [
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_QUERY_CHARS,
                        "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$",
                    },
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 10,
                        "items": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 300,
                            "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$",
                        },
                    },
                ],
            },
            "max_num_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 10},
            "ranking_options": {
                "type": "object",
                "properties": {
                    "ranker": {"type": "string", "maxLength": 64, "pattern": "^[^\\x00]*[^\\x00\\s][^\\x00]*$"},
                    "score_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
            "rewrite_query": {"type": "boolean", "description": "Accepted; queries are not rewritten"},
        },
    },
    "VectorStoreSearchResults": {
        "type": "object",
        "required": ["object", "search_query", "data", "has_more", "next_page"],
        "properties": {
            "object": {"type": "string", "enum": ["vector_store.search_results.page"]},
            "search_query": {"type": "array", "items": {"type": "string"}},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["file_id", "filename", "score", "attributes", "content"],
                    "properties": {
                        "file_id": {"type": "string"},
                        "filename": {"type": "string"},
                        "score": {"type": "number", "description": "Cosine similarity to the query"},
                        "attributes": {"type": "object"},
                        "content": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["type", "text"],
                                "properties": {
                                    "type": {"type": "string", "enum": ["text"]},
                                    "text": {"type": "string"},
                                },
                            },
                        },
                        "chunk_id": {"type": "integer"},
                        "chunk_index": {"type": "integer", "description": "The chunk's position in its document"},
                    },
                },
            },
            "has_more": {"type": "boolean"},
            "next_page": _nullable({"type": "string"}),
        },
    },
}

_ID = {"name": "vector_store_id", "in": "path", "required": True, "schema": {"type": "string"}}
_FILE_ID = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}
_READ_ERRORS = _errors(401, 403, 404, 405, 429, 500, 503)
_WRITE_ERRORS = _errors(400, 401, 403, 404, 405, 429, 500, 503)


def _operation(operation_id: str, summary: str, response: str, *, body: str | None = None, **extra) -> dict:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [TAG],
        "security": _SECURITY,
        "responses": {
            "200": _json(response, summary),
            **(_WRITE_ERRORS if body or extra.get("parameters") else _READ_ERRORS),
        },
        **extra,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


PATHS: dict[str, Any] = {
    "/v1/vector_stores": {
        "get": _operation(
            "v1_vector_stores_list",
            "Your vector stores (knowledge bases)",
            "VectorStoreList",
            parameters=[_LIMIT, {"name": "after", "in": "query", "schema": {"type": "string"}}],
        ),
        "post": _operation(
            "v1_vector_stores_create", "Create a vector store", "VectorStore", body="VectorStoreCreateRequest"
        ),
    },
    "/v1/vector_stores/{vector_store_id}": {
        "get": _operation("v1_vector_stores_retrieve", "One vector store", "VectorStore", parameters=[_ID]),
        "post": _operation(
            "v1_vector_stores_update",
            "Rename a vector store or set its metadata",
            "VectorStore",
            body="VectorStoreUpdateRequest",
            parameters=[_ID],
        ),  # fmt: skip
        "delete": _operation(
            "v1_vector_stores_delete",
            "Delete a vector store with its chunks and vectors",
            "VectorStoreDeleted",
            parameters=[_ID],
        ),  # fmt: skip
    },
    "/v1/vector_stores/{vector_store_id}/files": {
        "get": _operation(
            "v1_vector_stores_files_list",
            "The vector store's files and their status",
            "VectorStoreFileList",
            parameters=[
                _ID,
                _LIMIT,
                {
                    "name": "filter",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["in_progress", "completed", "failed", "cancelled"]},
                },
            ],
        ),
        "post": _operation(
            "v1_vector_stores_files_create",
            "Add a file (purpose `assistants`); it is processed in the background",
            "VectorStoreFile",
            body="VectorStoreFileCreateRequest",
            parameters=[_ID],
        ),  # fmt: skip
    },
    "/v1/vector_stores/{vector_store_id}/files/{file_id}": {
        "get": _operation(
            "v1_vector_stores_files_retrieve",
            "A file's status in the vector store",
            "VectorStoreFile",
            parameters=[_ID, _FILE_ID],
        ),  # fmt: skip
        "delete": _operation(
            "v1_vector_stores_files_delete",
            "Remove a file (its chunks and vectors) from the vector store",
            "VectorStoreFileDeleted",
            parameters=[_ID, _FILE_ID],
        ),  # fmt: skip
    },
    "/v1/vector_stores/{vector_store_id}/search": {
        "post": _operation(
            "v1_vector_stores_search",
            "The chunks nearest to a query, with scores and their files",
            "VectorStoreSearchResults",
            body="VectorStoreSearchRequest",
            parameters=[_ID],
        ),  # fmt: skip
    },
}
