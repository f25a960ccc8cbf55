"""Settings: frozen attrs classes, filled from four layers, later wins.

    defaults in code  <  TOML file (--config)  <  GATEWAY_<SECTION>__<KEY>  <  command-line flags

Each layer is checked on its own before the layers are merged, so an unknown
key or a wrong type is reported with the place it came from (``config.toml:
server.port: ...``, ``GATEWAY_SERVER__PORT: ...`` or ``command line: ...``),
never as a traceback, and every problem of every layer is reported at once.
The converter and the wording are :mod:`gateway.strict`'s, shared with the
transformer files: ``server.prot: unknown key (did you mean 'port'?)``,
``server.port: expected an integer, got string '80'``. Values are shown,
except those of secret settings (auth keys, ``state.redis_url``).
``${VAR}`` and ``${VAR:-default}`` expand in TOML strings, so secrets stay in
the environment. design.md ("Settings file") is the list of keys;
``config.example.toml`` documents each with its default.
"""

from __future__ import annotations

import json
import os
import re
import sys
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs
import cattrs

from gateway.envvars import expand_env
from gateway.redis.url import redis_url_problem
from gateway.server.cors import origin_problem
from gateway.strict import (
    Invalid,
    KeyPath,
    Problem,
    make_converter,
    problem_line,
    shape_problems,
    unknown_key,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "AuthKey",
    "Config",
    "ConfigError",
    "load_config",
]

SECONDS = 1.0
KIB = 1024
MIB = 1024 * KIB
ENV_PREFIX = "GATEWAY_"


