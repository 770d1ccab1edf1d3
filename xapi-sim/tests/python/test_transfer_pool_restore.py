"""`GET /pool/xmldbdump` then `PUT /pool/xmldbdump` with urllib, driven with the official
XenAPI client: the restore undoes a change made after the dump and ends the old session."""

import urllib.request
import xmlrpc.client

import XenAPI

from conftest import PASSWORD


def login(url):
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest pool restore")
    return session


def test_restore_undoes_a_rename_and_ends_the_session(start_sim):
    sim = start_sim("--scenario", "demo", "--clock-speed", "1000")
    url = sim.urls["primary"]
    session = login(url)
    vm = session.xenapi.VM.get_by_name_label("legacy-crm")[0]
    with urllib.request.urlopen(
        f"{url}/pool/xmldbdump?session_id={session._session}", timeout=60
    ) as response:
        dump = response.read()
    assert dump.startswith(b"<?xml")
    session.xenapi.VM.set_name_label(vm, "renamed after the dump")

    request = urllib.request.Request(
        f"{url}/pool/xmldbdump?session_id={session._session}", data=dump, method="PUT"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        assert response.headers["task-id"].startswith("OpaqueRef:")
        response.read()

    # the old session reference is gone (XenAPI.Session would silently log in again)
    raw = xmlrpc.client.ServerProxy(url).VM.get_name_label(session._session, vm)
    assert raw["Status"] == "Failure"
    assert raw["ErrorDescription"][0] == "SESSION_INVALID"
    again = login(url)
    assert again.xenapi.VM.get_name_label(vm) == "legacy-crm"
    again.xenapi.session.logout()
