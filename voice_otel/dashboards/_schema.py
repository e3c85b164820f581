"""Validation of a dashboard JSON model against Grafana's dashboard schema.

The schema used is the one grafana-foundation-sdk generates its typed models from (Grafana's
own CUE kinds, pinned at the SDK's 11.6 build). A model is valid here when

* decoding it into the SDK's typed models (with the panel and Prometheus query plugins
  registered) and encoding it again gives back exactly the same JSON: a misspelt key, a key in
  the wrong place or a panel option the plugin does not know is dropped on the way and shows up
  as a difference;
* every decoded field has the type its model declares (strings, numbers, enums' allowed values,
  nested objects), checked from the models' type hints.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import dashboard as dm

_MODELS_PACKAGE = "grafana_foundation_sdk.models"


@functools.cache
def _register_plugins() -> None:
    plugins.register_default_plugins()


def schema_errors(dashboard: dict[str, Any]) -> list[str]:
    """Where ``dashboard`` departs from Grafana's dashboard schema; empty when it conforms."""
    _register_plugins()
    errors: list[str] = []
    try:
        model = dm.Dashboard.from_json(dashboard)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [f"$: does not decode as a dashboard: {exc!r}"]
    _check_model(model, "$", errors)
    encoded = json.loads(json.dumps(model, cls=JSONEncoder))
    _diff(dashboard, encoded, "$", errors)
    return errors


def _diff(given: Any, schema: Any, path: str, errors: list[str]) -> None:
    if isinstance(given, dict) and isinstance(schema, dict):
        for key in sorted(given.keys() - schema.keys()):
            errors.append(f"{path}.{key}: not part of the schema")
        for key in sorted(schema.keys() - given.keys()):
            errors.append(f"{path}.{key}: required by the schema but missing")
        for key in sorted(given.keys() & schema.keys()):
            _diff(given[key], schema[key], f"{path}.{key}", errors)
    elif isinstance(given, list) and isinstance(schema, list) and len(given) == len(schema):
        for index, (a, b) in enumerate(zip(given, schema, strict=True)):
            _diff(a, b, f"{path}[{index}]", errors)
    elif given != schema or type(given) is not type(schema):
        errors.append(f"{path}: {given!r} does not survive the schema (became {schema!r})")


def _is_model(value: Any) -> bool:
    return isinstance(value, UnknownDataquery) or type(value).__module__.startswith(_MODELS_PACKAGE)


def _check_model(model: Any, path: str, errors: list[str]) -> None:
    if isinstance(model, UnknownDataquery):
        errors.append(f"{path}: query of an unknown data source type")
        return
    hints = typing.get_type_hints(type(model))
    for attribute, hint in hints.items():
        value = getattr(model, attribute, None)
        _check(value, hint, f"{path}.{attribute}", errors)


def _check(value: Any, hint: Any, path: str, errors: list[str]) -> None:
    if not _conforms(value, hint, path, errors):
        errors.append(f"{path}: {value!r} is not a {hint}")


def _conforms(value: Any, hint: Any, path: str, errors: list[str]) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        # Plugin-specific parts (panel options, custom field config) are typed by the plugin.
        if _is_model(value):
            _check_model(value, path, errors)
        return True
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True
        return any(_conforms(value, arg, path, []) for arg in args if arg is not type(None)) and (
            _recurse_union(value, args, path, errors)
        )
    if origin is typing.Literal:
        return value in args
    if origin is list:
        if not isinstance(value, list):
            return False
        for index, item in enumerate(value):
            _check(item, args[0] if args else Any, f"{path}[{index}]", errors)
        return True
    if origin is dict:
        if not isinstance(value, dict):
            return False
        for key, item in value.items():
            _check(item, args[1] if len(args) == 2 else Any, f"{path}[{key!r}]", errors)
        return True
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {member.value for member in hint}
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return False
        if _is_model(value):
            _check_model(value, path, errors)
        return True
    return True


def _recurse_union(value: Any, args: tuple[Any, ...], path: str, errors: list[str]) -> bool:
    """Descend into the first union member that matches, reporting its nested errors."""
    for arg in args:
        if arg is type(None):
            continue
        nested: list[str] = []
        if _conforms(value, arg, path, nested):
            errors.extend(nested)
            return True
    return False