class ConfigError(Exception):
    """Settings that cannot be used; ``problems`` are ``source: key.path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Range rules live in field metadata and are checked after structuring, so that a
# problem is reported with its key path (an attrs validator would only name the section).
_POSITIVE = {"check": "positive"}
_NON_NEGATIVE = {"check": "non_negative"}
_PORT = {"check": "port"}
_ORIGINS = {"check": "origins"}
_REDIS_URL = {"check": "redis_url"}


@attrs.frozen
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = attrs.field(default=3000, metadata=_PORT)
    workers: int = attrs.field(default=1, metadata=_POSITIVE)
    max_header_bytes: int = attrs.field(default=64 * KIB, metadata=_POSITIVE)
    max_body_bytes: int = attrs.field(default=32 * MIB, metadata=_POSITIVE)
    header_timeout_s: float = attrs.field(default=10 * SECONDS, metadata=_POSITIVE)
    body_timeout_s: float = attrs.field(default=30 * SECONDS, metadata=_POSITIVE)
    keep_alive_s: float = attrs.field(default=75 * SECONDS, metadata=_POSITIVE)
    max_connections: int = attrs.field(default=4096, metadata=_POSITIVE)
    body_total_timeout_s: float = attrs.field(default=300 * SECONDS, metadata=_POSITIVE)
    max_json_depth: int = attrs.field(default=64, metadata=_POSITIVE)
    max_inflight_bytes: int = attrs.field(default=256 * MIB, metadata=_POSITIVE)
    shutdown_grace_s: float = attrs.field(default=30 * SECONDS, metadata=_NON_NEGATIVE)
    shutdown_delay_s: float = attrs.field(default=0 * SECONDS, metadata=_NON_NEGATIVE)
    tls_cert: str = ""
    tls_key: str = ""


@attrs.frozen
class TransformersConfig:
    dir: str = "transformers"
    poll_interval_s: float = attrs.field(default=1 * SECONDS, metadata=_POSITIVE)


@attrs.frozen
class AuthKey:
    """One client key: ``key`` (or ``key_file``), its limits and the models it may use."""

    name: str
    key: str = attrs.field(default="", repr=False)
    key_file: str = ""
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    models: tuple[str, ...] = ("*",)
    admin: bool = False


@attrs.frozen
class AuthConfig:
    keys: tuple[AuthKey, ...] = ()
    metrics_key: str = attrs.field(default="", repr=False)


@attrs.frozen
class StateConfig:
    redis_url: str = attrs.field(default="", repr=False, metadata=_REDIS_URL)
    fail_open: bool = True
    key_prefix: str = "gateway:"
    timeout_s: float = attrs.field(default=1 * SECONDS, metadata=_POSITIVE)


@attrs.frozen
class CorsConfig:
    allow_origins: tuple[str, ...] = attrs.field(default=(), metadata=_ORIGINS)


@attrs.frozen
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"
    audit_log: str = ""
    audit_max_bytes: int = attrs.field(default=100 * MIB, metadata=_POSITIVE)
    audit_backups: int = attrs.field(default=5, metadata=_NON_NEGATIVE)
    log_bodies: bool = False


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    transformers: TransformersConfig = TransformersConfig()
    auth: AuthConfig = AuthConfig()
    state: StateConfig = StateConfig()
    cors: CorsConfig = CorsConfig()
    logging: LoggingConfig = LoggingConfig()


for _cls in (
    ServerConfig,
    TransformersConfig,
    AuthKey,
    AuthConfig,
    StateConfig,
    CorsConfig,
    LoggingConfig,
    Config,
):
    attrs.resolve_types(_cls)


# -- problems -------------------------------------------------------------------------------


def _is_secret(path: KeyPath) -> bool:
    """A setting whose value is a secret: a problem with it never shows the value."""
    if path[:2] == ("auth", "keys"):  # the list, one entry, or an entry's key
        return len(path) <= 3 or path[3] == "key"
    return path[:2] in (("state", "redis_url"), ("auth", "metrics_key"))


def _lines(source: str, problems: Iterable[Problem]) -> list[str]:
    """``source: key.path: message`` lines; values are shown unless the setting is a secret."""
    out = []
    for problem in problems:
        secret = _is_secret(problem.path)
        text = problem.text(show_value=not secret)
        if secret and problem.value_repr is not None:
            text += " (the value is not shown: it is a secret)"
        out.append(problem_line(source, problem.path, text))
    return out


# -- ${VAR} expansion -------------------------------------------------------------------------


def _expand_tree(value: Any, env: Mapping[str, str], path: KeyPath, found: list[Problem]) -> Any:
    """``value`` with ${VAR} references expanded in every string; problems go to ``found``."""
    if isinstance(value, str):
        try:
            return expand_env(value, env)
        except ValueError as exc:
            found.append(Problem(path, str(exc)))
            return value
    if isinstance(value, list):
        return [_expand_tree(v, env, (*path, i), found) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand_tree(v, env, (*path, k), found) for k, v in value.items()}
    return value


# -- layers ---------------------------------------------------------------------------------


def _check_layer(conv: cattrs.Converter, layer: dict[str, Any], source: str) -> list[str]:
    """Structure one layer alone (every key is optional) and report its problems."""
    try:
        config = conv.structure(layer, Config)
    except (cattrs.BaseValidationError, Invalid) as exc:
        return _lines(source, shape_problems(exc))
    found = _range_problems(config, layer) + _auth_problems(config)
    return _lines(source, found)


def _range_problems(config: Config, layer: Mapping[str, Any]) -> list[Problem]:
    """Range rules (field metadata) of the keys this layer sets."""
    problems = []
    for section, values in layer.items():
        obj = getattr(config, section)
        for f in attrs.fields(type(obj)):
            check = f.metadata.get("check")
            if check is None or f.name not in values:
                continue
            value = getattr(obj, f.name)
            path = (section, f.name)
            if check == "positive" and value <= 0:
                problems.append(Problem(path, f"must be greater than 0, got {value}"))
            elif check == "non_negative" and value < 0:
                problems.append(Problem(path, f"must be 0 or more, got {value}"))
            elif check == "origins":
                problems += [
                    Problem((*path, i), f"{entry!r}: {message}")
                    for i, entry in enumerate(value)
                    if (message := origin_problem(entry)) is not None
                ]
            elif check == "redis_url" and value and (wrong := redis_url_problem(value)):
                problems.append(Problem(path, wrong))
            elif check == "port" and not 0 <= value <= 65535:
                problems.append(
                    Problem(
                        path, f"must be a TCP port from 0 to 65535 (0: any free port), got {value}"
                    )
                )
    return problems


#: A client key's name goes into metrics labels, logs and shared-state keys.
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


_LIMITS = ("rpm", "tpm", "concurrency", "tokens_per_day", "tokens_per_month")


def _auth_problems(config: Config) -> list[Problem]:
    """What the merged ``[auth] keys`` get wrong as a whole (names, key or key_file)."""
    problems = []
    seen: set[str] = set()
    for i, entry in enumerate(config.auth.keys):
        path = ("auth", "keys", i)
        if not _KEY_NAME.fullmatch(entry.name):
            problems.append(
                Problem(
                    (*path, "name"),
                    f"{entry.name!r} is not a key name: 1 to 64 letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit",
                )
            )
        elif entry.name in seen:
            problems.append(Problem((*path, "name"), f"{entry.name!r} names another key too"))
        seen.add(entry.name)
        if bool(entry.key) == bool(entry.key_file):
            problems.append(
                Problem(
                    (*path, "key"),
                    'set key (e.g. key = "${TEAM_A_KEY}") or key_file, exactly one '
                    "(an empty key usually means its environment variable is unset)",
                )
            )
        for limit in _LIMITS:
            value = getattr(entry, limit)
            if value is not None and value <= 0:
                problems.append(
                    Problem((*path, limit), f"must be greater than 0 (or unset), got {value}")
                )
        if not entry.models:
            problems.append(Problem((*path, "models"), "lists no model: the key could use none"))
    return problems


def _read_toml(path: str, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the settings file: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    found: list[Problem] = []
    expanded: dict[str, Any] = _expand_tree(data, env, (), found)
    if found:
        raise ConfigError(_lines(path, found))
    return expanded


#: Section name -> its class.
_SECTIONS: Mapping[str, type] = {f.name: type(f.default) for f in attrs.fields(Config)}


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Settings from ``GATEWAY_<SECTION>__<KEY>`` variables, typed by the field they name."""
    layer: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        cls = _SECTIONS.get(section)
        if cls is None:
            problems += _lines(var, [unknown_key((), section, list(_SECTIONS))])
            continue
        names = [f.name for f in attrs.fields(cls)]
        if key not in names:
            problems += _lines(var, [unknown_key((section,), key, names)])
            continue
        try:
            layer.setdefault(section, {})[key] = _parse_env_value(
                raw, attrs.fields_dict(cls)[key].type
            )
        except Invalid as exc:
            problems += _lines(var, [Problem((section, key), str(exc), exc.value_repr)])
        except ValueError as exc:
            problems += _lines(var, [Problem((section, key), str(exc))])
    return layer, problems


