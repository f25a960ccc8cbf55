"""JSON Schema <-> Gemini ``Schema`` (the OpenAPI subset), wire-formats §3.3 and §4.6.

Contract: :func:`to_gemini_schema` is pure and total: any JSON value goes in, a
schema Gemini accepts (or None, meaning "omit ``parameters``") comes out, and it
never raises. It is a whitelist: a keyword Gemini does not know is dropped
rather than sent (an unknown keyword fails the whole request with "Unknown name
... Cannot find field", §5.3 item 16). Keys *inside* ``properties`` are
property names, not keywords, and are never filtered (§4.6 rule 8).
:func:`from_gemini_schema` turns a Gemini schema back into plain JSON Schema
for OpenAI and Anthropic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["from_gemini_schema", "to_gemini_schema"]

_KEEP = frozenset(
    {
        "title",
        "description",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
    }
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_NUMBER_FORMATS = frozenset({"int32", "int64", "float", "double"})
_STRING_FORMATS = frozenset({"enum", "date-time"})
#: Depth at which recursion stops (a cycle left after $ref inlining, or abuse).
_MAX_DEPTH = 32


def to_gemini_schema(schema: Any, *, root: bool = True) -> dict[str, Any] | None:
    """Sanitise a JSON Schema for Gemini ``parameters`` / ``responseSchema``.

    Args:
        schema: any JSON Schema (draft 4 to 2020-12 keywords are understood).
        root: True for a function's ``parameters``: the result must be an
            object with non-empty ``properties``, else None (omit the field).

    Returns:
        The cleaned schema, or None when nothing usable is left.
    """
    if not isinstance(schema, Mapping):
        return None
    defs = _Defs(schema)
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)
    out = _clean(schema, defs, (), 0)
    if root:
        if out.get("type") is None and "properties" in out:
            out["type"] = "object"
        if out.get("type") != "object" or not out.get("properties"):
            return None
    return out


class _Defs(dict[str, Any]):
    """A schema's definitions by name, with what is left of its budget for inlining them.

    Inlining ``$ref`` copies a definition at every use, so definitions that use each other
    twice over grow exponentially (2^32 nodes at the depth cap, from a few hundred bytes).
    The nodes cleaned inside inlined definitions are counted against a budget linear in
    the size of the whole schema (counted at the first ``$ref``); past it a ``$ref`` is
    left out like a cycle.
    """

    __slots__ = ("budget", "root")

    def __init__(self, root: Any) -> None:
        super().__init__()
        self.root = root
        self.budget: int | None = None


#: Nodes inlined ``$ref``s may produce: this many, plus 4 per node of the whole schema.
_INLINE_BUDGET = 1000


def _count_nodes(value: Any) -> int:
    """Objects and arrays in a JSON value (iterative: no recursion limit)."""
    count, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Mapping):
            count += 1
            stack.extend(v.values())
        elif isinstance(v, list):
            count += 1
            stack.extend(v)
    return count


def _resolve(
    node: Mapping[str, Any], defs: _Defs, seen: tuple[str, ...]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, seen
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name)
    if defs.budget is None:
        defs.budget = _INLINE_BUDGET + 4 * _count_nodes(defs.root)
    if ref in seen or not isinstance(target, Mapping) or defs.budget <= 0:
        # A cycle, a dangling ref or past the budget: keep what the node says besides it.
        rest = {k: v for k, v in node.items() if k != "$ref"}
        rest.setdefault("type", "object")
        return rest, seen
    merged = dict(target)
    merged.update((k, v) for k, v in node.items() if k != "$ref")
    return merged, (*seen, ref)


def _clean(
    node: Mapping[str, Any], defs: _Defs, seen: tuple[str, ...], depth: int
) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    if seen and defs.budget is not None:
        defs.budget -= 1
    if "$ref" in node:
        node, seen = _resolve(node, defs, seen)
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True
    # One pass over the node's keys (schemas are wide and shallow: this is the hot loop).
    for key, value in node.items():
        if key in _KEEP and value is not None and not isinstance(value, (dict, list)):
            out[key] = value
    if "propertyOrdering" in node and isinstance(node["propertyOrdering"], list):
        out["propertyOrdering"] = [p for p in node["propertyOrdering"] if isinstance(p, str)]

    # type: a string, or an array with "null" (-> nullable) and maybe several types.
    raw_type = node.get("type")
    if isinstance(raw_type, str):
        lowered = raw_type.lower()
        if lowered == "null":
            nullable = True
        elif lowered in _TYPES:
            out["type"] = lowered
    elif isinstance(raw_type, list):
        types = [t.lower() for t in raw_type if isinstance(t, str) and t.lower() in _TYPES]
        if "null" in types:
            nullable = True
            types = [t for t in types if t != "null"]
        if len(types) == 1:
            out["type"] = types[0]
        elif len(types) > 1:
            out["anyOf"] = [{"type": t} for t in types]

    if "anyOf" in node or "oneOf" in node:
        nullable = _variants(node, out, defs, seen, depth) or nullable
    if "allOf" in node and isinstance(node["allOf"], list):
        _all_of(node["allOf"], out, defs, seen, depth)

    # properties: keys are data, values are schemas.
    props = node.get("properties")
    if isinstance(props, Mapping):
        cleaned_props = {
            str(k): _clean(v, defs, seen, depth + 1)
            for k, v in props.items()
            if isinstance(v, Mapping)
        }
        if cleaned_props:
            out.setdefault("properties", {}).update(cleaned_props)
    if "properties" in out:
        out.setdefault("type", "object")
    required = node.get("required")
    if "required" in out or isinstance(required, list):
        known = out.get("properties", {})
        names = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        listed = set(names)
        names += [r for r in out.get("required", ()) if r not in listed]
        names = [r for r in names if r in known]
        if names:
            out["required"] = names
        else:
            out.pop("required", None)

    if "items" in node:
        items = node["items"]
        if isinstance(items, list):  # draft-4 tuple validation: keep the first shape
            items = items[0] if items else None
        if isinstance(items, Mapping):
            out["items"] = _clean(items, defs, seen, depth + 1)
            out.setdefault("type", "array")

    if "const" in node or "enum" in node:
        _enum_and_const(node, out)
    if "exclusiveMinimum" in node or "exclusiveMaximum" in node:
        _exclusive_bounds(node, out)
    fmt = node.get("format")
    if isinstance(fmt, str):
        allowed = _STRING_FORMATS if out.get("type") == "string" else _NUMBER_FORMATS
        if fmt in allowed and out.get("type") in ("string", "number", "integer"):
            out["format"] = fmt
    if nullable:
        out["nullable"] = True
    return out


def _variants(
    node: Mapping[str, Any],
    out: dict[str, Any],
    defs: _Defs,
    seen: tuple[str, ...],
    depth: int,
) -> bool:
    """anyOf / oneOf (oneOf -> anyOf); a ``{"type": "null"}`` member means nullable."""
    variants: list[Any] = []
    for key in ("anyOf", "oneOf"):
        value = node.get(key)
        if isinstance(value, list):
            variants.extend(value)
    nullable = False
    cleaned = []
    for v in variants:
        if isinstance(v, Mapping) and v.get("type") == "null" and len(v) == 1:
            nullable = True
        elif isinstance(v, Mapping):
            cleaned.append(_clean(v, defs, seen, depth + 1))
    if len(cleaned) == 1 and "type" not in out:
        for k, v in cleaned[0].items():
            out.setdefault(k, v)
    elif cleaned:
        out["anyOf"] = cleaned
    return nullable


def _all_of(
    members: list[Any],
    out: dict[str, Any],
    defs: _Defs,
    seen: tuple[str, ...],
    depth: int,
) -> None:
    """allOf: merge the members' properties and required lists (best effort)."""
    listed: set[str] | None = None  # what ``out["required"]`` holds (made once)
    for member in members:
        if not isinstance(member, Mapping):
            continue
        sub = _clean(member, defs, seen, depth + 1)
        props = sub.pop("properties", None)
        sub.pop("required", None)
        # The raw list: a member may require what another member defines.
        req = [r for r in member.get("required") or () if isinstance(r, str)]
        for k, v in sub.items():
            out.setdefault(k, v)
        if props:
            out.setdefault("properties", {}).update(props)
        if req:
            have = out.setdefault("required", [])
            if listed is None:
                listed = set(have)
            for r in req:
                if r not in listed:
                    listed.add(r)
                    have.append(r)


def _enum_and_const(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    values: list[Any] | None = None
    if "const" in node:
        values = [node["const"]]
    elif isinstance(node.get("enum"), list):
        values = node["enum"]
    if values is None:
        return
    kind = out.get("type")
    if kind is None and all(isinstance(v, str) for v in values):
        out["type"] = kind = "string"
    if kind != "string":
        return  # Gemini enums are string-only (§4.6 rule 3)
    strings = [v if isinstance(v, str) else str(v) for v in values if v is not None]
    if strings:
        out["enum"] = strings
        out.pop("format", None)


def _exclusive_bounds(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    integer = out.get("type") == "integer"
    for ex_key, key, step in (
        ("exclusiveMinimum", "minimum", 1),
        ("exclusiveMaximum", "maximum", -1),
    ):
        value = node.get(ex_key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key not in out:
            out[key] = value + step if integer else value


def from_gemini_schema(schema: Any) -> Any:
    """A Gemini schema (upper- or lower-case types, ``nullable``) as plain JSON Schema."""
    if isinstance(schema, list):
        return [from_gemini_schema(v) for v in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "propertyOrdering" or key == "nullable":
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {k: from_gemini_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = from_gemini_schema(value)
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
