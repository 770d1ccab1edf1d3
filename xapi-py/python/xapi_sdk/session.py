"""The typed sessions: ``Session`` (blocking) and ``AsyncSession`` (asyncio).

    with xapi_sdk.Session("https://pool-master") as session:
        session.login_with_password("root", password)
        for ref, vm in session.vm.get_all_records().items():
            print(vm.name_label, vm.power_state)

``session.<class>`` (``vm``, ``sr``, ``vdi``, ``pool``, …) has one method per message of the
class, named as on the wire (``VM.get_all_records`` is ``session.vm.get_all_records()``), with
the session argument left out. Results are typed: references are :class:`Ref`, enum values
members of the generated enums (``VmPowerState.RUNNING``), records instances of the generated
record classes (``VmRecord``) with a ``to_dict()``, xapi's int64 values ``int`` and datetimes
timezone-aware ``datetime.datetime``. Messages that also run as a task have a ``<name>_async``
twin returning the task's reference.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Literal

from xapi_sdk.api import _AsyncSessionClasses, _SessionClasses
from xapi_sdk._xapi_sdk import Connection, Ref, XapiError

__all__ = ["AsyncSession", "Session"]


_LOGIN_TYPES = ("s", "s", "s", "s")


class _Base:
    """What both sessions share: the connection and the session reference."""

    def __init__(
        self,
        url: str,
        *,
        protocol: Literal["xmlrpc", "jsonrpc", "auto"] = "auto",
        ignore_ssl: bool = False,
        fingerprint: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._connection = Connection(
            url,
            ignore_ssl=ignore_ssl,
            fingerprint=fingerprint,
            ca_file=ca_file,
            timeout=timeout,
            protocol=protocol,
        )
        self._ref: Ref | None = None

    @property
    def ref(self) -> Ref:
        """The session's reference (``OpaqueRef:…``); ``XapiError`` before a login."""
        if self._ref is None:
            raise XapiError("not logged in: call login_with_password first")
        return self._ref

    @property
    def url(self) -> str:
        """The server URL."""
        return self._connection.url

    def __repr__(self) -> str:
        state = "logged in" if self._ref is not None else "not logged in"
        return f"<{type(self).__name__} {self.url} ({state})>"


class Session(_Base, _SessionClasses):
    """A blocking, typed session with one XAPI host or pool master.

    ``protocol`` is ``"auto"`` (JSON-RPC, falling back to XML-RPC on hosts without it),
    ``"jsonrpc"`` or ``"xmlrpc"``.

    ``Session(url, *, protocol="auto", ignore_ssl=False, fingerprint=None, ca_file=None,
    timeout=None)``: TLS as in :class:`xapi_sdk.Connection` (verified by default). Calls release
    the GIL while they wait on the network; the answer is then decoded straight into Python
    objects in one pass, which holds the GIL (it creates the objects) and lets other threads run
    every 5 ms. Ctrl-C interrupts a call (``KeyboardInterrupt``), closing its connection.
    """

    def login_with_password(
        self,
        username: str,
        password: str,
        version: str = "1.0",
        originator: str = "xapi_sdk",
    ) -> Ref:
        """Log in; the session's reference."""
        ref: Ref = self._connection.call_typed(
            "session.login_with_password",
            (username, password, version, originator),
            _LOGIN_TYPES,
            "r",
        )
        self._ref = ref
        return ref

    def logout(self) -> None:
        """Log out (does nothing when not logged in)."""
        if self._ref is not None:
            ref, self._ref = self._ref, None
            self._connection.call_typed("session.logout", (ref,), (), "v")

    def _call_typed(
        self, method: str, params: tuple[Any, ...], types: tuple[str, ...], result: str
    ) -> Any:
        return self._connection.call_typed(method, (self.ref, *params), types, result)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.logout()


class AsyncSession(_Base, _AsyncSessionClasses):
    """The asyncio twin of :class:`Session`: every message returns an awaitable.

    ``async with AsyncSession(url) as session: await session.login_with_password(…)``;
    ``await session.vm.get_all_records()``. Cancelling the awaiting task cancels the call.
    """

    async def login_with_password(
        self,
        username: str,
        password: str,
        version: str = "1.0",
        originator: str = "xapi_sdk",
    ) -> Ref:
        """Log in; the session's reference."""
        ref: Ref = await self._connection.call_typed_async(
            "session.login_with_password",
            (username, password, version, originator),
            _LOGIN_TYPES,
            "r",
        )
        self._ref = ref
        return ref

    async def logout(self) -> None:
        """Log out (does nothing when not logged in)."""
        if self._ref is not None:
            ref, self._ref = self._ref, None
            await self._connection.call_typed_async("session.logout", (ref,), (), "v")

    def _call_typed(
        self, method: str, params: tuple[Any, ...], types: tuple[str, ...], result: str
    ) -> Awaitable[Any]:
        awaitable: Awaitable[Any] = self._connection.call_typed_async(
            method, (self.ref, *params), types, result
        )
        return awaitable

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.logout()