def _parse_env_value(raw: str, ftype: Any) -> Any:
    """``raw`` as the field's type; raises Invalid (or ValueError for JSON)."""
    origin = typing.get_origin(ftype)
    if ftype is str or origin is Literal:
        return raw
    if ftype is int or ftype == (int | None):
        if ftype is not int and not raw.strip():
            return None
        try:
            return int(raw)
        except ValueError:
            raise Invalid("an integer", raw) from None
    if ftype is float:
        try:
            return float(raw)
        except ValueError:
            raise Invalid("a number", raw) from None
    if ftype is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise Invalid("true or false", raw)
    # lists and tables (e.g. GATEWAY_AUTH__KEYS) come as JSON
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON ({exc.msg} at position {exc.pos})") from None


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the settings from the TOML file at ``path``, the environment and ``overrides``.

    Args:
        path: a TOML settings file, or None for none.
        env: the environment (defaults to ``os.environ``).
        overrides: ``{section: {key: value}}`` from command-line flags; wins over everything.

    Raises:
        ConfigError: with every problem found, each naming its source and key.
    """
    env = os.environ if env is None else env
    conv = make_converter()
    problems: list[str] = []
    toml_layer: dict[str, Any] = {}
    if path:
        toml_layer = _read_toml(path, env)
        problems += _check_layer(conv, toml_layer, path)
    env_layer, env_problems = _env_layer(env)
    problems += env_problems
    for section, values in env_layer.items():
        for key, value in values.items():
            var = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            problems += _check_layer(conv, {section: {key: value}}, var)
    flag_layer = {k: dict(v) for k, v in (overrides or {}).items() if v}
    problems += _check_layer(conv, flag_layer, "command line")
    if problems:
        raise ConfigError(problems)
    merged = _merge(_merge(toml_layer, env_layer), flag_layer)
    try:
        config = conv.structure(merged, Config)
    except (cattrs.BaseValidationError, Invalid) as exc:  # pragma: no cover - layers were valid
        raise ConfigError(_lines("settings", shape_problems(exc))) from exc
    if bool(config.server.tls_cert) != bool(config.server.tls_key):
        raise ConfigError(["server.tls_cert, server.tls_key: set both for HTTPS, or neither"])
    if config.logging.log_bodies and not config.logging.audit_log:
        raise ConfigError(
            [
                "logging.log_bodies: bodies go to the audit log, which is off; "
                "set logging.audit_log too, or remove log_bodies"
            ]
        )
    return config
