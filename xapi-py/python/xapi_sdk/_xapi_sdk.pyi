"""The native part of xapi_sdk (Rust, through pyo3)."""

import os
from typing import Any, final

__all__ = [
    "__version__",
    "Connection",
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
    ) -> Connection: ...
    @property
    def url(self) -> str: ...
    def call(self, method: str, params: tuple[Any, ...]) -> Any: ...
