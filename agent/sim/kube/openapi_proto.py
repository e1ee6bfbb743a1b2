"""The protobuf form of the OpenAPI v2 document, which kubectl asks for and nothing else.

client-go's `OpenAPISchema()` (discovery_client.go) GETs /openapi/v2 with only
`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and unmarshals the body as
gnostic's `openapi.v2.Document` (google/gnostic openapiv2/OpenAPIv2.proto); a 406 sends it to the
pre-1.10 path /swagger-2.0.0.pb-v1 instead, so a JSON-only server fails kubectl's client-side
validation. This module encodes the JSON document openapi.py builds into that message, by hand
(proto3 wire format: varint tags and lengths), for the parts kubectl's validator reads: swagger,
info, and the definitions with their $ref, format, description, required, additionalProperties,
type, items, allOf, properties and vendor extensions (as YAML text, which gnostic keeps them
as). Paths are left out: kubectl reads them from the v3 documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Field numbers of openapi.v2 messages (OpenAPIv2.proto)
_DOCUMENT_SWAGGER, _DOCUMENT_INFO, _DOCUMENT_DEFINITIONS = 1, 2, 9
_INFO_TITLE, _INFO_VERSION = 1, 2
_NAMED_NAME, _NAMED_VALUE = 1, 2  # NamedSchema, NamedAny
_ANY_YAML = 2
_SCHEMA = {
    "$ref": 1,
    "format": 2,
    "description": 4,
    "required": 19,
    "additionalProperties": 21,
    "type": 22,
    "items": 23,
    "allOf": 24,
    "properties": 25,
}
_SCHEMA_VENDOR_EXTENSION = 31


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes and embedded messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, text.encode())


def _named(name: str, value: bytes) -> bytes:
    return _string(_NAMED_NAME, name) + _field(_NAMED_VALUE, value)


def schema_message(schema: Mapping[str, Any]) -> bytes:
    """One JSON Schema object as an openapi.v2.Schema message."""
    out = bytearray()
    for key in ("$ref", "format", "description"):
        if isinstance(schema.get(key), str):
            out += _string(_SCHEMA[key], schema[key])
    for name in schema.get("required") or ():
        out += _string(_SCHEMA["required"], name)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        out += _field(_SCHEMA["additionalProperties"], _field(1, schema_message(additional)))
    if isinstance(schema.get("type"), str):
        out += _field(_SCHEMA["type"], _string(1, schema["type"]))
    items = schema.get("items")
    if isinstance(items, Mapping):
        out += _field(_SCHEMA["items"], _field(1, schema_message(items)))
    for part in schema.get("allOf") or ():
        out += _field(_SCHEMA["allOf"], schema_message(part))
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        named = b"".join(
            _field(1, _named(name, schema_message(sub))) for name, sub in properties.items()
        )
        out += _field(_SCHEMA["properties"], named)
    for key, value in schema.items():
        if key.startswith("x-"):
            # gnostic keeps an extension's value as YAML text; JSON is YAML
            extension = _string(_ANY_YAML, json.dumps(value) + "\n")
            out += _field(_SCHEMA_VENDOR_EXTENSION, _named(key, extension))
    return bytes(out)


def document_message(document: Mapping[str, Any]) -> bytes:
    """A Swagger 2.0 document (JSON-shaped) as an openapi.v2.Document message."""
    info = document.get("info") or {}
    out = bytearray(_string(_DOCUMENT_SWAGGER, str(document.get("swagger", "2.0"))))
    out += _field(
        _DOCUMENT_INFO,
        _string(_INFO_TITLE, str(info.get("title", "")))
        + _string(_INFO_VERSION, str(info.get("version", ""))),
    )
    definitions = b"".join(
        _field(1, _named(name, schema_message(schema)))
        for name, schema in (document.get("definitions") or {}).items()
    )
    out += _field(_DOCUMENT_DEFINITIONS, definitions)
    return bytes(out)
