"""The Rust examples of xapi-core run against the simulator and print what it holds."""

import os
import pathlib
import subprocess

import XenAPI

WORKSPACE = pathlib.Path(__file__).resolve().parents[3]


def _example(name: str) -> pathlib.Path:
    subprocess.run(
        ["cargo", "build", "-q", "-p", "xapi-core", "--example", name], cwd=WORKSPACE, check=True
    )
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", WORKSPACE / "target"))
    if not target.is_absolute():
        target = WORKSPACE / target
    return target / "debug" / "examples" / name


def test_list_vms_prints_every_guest_with_its_vapp_and_disks(demo):
    url = demo.urls["primary"]
    out = subprocess.run(
        [str(_example("list_vms"))],
        env={**os.environ, "XAPI_URL": url, "XAPI_PASSWORD": "xapi-sim"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout

    # What the official client sees is what the example must print.
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "xapi-sim")
    try:
        vms = session.xenapi.VM.get_all_records()
        apps = session.xenapi.VM_appliance.get_all_records()
    finally:
        session.xenapi.session.logout()
    guests = [
        vm
        for vm in vms.values()
        if not vm["is_a_template"] and not vm["is_control_domain"] and not vm["is_a_snapshot"]
    ]
    assert guests, "the demo pool has guests"
    lines = out.splitlines()
    vm_lines = [line for line in lines if not line.startswith(" ")]
    assert len(vm_lines) == len(guests)
    for vm in guests:
        line = next(l for l in vm_lines if l.split()[0] == vm["name_label"])
        assert vm["power_state"] in line
        if vm["appliance"] != "OpaqueRef:NULL":
            assert f"vApp: {apps[vm['appliance']]['name_label']}" in line
    disk_lines = [line for line in lines if line.strip().startswith("disk")]
    assert len(disk_lines) >= len(guests)
    assert all(" on SR " in line for line in disk_lines)
