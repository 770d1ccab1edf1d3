"""The engines through xapi_sdk against the simulator: backups into a local repository and
restores from it (xapi_sdk.backup), DR plans and runs (xapi_sdk.dr)."""

import os
import signal
import threading
import time
import urllib.request

import pytest

import xapi_sdk
from xapi_sdk import backup, dr
from xapi_sim_fixtures import PASSWORD


def login(url):
    session = xapi_sdk.Session(url)
    session.login_with_password("root", PASSWORD, "1.0", "xapi-py engine tests")
    return session


@pytest.fixture()
def primary(demo):
    session = login(demo.urls["primary"])
    yield session
    session.logout()


def fault(url, query):
    """Switch a fault of the simulator on (or `clear` them)."""
    request = urllib.request.Request(f"{url}/_sim/fault?{query}", method="POST")
    urllib.request.urlopen(request).read()


def vm_named(session, name):
    [ref] = session.vm.get_by_name_label(name)
    return ref, session.vm.get_record(ref)


def test_backup_and_restore_round_trip(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    assert not repo.is_encrypted
    events = []
    report = backup.backup(
        primary, repo, vms=["test-vm", "legacy-crm"], concurrency=2, on_progress=events.append
    )

    assert [vm["outcome"] for vm in report["vms"]] == ["done", "done"], report
    assert report["max_in_flight"] <= 2
    started = sorted(e["name_label"] for e in events if e["event"] == "started")
    finished = sorted(e["name_label"] for e in events if e["event"] == "finished")
    assert started == finished == ["legacy-crm", "test-vm"]
    source_ref, source = vm_named(primary, "test-vm")
    assert source.snapshots == [], "the backup's snapshot was left behind"

    points = repo.list(kind="vm")
    assert sorted(p["vm"]["name_label"] for p in points) == ["legacy-crm", "test-vm"]
    assert repo.list(kind="host") == []
    [point] = [p["id"] for p in points if p["vm"]["uuid"] == source.uuid]
    assert point in {vm["restore_point"] for vm in report["vms"]}
    whole = repo.verify()
    assert whole["problems"] == [] and whole["restore_points"] == 2
    one = repo.verify([point])
    assert one["problems"] == [] and one["chunks_read"] > 0

    restored = backup.restore(primary, repo, point, name="test-vm restored")
    ref = xapi_sdk.Ref(restored["vm"])
    record = primary.vm.get_record(ref)
    assert record.name_label == "test-vm restored"
    assert record.uuid == restored["uuid"] != source.uuid
    assert len(record.VBDs) == len(source.VBDs)
    assert restored["started"] is False
    primary.vm.destroy(ref)


def test_reopened_repository_lists_the_same_points(primary, tmp_path):
    backup.Repository.create(tmp_path / "repo")
    repo = backup.Repository.open(tmp_path / "repo")
    backup.backup(primary, repo, vms=["test-vm"])
    again = backup.Repository.open(tmp_path / "repo")
    assert [p["id"] for p in again.list()] == [p["id"] for p in repo.list()]
    with pytest.raises(xapi_sdk.XapiError):
        backup.Repository.open(tmp_path / "not-a-repo")


def test_encrypted_repository_needs_its_key(primary, tmp_path):
    key = tmp_path / "repo.key"
    repo = backup.Repository.create(tmp_path / "repo", encrypt_key_file=key)
    assert repo.is_encrypted
    backup.backup(primary, repo, vms=["test-vm"])
    assert len(backup.Repository.open(tmp_path / "repo", key_file=key).list()) == 1
    with pytest.raises(xapi_sdk.XapiError):
        backup.Repository.open(tmp_path / "repo")


class Stop(Exception):
    pass


def test_exception_in_a_progress_callback_stops_the_job(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    names = ["test-vm", "legacy-crm", "erp-reports", "backup-proxy"]

    def stop(event):
        raise Stop(event["name_label"])

    with pytest.raises(Stop):
        backup.backup(primary, repo, vms=names, concurrency=1, on_progress=stop)
    assert len(repo.list()) < len(names)


def test_ctrl_c_stops_a_backup_job(demo, primary, tmp_path):
    url = demo.urls["primary"]
    repo = backup.Repository.create(tmp_path / "repo")
    fault(url, "delay_ms=5000")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            backup.backup(primary, repo, vms=["test-vm"])
        # the job is cancelled, then waited for while it cleans up (each call delayed 5 s)
        assert time.monotonic() - started < 30.0
    finally:
        timer.cancel()
        fault(url, "clear")
    # stopped in the job's first call: nothing written, no snapshot taken
    assert repo.list() == []
    _, source = vm_named(primary, "test-vm")
    assert source.snapshots == []
    report = backup.backup(primary, repo, vms=["test-vm"])
    assert report["vms"][0]["outcome"] == "done"


def test_ctrl_c_during_an_export_cancels_it_and_leaves_no_snapshot(demo, primary, tmp_path):
    url = demo.urls["primary"]
    repo = backup.Repository.create(tmp_path / "repo")
    # the export stalls for 30 s (with keep-alives) once it has begun; Ctrl-C comes during it
    fault(url, "stall_export_ms=30000")
    phases = []

    def record(event):
        if event.get("event") == "progress":
            phases.append(event["phase"])

    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            backup.backup(primary, repo, vms=["test-vm"], on_progress=record)
        assert time.monotonic() - started < 20.0, "cancelled, not waited out"
    finally:
        timer.cancel()
        fault(url, "clear")
    assert "export" in phases, f"Ctrl-C came during the export: {phases}"
    # the engine cancelled its task and destroyed the snapshot before the call returned
    assert repo.list() == []
    _, source = vm_named(primary, "test-vm")
    assert source.snapshots == [], "the snapshot of the cancelled export was left"


def test_nothing_selected_is_refused(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    with pytest.raises(ValueError):
        backup.backup(primary, repo)


def test_xva_export_and_import(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    report = backup.backup(primary, repo, vms=["test-vm"])
    point = report["vms"][0]["restore_point"]
    xva = tmp_path / "test-vm.xva"
    written = backup.export_xva(repo, point, xva)
    assert written == xva.stat().st_size > 0

    other = backup.Repository.create(tmp_path / "other")
    imported = backup.import_xva(other, xva)
    [listed] = other.list(kind="vm")
    assert listed["id"] == imported["id"]
    assert imported["vm"]["name_label"] == "test-vm"
    assert other.verify([imported["id"]])["problems"] == []
    with pytest.raises(ValueError):
        backup.export_xva(repo, "no-such-point", tmp_path / "x.xva")


def test_forget_and_prune(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    backup.backup(primary, repo, vms=["test-vm"])
    backup.backup(primary, repo, vms=["test-vm"])
    assert len(repo.list()) == 2
    kept = repo.forget(keep_last=1)
    assert kept is not None
    [left] = repo.list()
    repo.forget([left["id"]])
    assert repo.list() == []
    pruned = repo.prune(grace_hours=0)
    assert isinstance(pruned, dict)
    with pytest.raises(ValueError):
        repo.forget()


def test_pool_metadata_and_host_backups(primary, tmp_path):
    repo = backup.Repository.create(tmp_path / "repo")
    dump = backup.backup_pool_metadata(primary, repo)
    assert dump["kind"] == "pool-metadata"
    [listed] = repo.list(kind="pool-metadata")
    assert listed["id"] == dump["id"]
    checked = backup.restore_pool_metadata(primary, repo, dump["id"], dry_run_only=True)
    assert checked == {"dry_run_passed": True, "restored": False}

    host = backup.backup_host(primary, repo)
    assert host["kind"] == "host"
    assert [p["id"] for p in repo.list(kind="host")] == [host["id"]]
    assert repo.verify()["problems"] == []


# --- DR: each test on a demo of its own (a failover changes the DR pool for good) ---

#: The demo's VMs and vApps on the replicated SR, mirrored to the DR pool.
REPLICATED = ["web-shop", "erp", "mail", "dns-1", "legacy-crm", "ldap"]
#: What the demo's mirror needs to be probed from the DR pool.
MIRROR = {"target": "192.0.2.20", "targetIQN": "iqn.2026-11.org.xapi-sim:dr-mirror"}
#: Classes whose records a test failover must leave exactly as they were.
KEPT = ["VM", "VM_appliance", "SR", "VDI", "VBD", "VIF", "PBD", "network", "DR_task", "pool"]


@pytest.fixture()
def replicating(start_sim):
    """A fresh demo whose primary replicates its metadata to the mirrored SR."""
    sim = start_sim("--scenario", "demo", "--clock-speed", "1000")
    primary = login(sim.urls["primary"])
    [sr] = [r for r in primary.sr.get_all_records().values() if r.name_label == "Replicated iSCSI (DR)"]
    change = dr.set_replication(primary, [sr.uuid])
    assert change["enabled"] == [sr.uuid]
    primary.logout()
    return sim


def every_record(url):
    import xapi_sdk.compat as XenAPI

    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "xapi-py engine tests")
    try:
        return {cls: getattr(session.xenapi, cls).get_all_records() for cls in KEPT}
    finally:
        session.xenapi.logout()


def test_test_failover_is_cleaned_up_to_the_records_it_started_from(replicating):
    url = replicating.urls["dr"]
    before = every_record(url)
    recovery = login(url)
    storage = dr.attach_storage(recovery, "lvmoiscsi", MIRROR)
    assert storage.sr_uuids
    copies = dr.find_copies(recovery)
    assert copies and all(c.generation > 0 for c in copies)
    plan = dr.plan(recovery, copies, mode="test_failover", names=REPLICATED)
    assert plan.mode == "test_failover" and plan.vms

    events = []
    run = dr.Run(recovery, plan, storage=storage, apply_fixes=True)
    report = run.execute(on_progress=events.append)
    assert report["error"] is None
    assert {e["event"] for e in events} >= {"phase", "recovered"}
    vms = recovery.vm.get_all_records().values()
    recovered = {vm.uuid: vm for vm in vms if not vm.is_a_snapshot}
    for planned in plan.vms:
        assert planned["uuid"] in recovered, planned["name_label"]
    assert any(vm.power_state.value == "Paused" for vm in recovered.values())

    cleaned = run.cleanup(on_progress=events.append)
    assert cleaned["journal"]["cleaned_up"] is True
    assert any(e.get("name") == "cleanup" for e in events)
    recovery.logout()
    assert every_record(url) == before


def test_failover_recovers_the_replicated_vms(replicating):
    url = replicating.urls["dr"]
    urllib.request.urlopen(urllib.request.Request(f"{url}/_sim/mirror?mode=broken", method="POST")).read()
    recovery = login(url)
    storage = dr.attach_storage(recovery, "lvmoiscsi", MIRROR)
    copies = dr.find_copies(recovery)
    plan = dr.plan(recovery, copies, mode="failover", names=REPLICATED)
    assert plan.mode == "failover"
    assert plan.target_pool == recovery.pool.get_record(recovery.pool.get_all()[0]).uuid
    again = dr.Plan.from_json(plan.to_json())
    assert again == plan and again.to_dict() == plan.to_dict()
    assert [vm["uuid"] for vm in again.vms] == [vm["uuid"] for vm in plan.vms]

    events = []
    report = dr.run(recovery, again, storage=storage, apply_fixes=True, on_progress=events.append)
    assert report["error"] is None and report["mode"] == "failover"
    started = [e for e in events if e["event"] == "started"]
    assert started
    vms = {vm.uuid: vm for vm in recovery.vm.get_all_records().values() if not vm.is_a_snapshot}
    for planned in plan.vms:
        assert planned["uuid"] in vms, planned["name_label"]
    running = {uuid for uuid, vm in vms.items() if vm.power_state.value == "Running"}
    vapps = {a.uuid for a in recovery.vm_appliance.get_all_records().values()}
    assert {e["uuid"] for e in started} <= running | vapps
    assert {e["uuid"] for e in started} & running, "a VM was started on its own"


def test_a_bad_plan_file_is_refused():
    with pytest.raises(ValueError):
        dr.Plan.from_json("{not json")


def test_a_test_failover_stopped_by_its_callback_still_cleans_up(replicating):
    url = replicating.urls["dr"]
    before = every_record(url)
    recovery = login(url)
    storage = dr.attach_storage(recovery, "lvmoiscsi", MIRROR)
    plan = dr.plan(recovery, dr.find_copies(recovery), mode="test_failover", names=REPLICATED)
    run = dr.Run(recovery, plan, storage=storage, apply_fixes=True)

    def stop_at_first_recovery(event):
        if event["event"] == "recovered":
            raise Stop(event["name_label"])

    with pytest.raises(Stop):
        run.execute(on_progress=stop_at_first_recovery)
    cleaned = run.cleanup()
    assert cleaned["journal"]["cleaned_up"] is True
    recovery.logout()
    assert every_record(url) == before


def test_ctrl_c_during_a_test_failover_leaves_what_its_cleanup_removes(replicating):
    url = replicating.urls["dr"]
    before = every_record(url)
    recovery = login(url)
    storage = dr.attach_storage(recovery, "lvmoiscsi", MIRROR)
    plan = dr.plan(recovery, dr.find_copies(recovery), mode="test_failover", names=REPLICATED)
    run = dr.Run(recovery, plan, storage=storage, apply_fixes=True)
    events = []
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))

    def slow_down(event):
        # after the first recovery every call hangs, and Ctrl-C comes during the next one
        events.append(event)
        if event["event"] == "recovered" and timer.ident is None:
            fault(url, "delay_ms=5000")
            timer.start()

    try:
        with pytest.raises(KeyboardInterrupt):
            run.execute(on_progress=slow_down)
    finally:
        timer.cancel()
        fault(url, "clear")
    assert any(e["event"] == "recovered" for e in events), "stopped after a recovery"
    cleaned = run.cleanup()
    assert cleaned["journal"]["cleaned_up"] is True
    recovery.logout()
    assert every_record(url) == before
