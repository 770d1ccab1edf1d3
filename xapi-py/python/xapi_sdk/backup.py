"""The backup engine of xapi-rs: VMs kept as data in a deduplicating repository.

    import xapi_sdk
    from xapi_sdk import backup

    repo = backup.Repository.create("/srv/backups")          # or Repository.open(...)
    with xapi_sdk.Session("https://pool-master") as session:
        session.login_with_password("root", password)
        report = backup.backup(session, repo, tags=["nightly"], on_progress=print)
        point = report["vms"][0]["restore_point"]
        restored = backup.restore(session, repo, point, name="restored")

The repository is a local directory or S3-compatible storage::

    repo = backup.Repository.open(
        "s3://backups/pool1",                     # bucket "backups", prefix "pool1"
        s3_endpoint="https://s3.example.com",     # else AWS_ENDPOINT_URL, else AWS itself
        s3_region="eu-west-1",                    # else AWS_REGION, else "us-east-1"
        s3_access_key_id=key_id,                  # else AWS_ACCESS_KEY_ID
        s3_secret_access_key=secret,              # else AWS_SECRET_ACCESS_KEY
    )

A plain ``http://`` endpoint needs ``s3_allow_http=True`` (a trusted network or loopback
only). Many machines may back up into one S3 repository at once; ``prune`` takes a lock.

Every function blocks with the GIL released, and Ctrl-C raises ``KeyboardInterrupt``.
Reports, restore points (manifests) and progress events are plain dicts: the JSON form of the
engine's reports. ``session`` is a logged-in :class:`xapi_sdk.Session`; the engines use its
session without logging it out.

Errors: XAPI's failures raise :class:`xapi_sdk.Failure` (and transport errors their own
classes); the repository's and the engine's other errors raise :class:`xapi_sdk.XapiError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from xapi_sdk import _xapi_sdk
from xapi_sdk._xapi_sdk import Ref, Repository
from xapi_sdk.session import Session

__all__ = [
    "Repository",
    "backup",
    "backup_host",
    "backup_pool_metadata",
    "export_xva",
    "import_xva",
    "restore",
    "restore_host",
    "restore_pool_metadata",
]

def backup(
    session: Session,
    repo: Repository,
    *,
    all: bool = False,
    vms: Sequence[str] = (),
    tags: Sequence[str] = (),
    vapps: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
    concurrency: int = 4,
    job_id: str | None = None,
    on_progress: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Back the selected VMs up into ``repo``, ``concurrency`` at a time.

    The selection: ``all`` VMs, or those named (by name or UUID) in ``vms``, tagged with one of
    ``tags``, members of one of ``vapps``; minus ``exclude``; only shard ``(k, n)`` of them when
    given (a stable hash of the UUID: n workers split a pool). Each VM is snapshotted, exported,
    stored and its snapshot destroyed.

    ``on_progress`` is called on this thread with each event, a dict whose ``"event"`` says
    which: ``"started"`` (``name_label``) when a VM starts; ``"progress"`` (``uuid``,
    ``name_label``, ``phase``, ``attempt``, ``bytes_read``, ``position``, ``total``, ``rate``
    in bytes/s, ``eta_seconds`` or ``None``) as a VM's export moves; ``"job"`` (``vms_done``,
    ``vms_total``, ``bytes_read``, ``position``, ``total``, ``rate``, ``eta_seconds``) for the
    whole job; ``"finished"`` (``name_label``, ``uuid``, ``outcome``: ``"done"`` |
    ``"failed"`` | ``"cancelled"``, ``seconds``, ``restore_point``, sizes, ``warnings``, …)
    when a VM ends. An exception it raises stops the job and propagates.

    Returns the job's report: ``{"id", "vms": [{"name_label", "outcome", "restore_point", …}],
    "seconds", "bytes_read", "new_bytes", "max_in_flight"}``. A VM that failed is reported
    with ``"outcome": "failed"`` and its ``"error"``; the job itself still returns.

    Stopping the job early (Ctrl-C, or an exception in ``on_progress``) cancels it and waits
    for it to clean up (up to 60 s): the XAPI task of a VM being exported is cancelled and its
    snapshot destroyed; restore points already written stay, the one being written is never
    visible (its manifest comes last). Then the exception propagates.
    """
    return _xapi_sdk.backup_run(
        session,
        repo,
        all=all,
        vms=list(vms),
        tags=list(tags),
        vapps=list(vapps),
        exclude=list(exclude),
        shard=shard,
        concurrency=concurrency,
        job_id=job_id,
        on_progress=on_progress,
    )


def restore(
    session: Session,
    repo: Repository,
    id: str,
    *,
    name: str | None = None,
    sr: Ref | str | None = None,
    overwrite: bool = False,
    start: bool = False,
) -> dict[str, Any]:
    """Restore the VM restore point ``id`` on ``session``'s pool.

    Without ``overwrite`` the VM comes back as a new VM, with new UUIDs and MAC addresses, named
    ``name`` (default: the source VM's), its disks on ``sr`` (a reference; default: the pool's
    default SR). With ``overwrite=True`` it replaces the source VM (which must be halted) and
    keeps its UUID. ``start`` starts it afterwards.

    Returns ``{"vm": "OpaqueRef:…", "uuid", "started", "replaced_disks_removed",
    "replaced_disks_kept"}``.
    """
    return _xapi_sdk.backup_restore(
        session, repo, id, name=name, sr=sr, overwrite=overwrite, start=start
    )


def export_xva(repo: Repository, id: str, path: str | os.PathLike[str]) -> int:
    """Write the VM restore point ``id`` as an XVA file at ``path`` (for ``xe vm-import`` or
    :func:`import_xva`); the bytes written. A file cut short by an error is removed."""
    return _xapi_sdk.backup_export_xva(repo, id, path)


def import_xva(repo: Repository, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Store the XVA file at ``path`` (from ``xe vm-export``) in ``repo`` as a VM restore
    point, every chunk checked as it is read; the restore point (a manifest dict, its id in
    ``"id"``)."""
    return _xapi_sdk.backup_import_xva(repo, path)


def backup_pool_metadata(session: Session, repo: Repository) -> dict[str, Any]:
    """Back up the pool database of ``session``'s pool; the restore point (a manifest dict)."""
    return _xapi_sdk.backup_pool_metadata(session, repo)


def restore_pool_metadata(
    session: Session, repo: Repository, id: str, *, dry_run_only: bool = False
) -> dict[str, Any]:
    """Restore the pool-metadata restore point ``id`` on ``session``'s pool: xapi's dry run,
    then (unless ``dry_run_only``) the restore, after which xapi restarts and ``session`` is no
    longer valid. Returns ``{"dry_run_passed", "restored"}``."""
    return _xapi_sdk.restore_pool_metadata(
        session, repo, id, dry_run_only=dry_run_only
    )


def backup_host(session: Session, repo: Repository) -> dict[str, Any]:
    """Back up ``session``'s host (the pool's master); the restore point (a manifest dict)."""
    return _xapi_sdk.backup_host(session, repo)


def restore_host(session: Session, repo: Repository, id: str) -> None:
    """Restore the host restore point ``id`` onto ``session``'s host."""
    _xapi_sdk.restore_host(session, repo, id)
