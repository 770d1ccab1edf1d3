"""The official Python client (PyPI `xenapi`, module `XenAPI`) against the simulator."""

import hashlib
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
import xmlrpc.client

import pytest
import XenAPI

from conftest import PASSWORD


@pytest.fixture()
def session(demo):
    s = XenAPI.Session(demo.urls["primary"])
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
    yield s
    try:
        s.xenapi.session.logout()
    except XenAPI.Failure:
        pass


def wait_task(session, task, timeout=30.0):
    deadline = time.time() + timeout
    while session.xenapi.task.get_status(task) == "pending":
        assert time.time() < deadline, "task did not finish"
        time.sleep(0.05)
    return session.xenapi.task.get_record(task)


def halted_vm(session):
    for ref, rec in session.xenapi.VM.get_all_records().items():
        if rec["power_state"] == "Halted" and not rec["is_a_template"] and rec["appliance"] == "OpaqueRef:NULL":
            return ref
    raise AssertionError("the demo has a halted standalone VM")


def test_login_and_logout(demo):
    s = XenAPI.Session(demo.urls["primary"])
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
    handle = s.handle
    assert handle.startswith("OpaqueRef:")
    assert len(s.xenapi.VM.get_all()) >= 20
    s.xenapi.session.logout()
    # the handle is dead for every protocol now
    raw = xmlrpc.client.ServerProxy(demo.urls["primary"])
    answer = raw.VM.get_all(handle)
    assert answer == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", handle]}


def test_wrong_password_is_refused(demo):
    s = XenAPI.Session(demo.urls["primary"])
    with pytest.raises(XenAPI.Failure) as err:
        s.xenapi.login_with_password("root", "not-the-password", "1.0", "pytest")
    assert err.value.details[0] == "SESSION_AUTHENTICATION_FAILED"


def test_get_all_records_of_several_classes(session):
    x = session.xenapi
    vms = x.VM.get_all_records()
    vbds = x.VBD.get_all_records()
    vdis = x.VDI.get_all_records()
    hosts = x.host.get_all_records()
    srs = x.SR.get_all_records()
    apps = x.VM_appliance.get_all_records()
    pools = x.pool.get_all_records()
    assert len(hosts) == 2
    assert len(pools) == 1
    assert len(apps) == 3
    assert sum(1 for r in vms.values() if not r["is_a_template"]) >= 20
    assert any(r["shared"] for r in srs.values())
    # ints travel as untyped digits, which XenAPI.py users see as strings
    some_vm = next(iter(vms.values()))
    assert re.fullmatch(r"\d+", some_vm["memory_static_max"])
    assert isinstance(some_vm["other_config"], dict)
    # the one-to-many sets are kept in step with the many side
    for ref, vbd in vbds.items():
        assert ref in vms[vbd["VM"]]["VBDs"]
        assert ref in vdis[vbd["VDI"]]["VBDs"]
    assert any(len(r["VBDs"]) > 1 for r in vms.values()), "some VMs have several disks"
    for ref, app in apps.items():
        for vm in app["VMs"]:
            assert vms[vm]["appliance"] == ref
    # get_by_uuid and get_by_name_label agree with the records
    ref, rec = next(iter(vms.items()))
    assert x.VM.get_by_uuid(rec["uuid"]) == ref
    assert ref in x.VM.get_by_name_label(rec["name_label"])


def test_async_start_then_poll_the_task(session):
    x = session.xenapi
    vm = halted_vm(session)
    task = x.Async.VM.start(vm, False, False)
    assert task.startswith("OpaqueRef:")
    record = wait_task(session, task)
    assert record["status"] == "success"
    assert record["progress"] == 1.0
    assert x.VM.get_power_state(vm) == "Running"
    x.task.destroy(task)
    x.VM.hard_shutdown(vm)
    assert x.VM.get_power_state(vm) == "Halted"


def test_async_clone_result_is_an_xmlrpc_fragment(session):
    x = session.xenapi
    vm = halted_vm(session)
    task = x.Async.VM.clone(vm, "pytest-clone")
    record = wait_task(session, task)
    assert record["status"] == "success", record["error_info"]
    document = "<?xml version='1.0'?><methodResponse><params><param>%s</param></params></methodResponse>"
    (clone,), _ = xmlrpc.client.loads(document % record["result"])
    assert x.VM.get_name_label(clone) == "pytest-clone"
    assert len(x.VM.get_VBDs(clone)) == len(x.VM.get_VBDs(vm))
    x.task.destroy(task)
    x.VM.destroy(clone)


def test_failure_carries_the_error_description(session):
    x = session.xenapi
    vm = halted_vm(session)
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.clean_shutdown(vm)
    assert err.value.details == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.get_record("OpaqueRef:bogus")
    assert err.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:bogus"]
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.get_by_uuid("no-such-uuid")
    assert err.value.details == ["UUID_INVALID", "VM", "no-such-uuid"]
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.fly(vm)
    assert err.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.fly"]
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.get_record()
    assert err.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]


def test_failed_async_task_has_error_info(session):
    x = session.xenapi
    vm = halted_vm(session)
    record = wait_task(session, x.Async.VM.clean_shutdown(vm))
    assert record["status"] == "failure"
    assert record["error_info"] == ["VM_BAD_POWER_STATE", vm, "running", "halted"]


