"""xapi_sdk: a XenServer / XCP-ng XAPI client for Python, built on xapi-rs.

* ``xapi_sdk.Session`` / ``xapi_sdk.AsyncSession``: the typed API (``session.vm.get_all_records()``
  returns ``VmRecord`` objects; enums, records and handles live in ``xapi_sdk.api``).
* ``xapi_sdk.compat``: a drop-in for XenAPI.py (``import xapi_sdk.compat as XenAPI``).
* ``xapi_sdk.backup``: the backup engine (repositories, backup jobs with progress callbacks,
  restores, XVA export and import, pool-metadata and host backups).
* ``xapi_sdk.dr``: the DR engine (replication, copies of metadata, plans as JSON, failover,
  failback and test failover runs with progress callbacks and clean-up).

The exceptions below are shared by every part of the package.
"""

from xapi_sdk._base import Record
from xapi_sdk._xapi_sdk import (
    Connection,
    DecodeError,
    Failure,
    Ref,
    TimeoutError,
    TlsError,
    TransportError,
    XapiError,
    __version__,
)
from xapi_sdk.session import AsyncSession, Session

__all__ = [
    "AsyncSession",
    "Connection",
    "DecodeError",
    "Failure",
    "Record",
    "Ref",
    "Session",
    "TimeoutError",
    "TlsError",
    "TransportError",
    "XapiError",
    "__version__",
]
