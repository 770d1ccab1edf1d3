"""The engines through xapi_sdk against the simulator: backups into a local repository and
restores from it (xapi_sdk.backup), DR plans and runs (xapi_sdk.dr)."""

import pytest

import xapi_sdk
from xapi_sdk import backup
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
