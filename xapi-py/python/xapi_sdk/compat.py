"""A drop-in for XenAPI.py (the ``XenAPI`` module of PyPI's ``xenapi``), on the Rust client.

    import xapi_sdk.compat as XenAPI

    session = XenAPI.Session("https://pool-master")
    session.xenapi.login_with_password("root", password, "1.0", "my-script")
    for ref, vm in session.xenapi.VM.get_all_records().items():
        print(vm["name_label"], vm["power_state"])
    session.xenapi.session.logout()

The call style and the returned shapes are XenAPI.py's: values come back as ``xmlrpc.client``
makes them (xapi's int64 fields as ``str``, ``float``, ``bool``, ``dict``, ``list``,
``xmlrpc.client.DateTime``), ``Failure.details`` is the ``ErrorDescription`` list, a call
answered ``SESSION_INVALID`` logs in again with the last login's parameters and is retried (up to
3 times), and ``session.<name>(...)`` outside ``xenapi`` is a raw call returning the
``{"Status": ..., "Value": ...}`` envelope, as on an ``xmlrpc.client.ServerProxy``.

Differences:

* TLS certificates are verified by default against the web PKI roots. ``ignore_ssl=True``
  accepts any certificate, as in XenAPI.py; ``fingerprint="sha256:..."`` pins the server's
  certificate and ``ca_file=`` names a PEM bundle of trusted CAs. XenAPI.py verifies only what
  the interpreter's ``ssl`` default context verifies: nothing on interpreters older than Python
  2.7.9 / 3.4.3, and nothing for any script that passes ``ignore_ssl=True`` (which many do,
  since xapi's certificates are self-signed by default): pinning is the safe replacement.
* ``transport``, ``encoding``, ``verbose`` and ``allow_none`` are accepted and ignored (``None``
  is always allowed); ``xapi_local()`` connects to ``unix:///var/lib/xcp/xapi`` directly.
* Errors of the connection itself are ``xapi_sdk.TransportError`` (and its subclasses) instead
  of ``OSError`` / ``http.client`` exceptions.
"""

from __future__ import annotations

import warnings
import xmlrpc.client
from typing import Any, Callable

from xapi_sdk import _xapi_sdk

__all__ = ["API_VERSION_1_1", "API_VERSION_1_2", "Failure", "Session", "xapi_local"]

API_VERSION_1_1 = "1.1"
API_VERSION_1_2 = "1.2"


class Failure(_xapi_sdk.Failure):
    """XAPI answered with an error; ``details`` is its ``ErrorDescription`` list.

    Also an ``xapi_sdk.Failure``, with ``code`` and ``params``.
    """

    def __init__(self, details: list[str]) -> None:
        super().__init__(details)
        self.details = details
        self.code = str(details[0]) if details else ""
        self.params = [str(p) for p in details[1:]]

    def __str__(self) -> str:
        return str(self.details)

    def _details_map(self) -> dict[str, str]:
        return {str(i): detail for i, detail in enumerate(self.details)}


class _SessionInvalid(Exception):
    """A call was answered SESSION_INVALID (log in again and retry)."""


def _call(connection: _xapi_sdk.Connection, method: str, params: tuple[Any, ...]) -> Any:
    try:
        return connection.call(method, params)
    except _xapi_sdk.Failure as err:
        details = list(err.details)
        if details and details[0] == "SESSION_INVALID":
            raise _SessionInvalid() from None
        raise Failure(details) from None


class _Dispatcher:
    """``session.xenapi.<class>.<message>``: names joined with dots, sent when called."""

    def __init__(self, send: Callable[[str, tuple[Any, ...]], Any], name: str | None) -> None:
        self.__send = send
        self.__name = name

    def __repr__(self) -> str:
        if self.__name:
            return "<XenAPI._Dispatcher for %s>" % self.__name
        return "<XenAPI._Dispatcher>"

    def __getattr__(self, name: str) -> _Dispatcher:
        if self.__name is None:
            return _Dispatcher(self.__send, name)
        return _Dispatcher(self.__send, "%s.%s" % (self.__name, name))

    def __call__(self, *args: Any) -> Any:
        if self.__name is None:
            raise TypeError("'_Dispatcher' object is not callable without a method name")
        return self.__send(self.__name, args)


class _RawMethod:
    """``session.<name>(...)`` outside ``xenapi``: a raw call answering the XML-RPC envelope."""

    def __init__(self, connection: _xapi_sdk.Connection, name: str) -> None:
        self.__connection = connection
        self.__name = name

    def __getattr__(self, name: str) -> _RawMethod:
        return _RawMethod(self.__connection, "%s.%s" % (self.__name, name))

    def __call__(self, *args: Any) -> dict[str, Any]:
        try:
            value = self.__connection.call(self.__name, args)
        except _xapi_sdk.Failure as err:
            return {"Status": "Failure", "ErrorDescription": list(err.details)}
        return {"Status": "Success", "Value": value}


