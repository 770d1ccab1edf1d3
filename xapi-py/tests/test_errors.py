"""Every exception type of xapi_sdk raised by a real case, through the typed API, and Ctrl-C
during a blocking call."""

import http.server
import os
import signal
import threading
import time
import urllib.request

import pytest

import xapi_sdk
from xapi_sim_fixtures import PASSWORD


def fault(url, query):
    """Switch a fault of the simulator on (or `clear` them)."""
    request = urllib.request.Request(f"{url}/_sim/fault?{query}", method="POST")
    urllib.request.urlopen(request).read()


class _Garbage(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 200 and a truncated document: XML on `/`, JSON on `/jsonrpc`."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/jsonrpc":
            kind, body = "application/json", b'{"jsonrpc": "2.0", "id": 1, "result": {"a'
        else:
            kind, body = "text/xml", b"<methodResponse><params><param><value><struct><member>"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def garbage_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_failure(url):
    with xapi_sdk.Session(url) as s:
        with pytest.raises(xapi_sdk.Failure) as err:
            s.login_with_password("root", "wrong password")
    assert err.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert err.value.details[0] == err.value.code
    assert err.value.params == err.value.details[1:]


def test_transport_error_when_nothing_listens():
    s = xapi_sdk.Session("http://127.0.0.1:9", protocol="xmlrpc")
    with pytest.raises(xapi_sdk.TransportError) as err:
        s.login_with_password("root", PASSWORD)
    assert not isinstance(err.value, (xapi_sdk.TlsError, xapi_sdk.TimeoutError))


def test_tls_error_for_an_unknown_certificate(start_sim):
    sim = start_sim("--tls")
    with pytest.raises(xapi_sdk.TlsError):
        xapi_sdk.Session(sim.url).login_with_password("root", PASSWORD)
    pinned = xapi_sdk.Session(sim.url, fingerprint="sha256:" + sim.fingerprint)
    pinned.login_with_password("root", PASSWORD)
    assert len(pinned.host.get_all()) == 1
    pinned.logout()


def test_timeout_error_when_the_server_is_slow(url):
    fault(url, "delay_ms=3000")
    try:
        s = xapi_sdk.Session(url, protocol="xmlrpc", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(xapi_sdk.TimeoutError):
            s.login_with_password("root", PASSWORD)
        assert time.monotonic() - started < 2.5
    finally:
        fault(url, "clear")


@pytest.mark.parametrize("protocol", ["xmlrpc", "jsonrpc"])
def test_decode_error_for_a_broken_answer(garbage_server, protocol):
    s = xapi_sdk.Session(garbage_server, protocol=protocol)
    with pytest.raises(xapi_sdk.DecodeError):
        s.login_with_password("root", PASSWORD)


def test_a_typed_result_of_the_wrong_shape_is_a_decode_error(url):
    with xapi_sdk.Session(url, protocol="xmlrpc") as s:
        s.login_with_password("root", PASSWORD)
        vm = s.vm.get_all()[0]
        # VM.get_name_label answers a string: asking for an int record makes the decoder fail
        with pytest.raises(xapi_sdk.DecodeError):
            s._connection.call_typed("VM.get_name_label", (s.ref, vm), (), "RVM;")


def test_ctrl_c_interrupts_a_blocking_call(url):
    fault(url, "delay_ms=5000")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        s = xapi_sdk.Session(url, protocol="xmlrpc")
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            s.login_with_password("root", PASSWORD)
        assert time.monotonic() - started < 2.0
    finally:
        timer.cancel()
        fault(url, "clear")
    # the module still works afterwards
    with xapi_sdk.Session(url) as s:
        s.login_with_password("root", PASSWORD)
        assert s.vm.get_all()
