"""Backup repositories on S3-compatible storage through xapi_sdk.backup, against SeaweedFS on
loopback (the `seaweedfs` fixture) and the simulator: a backup listed, verified, exported as an
XVA, restored with its disks byte for byte, forgotten and pruned; encryption; and the rules of the `s3_*`
arguments, which never show the secret."""

import hashlib
import urllib.request

import pytest

import xapi_sdk
from xapi_sdk import backup
from xapi_sim_fixtures import PASSWORD

#: The simulator's VM backed up here (one 10 MiB disk).
VM = "test-vm"


@pytest.fixture()
def primary(demo):
    session = xapi_sdk.Session(demo.urls["primary"])
    session.login_with_password("root", PASSWORD, "1.0", "xapi-py S3 tests")
    yield session
    session.logout()


@pytest.fixture()
def no_aws_env(monkeypatch):
    """No S3 setting from the environment: only what a test passes."""
    for var in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]:
        monkeypatch.delenv(var, raising=False)


def disks(session, vm):
    """The VDIs of the VM's disk VBDs, in device order."""
    vbds = [session.vbd.get_record(vbd) for vbd in session.vm.get_VBDs(vm)]
    return [vbd.VDI for vbd in sorted(vbds, key=lambda v: v.userdevice) if vbd.type.value == "Disk"]


def disk_digest(url, session, vdi):
    """SHA-256 of the disk's raw bytes, read from the pool's `/export_raw_vdi`."""
    digest = hashlib.sha256()
    query = f"session_id={session.ref.opaque}&vdi={vdi.opaque}&format=raw"
    with urllib.request.urlopen(f"{url}/export_raw_vdi?{query}", timeout=60) as response:
        while block := response.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_backup_list_verify_export_restore_and_prune_on_s3(
    demo, primary, seaweedfs, tmp_path, monkeypatch
):
    url = demo.urls["primary"]
    location = seaweedfs.location()
    repo = backup.Repository.create(location, **seaweedfs.options())
    assert repo.location == location
    assert not repo.is_encrypted
    assert repr(repo) == f"<xapi_sdk.backup.Repository {location}>"
    with pytest.raises(ValueError, match="use location"):
        repo.path

    report = backup.backup(primary, repo, vms=[VM])
    [done] = report["vms"]
    assert done["outcome"] == "done", done
    point = done["restore_point"]

    # opened again by another client, its settings from the usual environment variables
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.SECRET_KEY)
    again = backup.Repository.open(location + "/", s3_allow_http=True)
    assert again.location == location
    [listed] = again.list(kind="vm")
    assert listed["id"] == point and listed["vm"]["name_label"] == VM
    checked = again.verify(read_data=True)
    assert checked["problems"] == [] and checked["restore_points"] == 1
    assert checked["chunks_read"] > 0

    # a standard XVA, read back into a local repository with every chunk checked
    xva = tmp_path / "test-vm.xva"
    assert backup.export_xva(again, point, xva) == xva.stat().st_size > 0
    local = backup.Repository.create(tmp_path / "local")
    imported = backup.import_xva(local, xva)
    assert local.verify([imported["id"]])["problems"] == []

    # restored from S3, the disks are the source's byte for byte
    [source] = primary.vm.get_by_name_label(VM)
    restored = backup.restore(primary, again, point, name=f"{VM} from S3")
    vm = xapi_sdk.Ref(restored["vm"])
    try:
        assert primary.vm.get_name_label(vm) == f"{VM} from S3"
        source_disks, restored_disks = disks(primary, source), disks(primary, vm)
        assert len(restored_disks) == len(source_disks) == 1
        for theirs, ours in zip(source_disks, restored_disks):
            assert ours != theirs
            assert disk_digest(url, primary, ours) == disk_digest(url, primary, theirs)
    finally:
        restored_disks = disks(primary, vm)
        primary.vm.destroy(vm)
        for vdi in restored_disks:
            primary.vdi.destroy(vdi)

    # forgotten, then pruned without a grace period: its chunks are deleted from the bucket
    again.forget([point])
    assert again.list() == []
    pruned = again.prune(grace_hours=0)
    assert pruned["deleted_chunks"] > 0 and pruned["deleted_bytes"] > 0
    assert again.verify()["problems"] == []


def test_encrypted_s3_repository_needs_its_key(primary, seaweedfs, tmp_path):
    location = seaweedfs.location()
    key = tmp_path / "repo.key"
    repo = backup.Repository.create(location, encrypt_key_file=key, **seaweedfs.options())
    assert repo.is_encrypted
    backup.backup(primary, repo, vms=[VM])
    assert len(backup.Repository.open(location, key, **seaweedfs.options()).list()) == 1
    with pytest.raises(xapi_sdk.XapiError):
        backup.Repository.open(location, **seaweedfs.options())


def test_wrong_s3_credentials_fail_without_showing_the_secret(seaweedfs, no_aws_env):
    location = seaweedfs.location()
    backup.Repository.create(location, **seaweedfs.options())
    wrong = "wrong-secret-do-not-show"
    options = dict(seaweedfs.options(), s3_secret_access_key=wrong)
    with pytest.raises(xapi_sdk.XapiError) as refused:
        backup.Repository.open(location, **options)
    assert wrong not in str(refused.value)
    with pytest.raises(xapi_sdk.XapiError, match=r"^s3://repo/[0-9a-f]+: no repository at"):
        backup.Repository.open(seaweedfs.location(), **seaweedfs.options())


def test_s3_arguments_are_checked_before_any_request(no_aws_env, tmp_path, monkeypatch):
    secret = "s3-secret-never-shown"
    given = {"s3_access_key_id": "id", "s3_secret_access_key": secret}

    with pytest.raises(ValueError, match=r"^s3://bucket/p: no S3 access key id: pass "
                       r"s3_access_key_id= or set AWS_ACCESS_KEY_ID$"):
        backup.Repository.open("s3://bucket/p/")
    with pytest.raises(ValueError, match="set AWS_SECRET_ACCESS_KEY"):
        backup.Repository.open("s3://bucket/p", s3_access_key_id="id")
    with pytest.raises(ValueError, match=r"^s3://: no bucket: use s3://BUCKET/PREFIX$"):
        backup.Repository.create("s3://", **given)

    # plain http only when the caller says so, whether the endpoint is given or in the env
    with pytest.raises(ValueError, match="plain http.*s3_allow_http=True") as refused:
        backup.Repository.create("s3://bucket/p", s3_endpoint="http://127.0.0.1:9", **given)
    assert secret not in str(refused.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="plain http"):
        backup.Repository.open("s3://bucket/p", **given)

    # the s3_* arguments are for S3 locations; other URLs are not directories
    with pytest.raises(ValueError, match="s3_\\* arguments"):
        backup.Repository.create(tmp_path / "repo", s3_region="eu-west-1")
    assert not (tmp_path / "repo").exists()
    with pytest.raises(ValueError, match="local directory or s3://"):
        backup.Repository.create("gs://bucket/p")
    # a local path is a directory, as before
    local = backup.Repository.create(str(tmp_path / "local"))
    assert local.path == tmp_path / "local" and local.location == str(tmp_path / "local")
