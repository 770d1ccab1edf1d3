"""xapi_sdk.compat against the simulator, where it must behave as XenAPI.py: the same shapes,
the same errors, the same session handling."""

import concurrent.futures
import time
import xmlrpc.client

import pytest
import XenAPI  # the official client, for comparisons

import xapi_sdk
import xapi_sdk.compat as compat
from xapi_sim_fixtures import PASSWORD


def login(module, url, **kwargs):
    session = module.Session(url, **kwargs)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "xapi-py tests")
    return session


@pytest.fixture()
def session(url):
    s = login(compat, url)
    yield s
    try:
        s.xenapi.session.logout()
    except compat.Failure:
        pass


def shape(value):
    """The types of a value, recursively: what a script could tell apart."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def wait_task(x, task, timeout=30.0):
    deadline = time.time() + timeout
    while x.task.get_status(task) == "pending":
        assert time.time() < deadline, "task did not finish"
        time.sleep(0.05)
    return x.task.get_record(task)


def test_failure_is_xenapi_shaped_and_part_of_the_hierarchy(session):
    vm = session.xenapi.VM.get_all()[0]
    with pytest.raises(compat.Failure) as err:
        session.xenapi.VM.get_record("OpaqueRef:bogus")
    failure = err.value
    assert failure.details == ["HANDLE_INVALID", "VM", "OpaqueRef:bogus"]
    assert str(failure) == str(["HANDLE_INVALID", "VM", "OpaqueRef:bogus"])
    assert failure._details_map() == {"0": "HANDLE_INVALID", "1": "VM", "2": "OpaqueRef:bogus"}
    assert isinstance(failure, xapi_sdk.Failure) and isinstance(failure, xapi_sdk.XapiError)
    assert failure.code == "HANDLE_INVALID" and failure.params == ["VM", "OpaqueRef:bogus"]
    # XenAPI.py's constructor still works for scripts that raise it themselves
    assert compat.Failure(["X", "y"]).details == ["X", "y"]
    assert vm.startswith("OpaqueRef:")


def test_native_failure_carries_code_params_details(url):
    connection = xapi_sdk.Connection(url)
    with pytest.raises(xapi_sdk.Failure) as err:
        connection.call("session.login_with_password", ("root", "wrong", "1.0", "pytest"))
    assert err.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert err.value.details[0] == "SESSION_AUTHENTICATION_FAILED"
    assert err.value.details[1:] == err.value.params


def test_records_have_the_shapes_xenapi_py_gives(url):
    official = login(XenAPI, url)
    ours = login(compat, url)
    try:
        for cls in ("VM", "host", "pool", "SR", "VDI", "task", "VM_appliance", "network"):
            theirs = getattr(official.xenapi, cls).get_all_records()
            mine = getattr(ours.xenapi, cls).get_all_records()
            assert mine == theirs, cls
            assert shape(mine) == shape(theirs), cls
        # datetimes are xmlrpc.client.DateTime on both sides
        host = official.xenapi.host.get_all()[0]
        theirs = official.xenapi.host.get_servertime(host)
        mine = ours.xenapi.host.get_servertime(host)
        assert type(mine) is type(theirs) is xmlrpc.client.DateTime
        vm = next(iter(ours.xenapi.VM.get_all_records()))
        assert shape(ours.xenapi.VM.get_record(vm)) == shape(official.xenapi.VM.get_record(vm))
        # floats and ints of the wire keep their Python types
        assert type(ours.xenapi.VM.get_memory_static_max(vm)) is str
        assert type(ours.xenapi.VM.get_is_a_template(vm)) is bool
    finally:
        official.xenapi.session.logout()
        ours.xenapi.session.logout()


def test_session_invalidated_by_the_server_logs_in_again(url, session):
    first = session.handle
    assert session._session == first
    assert session.last_login_method == "login_with_password"
    assert session.last_login_params == ("root", PASSWORD, "1.0", "xapi-py tests")
    # another client ends the session behind the script's back
    raw = xmlrpc.client.ServerProxy(url)
    assert raw.session.logout(first)["Status"] == "Success"
    assert raw.VM.get_all(first)["ErrorDescription"][0] == "SESSION_INVALID"
    vms = session.xenapi.VM.get_all()
    assert vms
    assert session.handle != first and session.handle.startswith("OpaqueRef:")


def test_without_a_login_the_call_is_a_401_fault(url):
    s = compat.Session(url)
    with pytest.raises(xmlrpc.client.Fault) as err:
        s.xenapi.VM.get_all()
    assert err.value.faultCode == 401
    s.xenapi.login_with_password("root", PASSWORD)
    s.xenapi.logout()
    assert s.handle is None and s.last_login_method is None
    with pytest.raises(xmlrpc.client.Fault):
        s.xenapi.VM.get_all()


def test_async_calls_return_tasks(session):
    x = session.xenapi
    vm = next(
        ref
        for ref, rec in x.VM.get_all_records().items()
        if rec["power_state"] == "Halted" and not rec["is_a_template"]
    )
    task = x.Async.VM.clone(vm, "xapi-py clone")
    assert task.startswith("OpaqueRef:")
    record = wait_task(x, task)
    assert record["status"] == "success", record["error_info"]
    assert isinstance(record["created"], xmlrpc.client.DateTime)
    assert record["progress"] == 1.0
    (clone,), _ = xmlrpc.client.loads(
        "<methodResponse><params><param>%s</param></params></methodResponse>" % record["result"]
    )
    assert x.VM.get_name_label(clone) == "xapi-py clone"
    x.task.destroy(task)
    x.VM.destroy(clone)
    failed = wait_task(x, x.Async.VM.clean_shutdown(vm))
    assert failed["status"] == "failure"
    assert failed["error_info"][0] == "VM_BAD_POWER_STATE"


def test_event_from_through_getattr(session):
    x = session.xenapi
    token = getattr(x.event, "from")(["vm"], "", 0.0)["token"]
    vm = x.VM.get_all()[0]
    x.VM.set_name_description(vm, "seen by event.from")
    batch = getattr(x.event, "from")(["vm"], token, 5.0)
    assert any(e["ref"] == vm and e["operation"] == "mod" for e in batch["events"])
    assert isinstance(batch["token"], str)


def test_xenapi_request_and_raw_calls(session):
    assert session.xenapi_request("VM.get_all", ()) == session.xenapi.VM.get_all()
    pool = session.xenapi_request("pool.get_all", ())[0]
    assert session.xenapi_request("pool.get_uuid", (pool,)) == session.xenapi.pool.get_uuid(pool)
    # outside `xenapi`, attributes are raw XML-RPC calls answering the envelope
    answer = session.VM.get_all(session.handle)
    assert answer["Status"] == "Success" and set(answer["Value"]) == set(session.xenapi.VM.get_all())
    assert session.VM.get_record(session.handle, "OpaqueRef:x") == {
        "Status": "Failure",
        "ErrorDescription": ["HANDLE_INVALID", "VM", "OpaqueRef:x"],
    }
    assert repr(session.xenapi.VM) == "<XenAPI._Dispatcher for VM>"


def test_serverproxy_parts_scripts_use(url):
    with compat.Session(url) as s:
        s.xenapi.login_with_password("root", PASSWORD)
        assert s.xenapi.pool.get_all()
        s("close")()
        assert s("transport") is None
        s.xenapi.session.logout()


def test_parameters_of_every_type_travel(session):
    x = session.xenapi
    vm = x.VM.get_all()[0]
    x.VM.set_other_config(vm, {"a": "1", "b": "two"})
    assert x.VM.get_other_config(vm) == {"a": "1", "b": "two"}
    x.VM.set_name_description(vm, "ünïcode & <xml>")
    assert x.VM.get_name_description(vm) == "ünïcode & <xml>"
    with pytest.raises(TypeError):
        x.VM.set_name_description(vm, object())
    with pytest.raises(OverflowError):
        x.VM.set_name_description(vm, 1 << 70)


def test_slave_local_login_and_local_logout(url):
    s = compat.Session(url)
    # as in XenAPI.py, the local login is an attribute of the session, not of `xenapi`
    s.slave_local_login_with_password("root", PASSWORD)
    assert s.last_login_method == "slave_local_login_with_password"
    assert s.xenapi.host.get_all()
    s.xenapi.session.logout()
    assert s.handle is None


def test_calls_from_threads_run_concurrently(session):
    expected = session.xenapi.VM.get_all_records()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: session.xenapi.VM.get_all_records(), range(16)))
    assert all(r == expected for r in results)


def test_transport_errors_are_xapi_errors():
    s = compat.Session("http://127.0.0.1:9")
    with pytest.raises(xapi_sdk.TransportError):
        s.xenapi.login_with_password("root", PASSWORD)
    with pytest.raises(ValueError):
        compat.Session("ftp://example.org")


def test_tls_is_verified_unless_told_otherwise(start_sim):
    sim = start_sim("--tls")
    with pytest.raises(xapi_sdk.TlsError):
        login(compat, sim.url)
    pinned = login(compat, sim.url, fingerprint="sha256:" + sim.fingerprint)
    assert len(pinned.xenapi.host.get_all()) == 1
    pinned.xenapi.session.logout()
    with pytest.raises(xapi_sdk.TlsError):
        login(compat, sim.url, fingerprint="sha256:" + "0" * 64)
    lab = login(compat, sim.url, ignore_ssl=True)
    assert len(lab.xenapi.host.get_all()) == 1
    lab.xenapi.session.logout()
    with pytest.raises(ValueError):
        compat.Session(sim.url, ignore_ssl=True, fingerprint="sha256:" + sim.fingerprint)


def test_xapi_local_points_at_the_unix_socket():
    s = compat.xapi_local()
    assert s._connection.url.startswith("unix:")
    with pytest.raises(xapi_sdk.TransportError):
        s.xenapi.login_with_password("root", "")