def _notimplemented(name: str, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("XMLRPC proxies do not support python magic methods", name, *args, **kwargs)


class Session:
    """A connection and session manager for xapi, as XenAPI.py's ``Session``.

    ``Session(uri, transport=None, encoding=None, verbose=False, allow_none=True,
    ignore_ssl=False)``, plus the keyword-only ``fingerprint``, ``ca_file`` and ``timeout``.
    """

    def __init__(
        self,
        uri: str,
        transport: Any = None,
        encoding: Any = None,
        verbose: Any = False,
        allow_none: Any = True,
        ignore_ssl: bool = False,
        *,
        fingerprint: str | None = None,
        ca_file: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if transport is not None:
            warnings.warn(
                "xapi_sdk.compat.Session ignores `transport`: the Rust client makes the connections",
                stacklevel=2,
            )
        self._connection = _xapi_sdk.Connection(
            uri, ignore_ssl=bool(ignore_ssl), fingerprint=fingerprint, ca_file=ca_file, timeout=timeout
        )
        self.transport = transport
        self._session: str | None = None
        self.last_login_method: str | None = None
        self.last_login_params: tuple[Any, ...] | None = None
        self._API_version: str | None = API_VERSION_1_1

    def xenapi_request(self, methodname: str, params: tuple[Any, ...]) -> Any:
        """Send ``methodname`` with the session and ``params``; XenAPI.py's entry point."""
        if methodname.startswith("login"):
            self._login(methodname, params)
            return None
        if methodname == "logout" or methodname == "session.logout":
            self._logout()
            return None
        for _ in range(3):
            try:
                return _call(self._connection, methodname, (self._session, *params))
            except _SessionInvalid:
                if self.last_login_method:
                    self._login(self.last_login_method, self.last_login_params or ())
                else:
                    raise xmlrpc.client.Fault(401, "You must log in") from None
        raise xmlrpc.client.Fault(500, "Tried 3 times to get a valid session, but failed")

    def _login(self, method: str, params: tuple[Any, ...]) -> None:
        try:
            result = _call(self._connection, "session.%s" % method, tuple(params))
        except _SessionInvalid:
            raise xmlrpc.client.Fault(500, "Received SESSION_INVALID when logging in") from None
        self._session = result
        self.last_login_method = method
        self.last_login_params = tuple(params)
        self._API_version = None

    def _logout(self) -> Any:
        try:
            method = "session.logout"
            if self.last_login_method and self.last_login_method.startswith("slave_local"):
                method = "session.local_logout"
            try:
                return _call(self._connection, method, (self._session,))
            except _SessionInvalid:
                return None
        finally:
            self._session = None
            self.last_login_method = None
            self.last_login_params = None
            self._API_version = API_VERSION_1_1

    def _get_api_version(self) -> str:
        pool = self.xenapi.pool.get_all()[0]
        host = self.xenapi.pool.get_master(pool)
        major = self.xenapi.host.get_API_version_major(host)
        minor = self.xenapi.host.get_API_version_minor(host)
        return "%s.%s" % (major, minor)

    @property
    def API_version(self) -> str:
        if not self._API_version:
            self._API_version = self._get_api_version()
        return self._API_version

    def __repr__(self) -> str:
        return "<xapi_sdk.compat.Session for %s>" % self._connection.url

    # what xmlrpc.client.ServerProxy, XenAPI.py's base class, gives a session besides calls
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *args: object) -> None:
        # ServerProxy closes its HTTP connection here, and does not log out; the Rust client's
        # connections are pooled and closed when the session is collected
        return None

    def __call__(self, attr: str) -> Any:
        if attr == "close":
            return lambda: None
        if attr == "transport":
            return self.transport
        raise AttributeError("Attribute %r not found" % (attr,))

    def __getattr__(self, name: str) -> Any:
        if name == "handle":
            return self._session
        if name == "xenapi":
            return _Dispatcher(self.xenapi_request, None)
        if name.startswith("login") or name.startswith("slave_local"):
            return lambda *params: self._login(name, params)
        if name == "logout":
            return _Dispatcher(self.xenapi_request, "logout")
        if name.startswith("__") and name.endswith("__"):
            return lambda *args, **kwargs: _notimplemented(name, args, kwargs)
        if name.startswith("_"):
            raise AttributeError(name)
        return _RawMethod(self._connection, name)


def xapi_local() -> Session:
    """A session manager for the local xapi, over its Unix socket."""
    return Session("unix:///var/lib/xcp/xapi")
