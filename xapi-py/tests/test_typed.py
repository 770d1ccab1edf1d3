"""The typed API (xapi_sdk.Session, xapi_sdk.AsyncSession) against the simulator, on both
protocols: typed records, enums and references, parameters of each type, async twins."""

import asyncio
import datetime
import urllib.request

import pytest

import xapi_sdk
from xapi_sdk.api import VmPowerState, VmRecord, VdiType
from xapi_sim_fixtures import PASSWORD

PROTOCOLS = ["xmlrpc", "jsonrpc"]


def fault(url, query):
    """Switch a fault of the simulator on (or `clear` them)."""
    request = urllib.request.Request(f"{url}/_sim/fault?{query}", method="POST")
    urllib.request.urlopen(request).read()


@pytest.fixture(params=PROTOCOLS)
def session(request, url):
    s = xapi_sdk.Session(url, protocol=request.param)
    s.login_with_password("root", PASSWORD, "1.0", "xapi-py typed tests")
    yield s
    s.logout()


def test_records_are_typed(session):
    records = session.vm.get_all_records()
    assert records
    for ref, vm in records.items():
        assert isinstance(ref, xapi_sdk.Ref) and ref.opaque.startswith("OpaqueRef:")
        assert isinstance(vm, VmRecord)
        assert isinstance(vm.name_label, str)
        assert isinstance(vm.power_state, VmPowerState)
        assert isinstance(vm.memory_static_max, int)
        assert isinstance(vm.VCPUs_max, int)
        assert isinstance(vm.is_a_template, bool)
        assert isinstance(vm.other_config, dict)
        assert all(isinstance(v, xapi_sdk.Ref) for v in vm.VBDs)
        assert isinstance(vm.resident_on, xapi_sdk.Ref)
        assert isinstance(vm.snapshot_time, datetime.datetime)
        assert vm.snapshot_time.tzinfo is not None
        plain = vm.to_dict()
        assert plain["power_state"] == vm.power_state.value
        assert plain["uuid"] == vm.uuid
        assert isinstance(plain["resident_on"], str)


def test_typed_values_agree_with_the_compat_layer(url, session):
    import xapi_sdk.compat as compat

    old = compat.Session(url)
    old.xenapi.login_with_password("root", PASSWORD, "1.0", "xapi-py typed tests")
    try:
        raw = old.xenapi.VM.get_all_records()
    finally:
        old.xenapi.session.logout()
    typed = session.vm.get_all_records()
    assert {ref.opaque for ref in typed} == set(raw)
    for ref, vm in typed.items():
        assert vm.to_dict()["name_label"] == raw[ref.opaque]["name_label"]
        assert vm.memory_static_max == int(raw[ref.opaque]["memory_static_max"])
        assert vm.power_state.value == raw[ref.opaque]["power_state"]


def test_refs_enums_and_scalars_go_back_as_parameters(session):
    vm = next(r for r, v in session.vm.get_all_records().items() if not v.is_a_template)
    assert session.vm.get_power_state(vm) in set(VmPowerState)
    uuid = session.vm.get_uuid(vm)
    assert session.vm.get_by_uuid(uuid) == vm
    assert session.vm.get_by_uuid(uuid).opaque == vm.opaque
    session.vm.set_name_description(vm, "typed ✓")
    assert session.vm.get_name_description(vm) == "typed ✓"
    session.vm.add_to_other_config(vm, "xapi-py", "1")
    assert session.vm.get_other_config(vm)["xapi-py"] == "1"
    session.vm.remove_from_other_config(vm, "xapi-py")
    limit = session.vm.get_memory_static_max(vm)
    assert isinstance(limit, int) and limit > 0
    vdis = session.vdi.get_all_records()
    assert all(isinstance(v.type, (VdiType, str)) for v in vdis.values())
    assert all(isinstance(v.virtual_size, int) for v in vdis.values())


def test_a_plain_string_reference_is_accepted(session):
    vm = session.vm.get_all()[0]
    assert session.vm.get_record(vm.opaque).uuid == session.vm.get_uuid(vm)


def test_failure_has_code_params_details(session):
    with pytest.raises(xapi_sdk.Failure) as err:
        session.vm.get_record(xapi_sdk.Ref("OpaqueRef:bogus"))
    assert err.value.code == "HANDLE_INVALID"
    assert err.value.params == ["VM", "OpaqueRef:bogus"]
    assert err.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:bogus"]
    assert isinstance(err.value, xapi_sdk.XapiError)


def test_a_task_twin_returns_the_task(session):
    vm = next(r for r, v in session.vm.get_all_records().items() if not v.is_a_template)
    task = session.vm.clone_async(vm, "typed clone")
    assert isinstance(task, xapi_sdk.Ref)
    record = session.task.get_record(task)
    assert record.uuid == session.task.get_uuid(task)


