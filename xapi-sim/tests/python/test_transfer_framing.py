"""Data-plane response framing as urllib sees it: `/export` and `/export_raw_vdi` answer
HTTP/1.0 with `Connection: close` and no `Content-Length`, and urllib still reads the whole
body; `/export_metadata` carries a `Content-Length`."""

import io
import tarfile
import urllib.request

import pytest
import XenAPI

from conftest import PASSWORD


@pytest.fixture()
def session(demo):
    s = XenAPI.Session(demo.urls["primary"])
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "pytest framing")
    yield s
    s.xenapi.session.logout()


def vm_with_disks(session):
    for ref, rec in session.xenapi.VM.get_all_records().items():
        if not rec["is_a_template"] and rec["power_state"] == "Halted" and rec["VBDs"]:
            disks = [
                session.xenapi.VBD.get_VDI(vbd)
                for vbd in rec["VBDs"]
                if session.xenapi.VBD.get_type(vbd) == "Disk"
            ]
            if disks:
                return ref, disks
    raise AssertionError("the demo has a halted VM with a disk")


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.version, response.headers, response.read()


def test_export_is_close_delimited_and_read_to_the_end(demo, session):
    vm, _ = vm_with_disks(session)
    url = f"{demo.urls['primary']}/export?session_id={session._session}&ref={vm}"
    version, headers, body = get(url)
    assert version == 10
    assert headers["Connection"] == "close"
    assert headers["Content-Length"] is None
    assert headers["Transfer-Encoding"] is None
    tar = tarfile.open(fileobj=io.BytesIO(body), mode="r:")
    names = tar.getnames()
    assert names[0] == "ova.xml"
    assert len(names) > 1, "disk chunks follow ova.xml"
    task = headers["task-id"]
    assert session.xenapi.task.get_status(task) == "success"


def test_export_metadata_has_a_content_length(demo, session):
    vm, _ = vm_with_disks(session)
    url = f"{demo.urls['primary']}/export_metadata?session_id={session._session}&ref={vm}"
    _, headers, body = get(url)
    assert int(headers["Content-Length"]) == len(body)
    tar = tarfile.open(fileobj=io.BytesIO(body), mode="r:")
    assert tar.getnames() == ["ova.xml"]


def test_export_raw_vdi_is_close_delimited(demo, session):
    _, disks = vm_with_disks(session)
    vdi = disks[0]
    size = int(session.xenapi.VDI.get_virtual_size(vdi))
    url = (
        f"{demo.urls['primary']}/export_raw_vdi?session_id={session._session}"
        f"&vdi={vdi}&format=raw"
    )
    version, headers, body = get(url)
    assert version == 10
    assert headers["Connection"] == "close"
    assert headers["Content-Length"] is None
    assert len(body) == size
