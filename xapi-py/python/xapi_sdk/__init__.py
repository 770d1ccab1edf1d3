"""xapi_sdk: a XenServer / XCP-ng XAPI client for Python, built on xapi-rs.

``xapi_sdk.compat`` is a drop-in for XenAPI.py (``import xapi_sdk.compat as XenAPI``).
The exceptions below are shared by every part of the package.
"""

from xapi_sdk._xapi_sdk import (
    Connection,
    DecodeError,
    Failure,
    TimeoutError,
    TlsError,
    TransportError,
    XapiError,
    __version__,
)

__all__ = [
    "Connection",
    "DecodeError",
    "Failure",
    "TimeoutError",
    "TlsError",
    "TransportError",
    "XapiError",
    "__version__",
]
