"""Parse and check transformer files (design.md, "Transformer files").

Theory of operation, in three stages:

1. JSON: the bytes must be UTF-8 plain JSON (no comments, no NaN, no
   duplicate keys in an object) with an object at the top.
2. Shape: one strict cattrs converter (:func:`make_converter`) structures the
   object into :class:`TransformerFile`, the file exactly as written. Unknown
   keys, wrong JSON types (``"5"`` for a number, ``1`` for a boolean) and
   values outside an enumeration are errors; nothing is coerced.
   ``cattrs.transform_error`` supplies the key path of each problem.
3. Meaning: :func:`parse_transformer` expands ``${VAR}`` references and checks
   what types cannot say (``weight`` > 0, ``base_url`` present and http(s),
   header names are tokens, ...), then builds the frozen
   :class:`~gateway.transformers.model.Transformer`.

Every problem is a line ``file.json: key.path: message`` (a problem of the
file as a whole has no path), and the problems of a file are reported at
once (stage by stage: a file with shape errors is not checked for meaning).
A message names keys and variables; it never repeats a provider key, a
header or query value, or anything taken from the environment.

Across files (:func:`assemble`): files are taken in order of file name; a file
whose name or ``"default": true`` clashes with an earlier file fails, and a
failed file keeps its previous good version when that one does not clash.
:func:`check_directory` runs the same steps for ``python -m gateway check``.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, mapping_structure_factory

from gateway.errors import ModelNotFound
from gateway.transformers.model import (
    DEFAULT_COOLDOWN_S,
    Format,
    ModelEntry,
    RequestEdits,
    Retry,
    StreamMode,
    Timeouts,
    Transformer,
    expand_env,
    is_token,
    parse_key_header,
    referenced_vars,
)

__all__ = [
    "MAX_FILE_BYTES",
    "Assembly",
    "LoadedFile",
    "TransformerError",
    "TransformerFile",
    "assemble",
    "check_directory",
    "list_transformer_files",
    "load_directory",
    "load_file",
    "make_converter",
    "parse_transformer",
]

#: Largest transformer file read. A provider with every OpenRouter model aliased
#: is tens of KiB; the cap keeps a stray multi-gigabyte file from exhausting memory.
MAX_FILE_BYTES = 4 * 1024 * 1024

#: A key path inside a file: object keys and array indices.
KeyPath = tuple[str | int, ...]


class TransformerError(Exception):
    """A transformer file could not be loaded.

    Attributes:
        problems: every problem found, each ``"file.json: key.path: message"``.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@attrs.frozen
class TransformerFile:
    """A transformer file exactly as written, before expansion and checks."""

    format: Format
    name: str | None = None
    base_url: str | None = None
    keys: tuple[str, ...] | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    key_header: str | None = None
    query: dict[str, str] = attrs.field(factory=dict)
    tls_verify: bool | str = True
    models: dict[str, ModelEntry] = attrs.field(factory=dict)
    request: RequestEdits = attrs.field(factory=RequestEdits)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    retry: Retry = attrs.field(factory=Retry)
    cooldown_s: tuple[float, ...] = DEFAULT_COOLDOWN_S
    stream: StreamMode = "native"
    realtime_url: str | None = None
    default: bool = False
    weight: float = 1.0
    forward_client_key: bool = False


# -- stage 2: the strict converter ---------------------------------------------------------


class _Invalid(ValueError):
    """A value of the wrong JSON type or outside an enumeration; the message is for users."""


