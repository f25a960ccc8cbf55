"""The Gemini schema sanitiser (wire-formats §4.6) and the tool-name / id rules (§4.5, §4.9)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.convert.names import (
    embed_signature,
    split_signature,
    synth_call_id,
    tool_name_map,
    wire_call_id,
    wire_tool_name,
)
from gateway.convert.schema import from_gemini_schema, to_gemini_schema
from gateway.formats import FORMATS


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        # rule 1: $ref inlined from $defs / definitions, then the defs removed
        (
            {
                "type": "object",
                "$defs": {"P": {"type": "string", "minLength": 1}},
                "properties": {"a": {"$ref": "#/$defs/P"}},
            },
            obj(a={"type": "string", "minLength": 1}),
        ),
        # a cycle stops at the second visit
        (
            {
                "definitions": {
                    "N": {"type": "object", "properties": {"next": {"$ref": "#/definitions/N"}}}
                },
                "type": "object",
                "properties": {"n": {"$ref": "#/definitions/N"}},
            },
            obj(n=obj(next={"type": "object"})),
        ),
        # rule 2: unknown keywords dropped; rule 8: a property *named* like a keyword stays
        (
            {
                "type": "object",
                "additionalProperties": False,
                "$schema": "x",
                "properties": {
                    "format": {"type": "string", "examples": ["a"], "default": "b"},
                    "not": {"type": "integer", "multipleOf": 2},
                },
            },
            obj(format={"type": "string"}, **{"not": {"type": "integer"}}),
        ),
        # rule 3: const -> enum of strings; enum only on strings
        (
            obj(a={"const": 3}, b={"type": "integer", "enum": [1, 2]}, c={"enum": ["x", "y"]}),
            obj(a={}, b={"type": "integer"}, c={"type": "string", "enum": ["x", "y"]}),
        ),
        # rule 4: exclusive bounds
        (
            obj(
                i={"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                f={"type": "number", "exclusiveMinimum": 0.5},
            ),
            obj(
                i={"type": "integer", "minimum": 1, "maximum": 9},
                f={"type": "number", "minimum": 0.5},
            ),
        ),
        # rule 5: type arrays, nullable anyOf, oneOf, allOf
        (
            obj(
                a={"type": ["string", "null"]},
                b={"type": ["string", "integer"]},
                c={"anyOf": [{"type": "string"}, {"type": "null"}]},
                d={"oneOf": [{"type": "string"}, {"type": "integer"}]},
                e={
                    "allOf": [
                        obj(x={"type": "string"}),
                        {"required": ["x"]},
                        obj(y={"type": "boolean"}),
                    ]
                },
            ),
            obj(
                a={"type": "string", "nullable": True},
                b={"anyOf": [{"type": "string"}, {"type": "integer"}]},
                c={"type": "string", "nullable": True},
                d={"anyOf": [{"type": "string"}, {"type": "integer"}]},
                e=obj(x={"type": "string"}, y={"type": "boolean"}) | {"required": ["x"]},
            ),
        ),
        # rule 6: formats
        (
            obj(
                a={"type": "string", "format": "uri"},
                b={"type": "string", "format": "date-time"},
                c={"type": "integer", "format": "int64"},
            ),
            obj(
                a={"type": "string"},
                b={"type": "string", "format": "date-time"},
                c={"type": "integer", "format": "int64"},
            ),
        ),
        # required names filtered to existing properties; items kept
        (
            {
                "type": "object",
                "properties": {
                    "l": {"type": "array", "items": {"type": "string", "pattern": "^a"}}
                },
                "required": ["l", "ghost"],
            },
            obj(l={"type": "array", "items": {"type": "string", "pattern": "^a"}})
            | {"required": ["l"]},
        ),
    ],
)
def test_sanitiser(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_gemini_schema(schema) == expected


@pytest.mark.parametrize(
    "schema",
    [
        None,
        "x",
        [],
        {"type": "object", "properties": {}},
        {"type": "string"},
        {"type": "object"},
        {},
    ],
)
def test_root_without_properties_is_omitted(schema: Any) -> None:
    assert to_gemini_schema(schema) is None


def test_type_less_root_with_properties_becomes_an_object() -> None:
    assert to_gemini_schema({"properties": {"a": {"type": "string"}}}) == obj(a={"type": "string"})


def test_deep_nesting_is_bounded() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        schema = obj(x=schema)
    assert to_gemini_schema(schema) is not None


def test_from_gemini_schema() -> None:
    assert from_gemini_schema(
        {
            "type": "OBJECT",
            "properties": {
                "a": {"type": "STRING", "nullable": True},
                "b": {"type": "ARRAY", "items": {"type": "INTEGER"}},
            },
            "propertyOrdering": ["a", "b"],
        }
    ) == obj(a={"type": ["string", "null"]}, b={"type": "array", "items": {"type": "integer"}})


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("get_weather", "openai", "get_weather"),
        ("mcp:server.tool", "openai", "mcp_server_tool_"),
        ("mcp:server.tool", "gemini", "mcp:server.tool"),
        ("1tool", "gemini", "_1tool_"),
        ("", "anthropic", "tool_"),
    ],
)
def test_wire_tool_name(name: str, fmt: str, expected: str) -> None:
    rule = FORMATS[fmt].wire.TOOL_NAMES
    wire = wire_tool_name(name, rule)
    assert wire.startswith(expected)
    assert len(wire) <= 64
    assert wire_tool_name(name, rule) == wire  # deterministic


def test_tool_name_map_lists_only_renamed_tools() -> None:
    long = "x" * 70
    rule = FORMATS["openai"].wire.TOOL_NAMES
    assert tool_name_map(["ok", long], rule) == {wire_tool_name(long, rule): long}


def test_call_ids_and_signatures() -> None:
    assert wire_call_id("toolu_01A") == "toolu_01A"
    assert wire_call_id("functions.Bash:0") == "functions_Bash_0"
    assert wire_call_id("") == "toolu_empty"
    sig = "CiQB0e2Kb+9h/3u4wQ=="
    embedded = embed_signature("call_1", sig)
    assert wire_call_id(embedded) == embedded  # valid for Anthropic as is
    assert split_signature(embedded) == ("call_1", sig)
    assert split_signature("call_1") == ("call_1", None)
    assert embed_signature("call_1", None) == "call_1"
    assert synth_call_id("r/1+x", 2) == "call_gm_r1x_2"
    assert synth_call_id(None, 0) == "call_gm_0"