def test_set_and_map_updates(session):
    x = session.xenapi
    vm = halted_vm(session)
    x.VM.set_name_description(vm, "changed by pytest")
    assert x.VM.get_name_description(vm) == "changed by pytest"
    x.VM.add_to_other_config(vm, "pytest", "1")
    with pytest.raises(XenAPI.Failure) as err:
        x.VM.add_to_other_config(vm, "pytest", "2")
    assert err.value.details[0] == "MAP_DUPLICATE_KEY"
    x.VM.remove_from_other_config(vm, "pytest")
    assert "pytest" not in x.VM.get_other_config(vm)
    # a large int passed as a string, as XenAPI.py users must
    x.VM.set_memory_static_max(vm, str(8 << 30))
    assert x.VM.get_memory_static_max(vm) == str(8 << 30)


def test_get_all_records_where_filters_on_database_columns(session):
    x = session.xenapi
    everything = x.VM.get_all_records()
    running = x.VM.get_all_records_where('field "power_state" = "Running"')
    assert running and set(running) == {r for r, rec in everything.items() if rec["power_state"] == "Running"}
    # columns are the database's: name_label is stored as name__label
    vm = halted_vm(session)
    label = everything[vm]["name_label"]
    named = x.VM.get_all_records_where('field "name__label" = "%s" and not field "is_a_template" = "true"' % label)
    assert vm in named and named[vm]["uuid"] == everything[vm]["uuid"]
    assert x.VM.get_all_records_where("false") == {}
    with pytest.raises(XenAPI.Failure):
        x.VM.get_all_records_where('field "power_state" = ')


def test_legacy_event_register_and_next(session):
    x = session.xenapi
    with pytest.raises(XenAPI.Failure) as err:
        x.event.next()
    assert err.value.details[0] == "SESSION_NOT_REGISTERED"
    x.event.register(["vm"])
    vm = halted_vm(session)
    x.VM.set_name_description(vm, "seen by event.next")
    events = x.event.next()
    assert any(e["class"] == "vm" and e["ref"] == vm and e["operation"] == "mod" for e in events)
    x.event.unregister(["vm"])


def test_event_from_sees_a_change(session):
    x = session.xenapi
    vm = halted_vm(session)
    token = x.event.inject("pool", x.pool.get_all()[0])
    x.VM.set_name_description(vm, "event test")
    batch = getattr(x.event, "from")(["vm"], token, 5.0)
    refs = [e["ref"] for e in batch["events"]]
    assert vm in refs
    event = next(e for e in batch["events"] if e["ref"] == vm)
    assert event["operation"] == "mod"
    assert event["snapshot"]["name_description"] == "event test"
    assert re.fullmatch(r"\d{20},\d{20}", batch["token"])
    assert int(batch["valid_ref_counts"]["vm"]) >= 20


def test_system_list_methods(demo):
    methods = xmlrpc.client.ServerProxy(demo.urls["primary"]).system.listMethods()
    # xapi answers introspection with the bare list (no Status/Value envelope), without a session
    assert isinstance(methods, list)
    assert "VM.get_all_records" in methods
    assert "Async.VM.start" in methods
    assert "Async.VM.get_record" not in methods


def _post(url, path, body, content_type):
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": content_type})
    return urllib.request.urlopen(request, timeout=10)


def test_json_rpc_shares_the_xmlrpc_session(demo, session):
    body = json.dumps({"jsonrpc": "2.0", "method": "VM.get_all", "params": [session.handle], "id": "a"})
    with _post(demo.urls["primary"], "/jsonrpc", body.encode(), "application/json") as response:
        answer = json.loads(response.read())
    assert answer["id"] == "a"
    assert set(answer["result"]) == set(session.xenapi.VM.get_all())
    body = json.dumps({"method": "VM.get_record", "params": [session.handle, "OpaqueRef:x"], "id": 7})
    with _post(demo.urls["primary"], "/jsonrpc", body.encode(), "application/json") as response:
        answer = json.loads(response.read())
    assert answer["result"] is None
    assert answer["error"] == ["HANDLE_INVALID", "VM", "OpaqueRef:x"]


def test_unparsable_request_gets_http_500_html(demo):
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(demo.urls["primary"], "/", b"<methodCall><oops", "text/xml")
    assert err.value.code == 500
    assert b"<html>" in err.value.read()


def test_pools_are_separate(demo):
    primary = XenAPI.Session(demo.urls["primary"])
    primary.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
    dr = XenAPI.Session(demo.urls["dr"])
    dr.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
    assert primary.xenapi.pool.get_all() != dr.xenapi.pool.get_all()
    assert len(dr.xenapi.host.get_all()) == 1
    # a session of one pool is unknown to the other
    raw = xmlrpc.client.ServerProxy(demo.urls["dr"])
    assert raw.VM.get_all(primary.handle)["ErrorDescription"][0] == "SESSION_INVALID"


def test_vapp_starts_in_order(session):
    x = session.xenapi
    app = next(r for r, rec in x.VM_appliance.get_all_records().items() if rec["name_label"] == "erp")
    x.VM_appliance.hard_shutdown(app)
    vms = x.VM_appliance.get_VMs(app)
    assert all(x.VM.get_power_state(vm) == "Halted" for vm in vms)
    x.VM_appliance.start(app, True)
    assert all(x.VM.get_power_state(vm) == "Paused" for vm in vms)
    x.VM_appliance.hard_shutdown(app)


def test_tls_fingerprint_matches_the_served_certificate(start_sim):
    sim = start_sim("--tls")
    assert sim.url.startswith("https://")
    assert re.fullmatch(r"[0-9a-f]{64}", sim.fingerprint)
    host, port = sim.url[len("https://"):].rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert hashlib.sha256(der).hexdigest() == sim.fingerprint
    s = XenAPI.Session(sim.url, ignore_ssl=True)
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest")
    assert len(s.xenapi.host.get_all()) == 1
    s.xenapi.session.logout()