_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _got(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _expect(ok: bool, value: object, expected: str) -> None:
    if not ok:
        raise _Invalid(f"expected {expected}, got {_got(value)}")


def _structure_str(value: object, _: type) -> str:
    _expect(isinstance(value, str), value, "a string")
    return value  # type: ignore[return-value]


def _structure_bool(value: object, _: type) -> bool:
    _expect(isinstance(value, bool), value, "true or false")
    return value  # type: ignore[return-value]


def _structure_int(value: object, _: type) -> int:
    _expect(isinstance(value, int) and not isinstance(value, bool), value, "an integer")
    return value  # type: ignore[return-value]


def _structure_float(value: object, _: type) -> float:
    _expect(isinstance(value, (int, float)) and not isinstance(value, bool), value, "a number")
    return float(value)  # type: ignore[arg-type]


def _structure_bool_or_str(value: object, _: type) -> bool | str:
    _expect(isinstance(value, (bool, str)), value, "true, false or a file path")
    return value  # type: ignore[return-value]


def _literal_hook(tp: Any) -> Callable[[object, type], object]:
    choices = get_args(tp)
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def structure_literal(value: object, _: type) -> object:
        if value not in choices or not isinstance(value, str):
            raise _Invalid(f"expected {expected}")
        return value

    return structure_literal


def _requiring(kind: type, expected: str, base: Callable[[Any, Any], Any]) -> Any:
    """Wrap a cattrs hook so that only JSON values of type ``kind`` reach it."""

    def structure_checked(value: object, tp: Any) -> Any:
        _expect(isinstance(value, kind), value, expected)
        return base(value, tp)

    return structure_checked


def make_converter() -> cattrs.Converter:
    """A new strict converter for transformer files.

    ``forbid_extra_keys`` makes unknown keys errors, detailed validation
    gives every error its path, and the hooks below refuse every coercion
    cattrs would otherwise make (``"5"`` to 5, ``"abc"`` to a tuple of letters).
    """
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook_func(lambda t: t == (bool | str), _structure_bool_or_str)
    conv.register_structure_hook_factory(lambda t: get_origin(t) is Literal, _literal_hook)
    conv.register_structure_hook_factory(
        lambda t: get_origin(t) is tuple,
        lambda t, c: _requiring(list, "an array", homogenous_tuple_structure_factory(t, c)),
    )
    conv.register_structure_hook_factory(
        lambda t: get_origin(t) is dict,
        lambda t, c: _requiring(dict, "an object", mapping_structure_factory(t, c)),
    )
    conv.register_structure_hook_factory(
        attrs.has, lambda t, c: _requiring(dict, "an object", make_dict_structure_fn(t, c))
    )
    entry_from_dict = _requiring(dict, "an object", make_dict_structure_fn(ModelEntry, conv))

    def structure_entry(value: object, tp: type) -> ModelEntry:
        if isinstance(value, str):
            return ModelEntry(model=value)
        _expect(isinstance(value, dict), value, 'a string or an object {"model": ...}')
        return entry_from_dict(value, tp)  # type: ignore[no-any-return]

    conv.register_structure_hook(ModelEntry, structure_entry)
    return conv


# -- problem paths -------------------------------------------------------------------------

_UNKNOWN_KEYS = "\x00unknown-keys\x00"
_SEGMENT = re.compile(r"""\.(\w+)|\[(\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\]""")
_PLAIN_KEY = re.compile(r"[\w\-/:@*]+")


def format_path(path: KeyPath) -> str:
    """``("models", "fast", "fallbacks", 0)`` -> ``models.fast.fallbacks[0]``.

    A mapping key that would read ambiguously (a ``.``, a space) is quoted:
    ``models["gpt-4.1"].max_tokens``.
    """
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{json.dumps(segment)}]"
    return out


def _parse_cattrs_path(text: str) -> KeyPath:
    """``$.models['fast'].max_tokens`` -> ``("models", "fast", "max_tokens")``."""
    path: list[str | int] = []
    for m in _SEGMENT.finditer(text.removeprefix("$")):
        path.append(m[1] if m[1] is not None else ast.literal_eval(m[2]))
    return tuple(path)


def _describe(exc: BaseException, _type: type | None) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)] if exc.cl is not None else []
        return _UNKNOWN_KEYS + json.dumps([sorted(exc.extra_fields), known])
    return "invalid value"


def _shape_problems(exc: Exception) -> list[tuple[KeyPath, str]]:
    """(path, message) for every error inside a cattrs validation error."""
    out: list[tuple[KeyPath, str]] = []
    for line in cattrs.transform_error(exc, format_exception=_describe):
        message, _, where = line.partition(" @ ")
        path = _parse_cattrs_path(where)
        if not message.startswith(_UNKNOWN_KEYS):
            out.append((path, message))
            continue
        extra, known = json.loads(message.removeprefix(_UNKNOWN_KEYS))
        for key in extra:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            out.append(((*path, key), "unknown key" + hint))
    return out


def _line(source: str, path: KeyPath, message: str) -> str:
    where = format_path(path)
    return f"{source}: {where}: {message}" if where else f"{source}: {message}"


