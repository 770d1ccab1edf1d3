"""The base classes of the generated typed API (``xapi_sdk.api``)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from typing import Any, ClassVar, Protocol

from xapi_sdk._xapi_sdk import Ref

__all__ = ["AsyncClassApi", "AsyncSessionBase", "ClassApi", "Record", "SessionBase", "plain"]


def plain(value: Any) -> Any:
    """``value`` with references as their text, enum members as their value and records as
    dicts, recursively: what ``json.dumps`` and the compat layer take."""
    if isinstance(value, Ref):
        return value.opaque
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Record:
    """A XAPI record: one attribute per field of the class.

    Records returned by the server carry every field it sent; ``Record(**fields)`` builds one
    to pass to a message (``VM.create``), or pass a ``dict`` of the fields instead.
    """

    __xapi_class__: ClassVar[str] = ""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a ``dict`` of plain values (see :func:`plain`)."""
        return {name: plain(value) for name, value in self.__dict__.items()}

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        label = self.__dict__.get("name_label", self.__dict__.get("uuid"))
        return f"<{type(self).__name__} {label!r}>" if label is not None else f"<{type(self).__name__}>"


class _Caller(Protocol):
    """What a class handle calls: a session's typed call."""

    def _call_typed(
        self, method: str, params: tuple[Any, ...], types: tuple[str, ...], result: str
    ) -> Any: ...


def _trim(params: tuple[Any, ...], types: tuple[str, ...], required: int | None) -> tuple[
    tuple[Any, ...], tuple[str, ...]
]:
    """Drop the optional trailing parameters left at ``None`` (the server fills them in)."""
    if required is None:
        return params, types
    end = len(params)
    while end > required and params[end - 1] is None:
        end -= 1
    return params[:end], types[:end]


class ClassApi:
    """The messages of one class, bound to a blocking session (``session.vm``)."""

    __slots__ = ("_session",)

    def __init__(self, session: _Caller) -> None:
        self._session = session

    def _call(
        self,
        method: str,
        params: tuple[Any, ...],
        types: tuple[str, ...],
        result: str,
        required: int | None = None,
    ) -> Any:
        params, types = _trim(params, types, required)
        return self._session._call_typed(method, params, types, result)


class AsyncClassApi:
    """The messages of one class, bound to an asyncio session (``session.vm``)."""

    __slots__ = ("_session",)

    def __init__(self, session: _Caller) -> None:
        self._session = session

    def _call(
        self,
        method: str,
        params: tuple[Any, ...],
        types: tuple[str, ...],
        result: str,
        required: int | None = None,
    ) -> Awaitable[Any]:
        params, types = _trim(params, types, required)
        awaitable: Awaitable[Any] = self._session._call_typed(method, params, types, result)
        return awaitable


class SessionBase:
    """What the class handles of a blocking session call (``xapi_sdk.Session`` defines it)."""

    __slots__ = ()

    def _call_typed(
        self, method: str, params: tuple[Any, ...], types: tuple[str, ...], result: str
    ) -> Any:
        raise NotImplementedError


class AsyncSessionBase:
    """What the class handles of an asyncio session call (``xapi_sdk.AsyncSession`` defines
    it)."""

    __slots__ = ()

    def _call_typed(
        self, method: str, params: tuple[Any, ...], types: tuple[str, ...], result: str
    ) -> Awaitable[Any]:
        raise NotImplementedError
