"""Convert model values to plain JSON data and back, driven by their type hints.

Pure: no I/O. Used by the snapshot file format and by ``journey trace --format json``.
Supports frozen dataclasses, StrEnum/IntEnum, ``ipaddress`` types, tuples, mappings, bytes
(hex), optionals and unions. Unions of dataclasses carry a ``"_type"`` key.
A value that does not fit its field raises ``ValueError`` naming the field path
(e.g. ``routes[3].dst``), which callers wrap into ``SnapshotError``.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

_IP_ADDR = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_IP_NET = (ipaddress.IPv4Network, ipaddress.IPv6Network)


def to_data(value: Any) -> Any:
    """A model value as JSON-able data (dicts, lists, str, int, float, bool, None)."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, enum.Enum):
            return value.value
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _IP_ADDR + _IP_NET):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            out[f.name] = to_data(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        return [to_data(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def to_tagged_data(value: Any) -> Any:
    """Like ``to_data`` but adds ``"_type"`` to a dataclass so a union field can be decoded."""
    data = to_data(value)
    if isinstance(data, dict) and dataclasses.is_dataclass(value):
        data["_type"] = type(value).__name__
    return data


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(cls: type[T], data: Any, path: str = "") -> T:
    """Build a value of type ``cls`` from JSON data; ValueError names the bad field path."""
    return typing.cast(T, _decode(cls, data, path or cls.__name__))


def _decode(tp: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if data is None:
            if type(None) in args:
                return None
            raise ValueError(f"{path}: missing value")
        members = [a for a in args if a is not type(None)]
        if all(a in _IP_ADDR for a in members):
            return _ip(ipaddress.ip_address, data, path)
        if all(a in _IP_NET for a in members):
            return _ip(lambda s: ipaddress.ip_network(s, strict=False), data, path)
        dcs = [a for a in members if isinstance(a, type) and dataclasses.is_dataclass(a)]
        if dcs and isinstance(data, dict) and "_type" in data:
            for a in dcs:
                if a.__name__ == data["_type"]:
                    return _decode(a, {k: v for k, v in data.items() if k != "_type"}, path)
            raise ValueError(f"{path}: unknown type {data['_type']!r}")
        if len(members) == 1:
            return _decode(members[0], data, path)
        last: Exception | None = None
        for a in members:
            try:
                return _decode(a, data, path)
            except (ValueError, TypeError) as exc:
                last = exc
        raise ValueError(f"{path}: {last}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise ValueError(f"{path}: expected {len(args)} items")
        return tuple(_decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, str]):
        kt, vt = typing.get_args(tp)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object")
        return {_decode(kt, k, path): _decode(vt, v, f"{path}.{k}") for k, v in data.items()}
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected an object, got {type(data).__name__}")
            hints = _hints(tp)
            kwargs: dict[str, Any] = {}
            names = set()
            for f in dataclasses.fields(tp):
                names.add(f.name)
                if f.name in data:
                    kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{path}.{f.name}")
                elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ValueError(f"{path}.{f.name}: missing")
            unknown = set(data) - names - {"_type"}
            if unknown:
                raise ValueError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
            return tp(**kwargs)
        if issubclass(tp, enum.Enum):
            try:
                return tp(data)
            except ValueError:
                raise ValueError(f"{path}: {data!r} is not one of {[e.value for e in tp]}") from None
        if tp in _IP_ADDR or tp in _IP_NET:
            return _ip(tp, data, path)
        if tp is bytes:
            if not isinstance(data, str):
                raise ValueError(f"{path}: expected hex text")
            try:
                return bytes.fromhex(data)
            except ValueError:
                raise ValueError(f"{path}: not hex") from None
        if tp is bool:
            if not isinstance(data, bool):
                raise ValueError(f"{path}: expected true/false, got {data!r}")
            return data
        if tp is int:
            if isinstance(data, bool) or not isinstance(data, int):
                raise ValueError(f"{path}: expected an integer, got {data!r}")
            return data
        if tp is float:
            if isinstance(data, bool) or not isinstance(data, int | float):
                raise ValueError(f"{path}: expected a number, got {data!r}")
            return float(data)
        if tp is str:
            if not isinstance(data, str):
                raise ValueError(f"{path}: expected text, got {data!r}")
            return data
    if tp is type(None):
        if data is not None:
            raise ValueError(f"{path}: expected null")
        return None
    raise TypeError(f"{path}: cannot decode type {tp!r}")


def _ip(factory: Any, data: Any, path: str) -> Any:
    if not isinstance(data, str):
        raise ValueError(f"{path}: expected an address, got {data!r}")
    try:
        return factory(data)
    except ValueError:
        raise ValueError(f"{path}: {data!r} is not a valid address") from None