# -- stage 1: JSON -------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_json(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"{source}: not UTF-8 text (bad byte at offset {exc.start})"
        raise TransformerError([problem]) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        why = exc.msg
        if text[exc.pos : exc.pos + 2] in ("//", "/*") or text[exc.pos : exc.pos + 1] == "#":
            why = "comments are not allowed (plain JSON only)"
        raise TransformerError(
            [f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {why}"]
        ) from None
    except _DuplicateKey as exc:
        raise TransformerError([f"{source}: duplicate key {exc.args[0]!r} in an object"]) from None
    except ValueError as exc:  # NaN, Infinity
        raise TransformerError([f"{source}: invalid JSON: {exc}"]) from None
    except RecursionError:
        raise TransformerError([f"{source}: invalid JSON: nested too deeply"]) from None


# -- stage 3: meaning ----------------------------------------------------------------------


@attrs.define
class _Problems:
    """Collects (path, message) pairs while a file is checked; local to one parse."""

    items: list[tuple[KeyPath, str]] = attrs.field(factory=list)

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append((path, message))

    def expand(self, text: str, path: KeyPath, env: Mapping[str, str]) -> str:
        try:
            return expand_env(text, env)
        except ValueError as exc:
            self.add(path, str(exc))
            return ""


def _check_url(value: str, schemes: tuple[str, ...], path: KeyPath, problems: _Problems) -> None:
    if value and not value.startswith(tuple(f"{s}://" for s in schemes)):
        problems.add(path, "must start with " + " or ".join(f"{s}://" for s in schemes))


def _check_numbers(spec: TransformerFile, problems: _Problems) -> None:
    if not (spec.weight > 0 and math.isfinite(spec.weight)):
        problems.add(("weight",), "must be a number greater than 0")
    for field in attrs.fields(Timeouts):
        if not getattr(spec.timeouts, field.name) > 0:
            problems.add(("timeouts", field.name), "must be greater than 0 seconds")
    if spec.retry.retries < 0:
        problems.add(("retry", "retries"), "must be 0 or more")
    if spec.retry.backoff_s < 0:
        problems.add(("retry", "backoff_s"), "must be 0 or more seconds")
    _check_cooldown(spec.cooldown_s, problems)


def _check_cooldown(steps: tuple[float, ...], problems: _Problems) -> None:
    """``cooldown_s``: a non-empty, non-decreasing list of positive, finite seconds."""
    if not steps:
        problems.add(("cooldown_s",), "must list at least one number of seconds")
    for i, step in enumerate(steps):
        if not (step > 0 and math.isfinite(step)):
            problems.add(("cooldown_s", i), "must be a number of seconds greater than 0")
        elif i and step < steps[i - 1]:
            problems.add(("cooldown_s", i), "must not be shorter than the step before it")


def _check_models(spec: TransformerFile, problems: _Problems) -> None:
    for alias, entry in spec.models.items():
        path: KeyPath = ("models", alias)
        if not alias.strip():
            problems.add(path, "a model name must not be empty")
        if not entry.model.strip():
            problems.add((*path, "model"), "the upstream model name must not be empty")
        elif entry.model == "*" and alias != "*":
            problems.add((*path, "model"), '"*" is only allowed as the upstream of the "*" entry')
        if entry.max_tokens is not None and entry.max_tokens <= 0:
            problems.add((*path, "max_tokens"), "must be greater than 0")
        for i, fallback in enumerate(entry.fallbacks):
            if not fallback.strip() or fallback == "*":
                problems.add((*path, "fallbacks", i), "must be a model name")


def _check_identity(spec: TransformerFile, name: str, problems: _Problems) -> None:
    if not name or "/" in name or any(c.isspace() for c in name):
        problems.add(("name",), "must be a non-empty name without '/' or spaces")
    if spec.key_header is not None:
        try:
            parse_key_header(spec.key_header)
        except ValueError as exc:
            problems.add(("key_header",), str(exc))
    if spec.tls_verify == "":
        problems.add(("tls_verify",), "expected true, false or a CA bundle path")


def _expand_keys(
    spec: TransformerFile, env: Mapping[str, str], problems: _Problems
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys: list[str] = []
    names: list[str] = []
    for i, raw in enumerate(spec.keys or ()):
        names.extend(v for v in referenced_vars(raw) if v not in names)
        key = problems.expand(raw, ("keys", i), env).strip()
        if any(c in key for c in "\r\n\0"):
            problems.add(("keys", i), "the key contains a line break")
        elif key:
            keys.append(key)
    return tuple(keys), tuple(names)


def _expand_pairs(
    field: str, pairs: Mapping[str, str], env: Mapping[str, str], problems: _Problems
) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, raw in pairs.items():
        value = problems.expand(raw, (field, name), env)
        if field == "headers" and not is_token(name):
            problems.add((field, name), "not a valid header name")
        elif any(c in value for c in "\r\n\0"):
            problems.add((field, name), "the value contains a line break")
        elif not name:
            problems.add((field, name), "the name must not be empty")
        elif value or field == "query":
            out.append((name, value))
    return tuple(out)


@attrs.frozen
class _Expanded:
    """The fields of a file that ``${VAR}`` references expand in."""

    base_url: str
    realtime_url: str | None
    keys: tuple[str, ...]
    key_vars: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]


def _expand_fields(spec: TransformerFile, env: Mapping[str, str], problems: _Problems) -> _Expanded:
    base_url = problems.expand(spec.base_url or "", ("base_url",), env).rstrip("/")
    if not base_url and spec.format != "mock":
        problems.add(("base_url",), f"required for format {spec.format!r} (empty or missing)")
    _check_url(base_url, ("http", "https"), ("base_url",), problems)
    realtime_url = problems.expand(spec.realtime_url or "", ("realtime_url",), env) or None
    _check_url(realtime_url or "", ("ws", "wss"), ("realtime_url",), problems)
    keys, key_vars = _expand_keys(spec, env, problems)
    return _Expanded(
        base_url=base_url,
        realtime_url=realtime_url,
        keys=keys,
        key_vars=key_vars,
        headers=_expand_pairs("headers", spec.headers, env, problems),
        query=_expand_pairs("query", spec.query, env, problems),
    )


def _build(spec: TransformerFile, source: str, env: Mapping[str, str]) -> Transformer:
    problems = _Problems()
    name = spec.name if spec.name is not None else Path(source).stem
    _check_identity(spec, name, problems)
    _check_numbers(spec, problems)
    _check_models(spec, problems)
    expanded = _expand_fields(spec, env, problems)
    if problems.items:
        raise TransformerError(_line(source, p, m) for p, m in problems.items)
    return Transformer(
        name=name,
        format=spec.format,
        keys_listed=spec.keys is not None,
        key_header=spec.key_header,
        tls_verify=spec.tls_verify,
        models=spec.models,
        request=spec.request,
        timeouts=spec.timeouts,
        retry=spec.retry,
        cooldown_s=spec.cooldown_s,
        stream=spec.stream,
        default=spec.default,
        weight=spec.weight,
        forward_client_key=spec.forward_client_key,
        source=source,
        **attrs.asdict(expanded, recurse=False),
    )


def parse_transformer(
    raw: bytes,
    source: str,
    env: Mapping[str, str],
    *,
    converter: cattrs.Converter | None = None,
) -> Transformer:
    """Parse one transformer file.

    Args:
        raw: the file's bytes.
        source: the file name, used as the default ``name`` (its stem) and in
            every problem line.
        env: where ``${VAR}`` references come from.
        converter: one from :func:`make_converter`, to share between the files
            of one load (it compiles its hooks on first use); a new one if None.

    Returns:
        The transformer, with every reference expanded.

    Raises:
        TransformerError: with every problem of the file.
    """
    data = _decode_json(raw, source)
    try:
        spec = (converter or make_converter()).structure(data, TransformerFile)
    except (cattrs.ClassValidationError, _Invalid) as exc:
        raise TransformerError(_line(source, p, m) for p, m in _shape_problems(exc)) from None
    return _build(spec, source, env)


# -- directories ---------------------------------------------------------------------------


@attrs.frozen
class LoadedFile:
    """The outcome of reading and parsing one file of a directory."""

    file: str
    transformer: Transformer | None
    problems: tuple[str, ...] = ()


@attrs.frozen
class Assembly:
    """Which version of each file serves, and what went wrong per file.

    Attributes:
        serving: file name -> the transformer it contributes (the new version,
            or the previous good one when the new one failed), by file name.
        problems: file name -> its problem lines, for files that failed.
    """

    serving: Mapping[str, Transformer]
    problems: Mapping[str, tuple[str, ...]]


def list_transformer_files(directory: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the ``*.json`` entries of ``directory``, hidden ones excepted.

    Hidden names are skipped so editor droppings (``.#x.json``) and a
    Kubernetes ConfigMap's ``..data`` machinery are never read as providers.

    Raises:
        OSError: the directory cannot be listed.
    """
    return sorted(n for n in os.listdir(directory) if n.endswith(".json") and n[0] != ".")


class NotRegularFile(OSError):
    """A directory entry that is not a regular file (a FIFO, socket, device, directory)."""


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _not_regular(mode: int) -> NotRegularFile | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return NotRegularFile(f"is {kind}, not a regular file; only regular files are read")


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file.

    A FIFO opened for reading blocks until a writer comes (forever, in a
    directory nobody writes to), and a device can block or never end. So the
    target is checked with ``stat`` (which follows links: a ConfigMap's
    ``x.json -> ..data/x.json`` is fine), opened with ``O_NONBLOCK`` (an open
    FIFO or device then returns at once), and the opened descriptor checked
    again with ``fstat`` (the entry may have been swapped in between). Only a
    regular file is ever read, and never past ``limit``.

    Raises:
        NotRegularFile: it is something else; OSError: it cannot be read.
    """
    problem = _not_regular(os.stat(path).st_mode)
    if problem is not None:
        raise problem
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        problem = _not_regular(os.fstat(fd).st_mode)
        if problem is not None:
            raise problem
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_file(
    path: Path, env: Mapping[str, str], *, converter: cattrs.Converter | None = None
) -> LoadedFile:
    """Read and parse one file; never raises for a bad or unreadable file."""
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES + 1)
    except NotRegularFile as exc:
        return LoadedFile(path.name, None, (f"{path.name}: {exc}",))
    except OSError as exc:
        return LoadedFile(path.name, None, (f"{path.name}: cannot read ({exc.strerror})",))
    if len(raw) > MAX_FILE_BYTES:
        return LoadedFile(path.name, None, (f"{path.name}: larger than {MAX_FILE_BYTES} bytes",))
    try:
        return LoadedFile(path.name, parse_transformer(raw, path.name, env, converter=converter))
    except TransformerError as exc:
        return LoadedFile(path.name, None, exc.problems)


def load_directory(
    directory: str | os.PathLike[str], env: Mapping[str, str]
) -> tuple[LoadedFile, ...]:
    """Read and parse every transformer file of ``directory``, by file name.

    Raises:
        OSError: the directory cannot be listed.
    """
    base = Path(directory)
    names = list_transformer_files(base)
    converter = make_converter()
    return tuple(load_file(base / name, env, converter=converter) for name in names)


def _clash(candidate: Transformer, names: Mapping[str, str], default: str | None) -> str | None:
    if candidate.name in names:
        return f"name: {candidate.name!r} is already used by {names[candidate.name]}"
    if candidate.default and default is not None:
        return f"default: {default} is already the default provider"
    return None


def assemble(files: Iterable[LoadedFile], previous: Mapping[str, Transformer]) -> Assembly:
    """Settle cross-file rules and fall back to previous good versions.

    Args:
        files: this load's outcome per file.
        previous: file name -> the version that served before this load.

    Returns:
        The files that serve, and the problems of those that failed.
    """
    serving: dict[str, Transformer] = {}
    problems: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    default: str | None = None
    for loaded in sorted(files, key=lambda f: f.file):
        found = list(loaded.problems)
        candidates = [loaded.transformer, previous.get(loaded.file)]
        for candidate in candidates:
            if candidate is None:
                continue
            clash = _clash(candidate, names, default)
            if clash is None:
                serving[loaded.file] = candidate
                names[candidate.name] = loaded.file
                default = loaded.file if candidate.default else default
                break
            if candidate is loaded.transformer:
                found.append(f"{loaded.file}: {clash}")
        if found:
            problems[loaded.file] = tuple(found)
    return Assembly(serving=serving, problems=problems)


def _warnings(serving: Mapping[str, Transformer]) -> list[str]:
    # Imported here: the registry module builds on this one.
    from gateway.routing import route
    from gateway.transformers.registry import make_registry

    registry = make_registry(serving.values())
    out: list[str] = []
    for file, t in serving.items():
        if t.keys_listed and not t.keys:
            names = ", ".join(t.key_vars)
            gap = f"none of {names} is set" if len(t.key_vars) > 1 else f"{names} is not set"
            out.append(f"{file}: keys: {gap if t.key_vars else 'every key is empty'}")
        if isinstance(t.tls_verify, str) and not os.path.exists(t.tls_verify):
            out.append(f"{file}: tls_verify: the CA bundle file does not exist")
        for alias, entry in t.models.items():
            for i, fallback in enumerate(entry.fallbacks):
                try:
                    route(fallback, registry)
                except ModelNotFound:
                    where = format_path(("models", alias, "fallbacks", i))
                    out.append(f"{file}: {where}: {fallback!r} does not route to any provider")
    return out


def check_directory(
    path: str | os.PathLike[str], env: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Check every transformer file of a directory, as ``python -m gateway check`` does.

    Args:
        path: the directory.
        env: where ``${VAR}`` references come from.

    Returns:
        ``(problems, warnings)``, each a list of ``file: key.path: message``
        lines. Any problem means the directory is not fit to serve; warnings
        (keys listed but none set, fallbacks that route nowhere) are not.
    """
    try:
        files = load_directory(path, env)
    except OSError as exc:
        return [f"{os.fspath(path)}: cannot read the directory ({exc.strerror})"], []
    assembly = assemble(files, {})
    problems = [line for lines in assembly.problems.values() for line in lines]
    warnings = _warnings(assembly.serving)
    if not files:
        warnings.append(f"{os.fspath(path)}: no *.json transformer files")
    return problems, warnings