def test_calls_before_login_fail_clearly(url):
    s = xapi_sdk.Session(url)
    with pytest.raises(xapi_sdk.XapiError, match="not logged in"):
        s.vm.get_all()


def test_session_is_a_context_manager(url):
    with xapi_sdk.Session(url, protocol="xmlrpc") as s:
        s.login_with_password("root", PASSWORD)
        assert s.pool.get_all()
    assert s._ref is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_twins(url, protocol):
    async def main():
        async with xapi_sdk.AsyncSession(url, protocol=protocol) as s:
            await s.login_with_password("root", PASSWORD)
            records, hosts = await asyncio.gather(s.vm.get_all_records(), s.host.get_all())
            assert records and hosts
            assert all(isinstance(v, VmRecord) for v in records.values())
            vm = next(iter(records))
            assert await s.vm.get_uuid(vm) == records[vm].uuid
            with pytest.raises(xapi_sdk.Failure) as err:
                await s.vm.get_record("OpaqueRef:bogus")
            assert err.value.code == "HANDLE_INVALID"
            return len(records)

    assert asyncio.run(main()) > 0


def test_async_call_can_be_cancelled(url):
    fault(url, "delay_ms=5000")
    try:

        async def main():
            s = xapi_sdk.AsyncSession(url)
            await asyncio.wait_for(s.login_with_password("root", PASSWORD), 0.5)

        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(main())
    finally:
        fault(url, "clear")


def test_record_fields_in_any_order_and_unknown_ones_are_decoded():
    import http.server
    import threading
    import xmlrpc.client

    # Fields out of the datamodel's order, repeated names of other records' fields, and a
    # field this module does not know (from a newer server).
    record = {
        "power_state": "Halted",
        "future_field": {"k": "v"},
        "other_config": {"a": "1"},
        "name_label": "shuffled",
        "memory_static_max": "4096",
        "uuid": "4b5f1a34-0000-4000-8000-000000000001",
        "is_a_template": False,
    }

    class Replay(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            value = "OpaqueRef:session" if b"login_with_password" in body else record
            answer = xmlrpc.client.dumps(
                ({"Status": "Success", "Value": value},), methodresponse=True
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = xapi_sdk.Session(f"http://127.0.0.1:{server.server_address[1]}", protocol="xmlrpc")
        s.login_with_password("root", PASSWORD)
        vm = s.vm.get_record(xapi_sdk.Ref("OpaqueRef:vm"))
    finally:
        server.shutdown()
    assert vm.name_label == "shuffled"
    assert vm.power_state is VmPowerState.HALTED
    assert vm.memory_static_max == 4096
    assert vm.other_config == {"a": "1"}
    assert vm.is_a_template is False
    assert vm.uuid == "4b5f1a34-0000-4000-8000-000000000001"
    assert vm.to_dict()["future_field"] == {"k": "v"}


def test_a_cancelled_async_call_closes_its_connection():
    import socket
    import threading

    # a server that reads the request and never answers; it sees when the client hangs up
    listener = socket.create_server(("127.0.0.1", 0))
    hung_up = threading.Event()

    def serve():
        connection, _ = listener.accept()
        with connection:
            while connection.recv(65536):
                pass
        hung_up.set()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def main():
        s = xapi_sdk.AsyncSession(url)
        await asyncio.wait_for(s.login_with_password("root", PASSWORD), 0.3)

    try:
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(main())
        assert hung_up.wait(5.0), "the cancelled call kept its connection open"
    finally:
        listener.close()


def test_the_example_runs(url):
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "inventory.py"
    done = subprocess.run(
        [sys.executable, str(script), url, "root", PASSWORD],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "running;" in done.stdout and "VM objects on" in done.stdout


def test_the_gil_is_released_while_calls_wait(url, session):
    import concurrent.futures
    import time

    fault(url, "delay_ms=400")
    try:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            counts = list(pool.map(lambda _: len(session.vm.get_all()), range(4)))
        elapsed = time.monotonic() - started
    finally:
        fault(url, "clear")
    assert len(set(counts)) == 1 and counts[0] > 0
    # four calls of 400 ms each, waiting at the same time
    assert elapsed < 1.2, elapsed


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was(session, enabled):
    # the decoding switches the cyclic collector off while it builds an answer
    import gc

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        assert session.vm.get_all_records()
        assert gc.isenabled() is enabled
        # a typed result of the wrong shape stops the decoding half-way
        with pytest.raises(xapi_sdk.DecodeError, match="expected a record"):
            session._connection.call_typed(
                "VM.get_name_label", (session.ref, session.vm.get_all()[0]), (), "RVM;"
            )
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
