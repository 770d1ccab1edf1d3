"""`GET /host_backup` read with urllib and Python's tarfile, then `PUT /host_restore`: the
backup is a gzip'd tar of the simulated dom0 naming the host, and the restore accepts it and
refuses a damaged copy with RESTORE_SCRIPT_FAILED."""

import io
import tarfile
import urllib.request

import pytest
import XenAPI

from conftest import PASSWORD


@pytest.fixture()
def session(demo):
    s = XenAPI.Session(demo.urls["primary"])
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest host backup")
    yield s
    s.xenapi.session.logout()


def put(url, body):
    request = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        return response.headers["task-id"]


def test_host_backup_is_a_tar_of_dom0(demo, session):
    url = f"{demo.urls['primary']}/host_backup?session_id={session._session}"
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.headers["Content-Length"] is None
        task = response.headers["task-id"]
        body = response.read()
    assert session.xenapi.task.get_status(task) == "success"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert tar.getnames() == [
            "etc/xensource-inventory",
            "etc/xensource/pool.conf",
            "etc/hostname",
            "var/lib/xcp/state.db",
        ]
        inventory = tar.extractfile("etc/xensource-inventory").read().decode()
        state_db = tar.extractfile("var/lib/xcp/state.db").read().decode()
    pool = session.xenapi.pool.get_all()[0]
    master = session.xenapi.pool.get_master(pool)
    host_uuid = session.xenapi.host.get_uuid(master)
    assert f"INSTALLATION_UUID='{host_uuid}'" in inventory.splitlines()
    assert session.xenapi.pool.get_uuid(pool) in state_db

    restore = f"{demo.urls['primary']}/host_restore?session_id={session._session}"
    assert session.xenapi.task.get_status(put(restore, body)) == "success"
    task = put(restore, body[: len(body) // 2])
    assert session.xenapi.task.get_status(task) == "failure"
    assert session.xenapi.task.get_error_info(task)[0] == "RESTORE_SCRIPT_FAILED"
