"""The native part of xapi_sdk (Rust, through pyo3)."""

import os
from collections.abc import Awaitable
from typing import Any, ClassVar, final

__all__ = [
    "__version__",
    "Connection",
    "Ref",
    "register",
    "XapiError",
    "Failure",
    "TransportError",
    "TlsError",
    "TimeoutError",
    "DecodeError",
]

__version__: str

class XapiError(Exception):
    """Base class of the errors raised by xapi_sdk."""

class Failure(XapiError):
    """XAPI answered with an error."""

    code: str
    params: list[str]
    details: list[str]

class TransportError(XapiError):
    """The connection could not be opened, or broke."""

class TlsError(TransportError):
    """The TLS handshake failed or the server's certificate was refused."""

class TimeoutError(TransportError):
    """A connect or call deadline expired."""

class DecodeError(XapiError):
    """The server's answer could not be decoded."""

@final
class Connection:
    """One XAPI host reached over XML-RPC; values as xmlrpc.client gives them."""

    def __new__(
        cls,
        url: str,
        *,
        ignore_ssl: bool = False,
        fingerprint: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        protocol: str = "xmlrpc",
    ) -> Connection: ...
    @property
    def url(self) -> str: ...
    def call(self, method: str, params: tuple[Any, ...]) -> Any: ...
    def call_typed(
        self,
        method: str,
        params: tuple[Any, ...],
        param_types: tuple[str, ...],
        result_type: str,
    ) -> Any: ...
    def call_typed_async(
        self,
        method: str,
        params: tuple[Any, ...],
        param_types: tuple[str, ...],
        result_type: str,
    ) -> Awaitable[Any]: ...

@final
class Ref:
    """A reference to a XAPI object (``OpaqueRef:…``)."""

    NULL: ClassVar[Ref]
    def __new__(cls, opaque: str) -> Ref: ...
    @property
    def opaque(self) -> str: ...
    @property
    def is_null(self) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __bool__(self) -> bool: ...

def register(records: dict[str, Any], enums: dict[str, Any]) -> None:
    """Register the record and enum classes of the typed API (called by ``xapi_sdk.api``)."""
