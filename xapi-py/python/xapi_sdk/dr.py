"""The DR engine of xapi-rs: recover a site from the pool metadata replicated to mirrored
storage.

    import xapi_sdk
    from xapi_sdk import dr

    primary = xapi_sdk.Session(primary_url); primary.login_with_password("root", pw)
    dr.set_replication(primary, [replicated_sr_uuid])       # before the disaster

    recovery = xapi_sdk.Session(dr_url); recovery.login_with_password("root", pw)
    storage = dr.attach_storage(recovery, "lvmoiscsi", {"target": …, "targetIQN": …})
    copies = dr.find_copies(recovery)
    plan = dr.plan(recovery, copies, mode="test_failover", names=["erp", "mail"])
    print(plan.to_json())                                   # every pre-check, reviewable
    run = dr.Run(recovery, plan, storage=storage, apply_fixes=True)
    report = run.execute(on_progress=print)
    run.cleanup()                                           # a test leaves the pool as it was

Every call blocks with the GIL released; Ctrl-C raises ``KeyboardInterrupt`` and drops the
operation at its next step (a run's journal, when given, says how far it got, and a new
``Run`` with the same journal continues it). Reports and events are dicts; errors of the
engine raise :class:`xapi_sdk.XapiError` (a run's carries the report so far in ``.report``).
``session`` is a logged-in :class:`xapi_sdk.Session`.
"""

from __future__ import annotations

import os

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from xapi_sdk import _xapi_sdk
from xapi_sdk._xapi_sdk import MetadataCopy, Plan, Run, Storage
from xapi_sdk.session import Session

__all__ = [
    "MetadataCopy",
    "Plan",
    "Run",
    "Storage",
    "attach_storage",
    "find_copies",
    "plan",
    "run",
    "set_replication",
]


def set_replication(session: Session, sr_uuids: Sequence[str]) -> dict[str, Any]:
    """Replicate ``session``'s pool metadata to the SRs of ``sr_uuids`` (and to no other SR);
    ``{"enabled", "disabled", "unchanged"}``, lists of SR UUIDs."""
    return _xapi_sdk.dr_set_replication(session, list(sr_uuids))


def attach_storage(
    session: Session,
    sr_type: str,
    device_config: Mapping[str, str],
    sr_uuids: Sequence[str] | None = None,
) -> Storage:
    """Probe the mirrored LUNs behind ``device_config`` (``sr_type`` ``"lvmoiscsi"`` or
    ``"lvmohba"``) from the recovery pool and introduce the SRs found (those of ``sr_uuids``
    when given) with a ``DR_task``, so that :func:`find_copies` can read their metadata."""
    return _xapi_sdk.dr_attach_storage(
        session, sr_type, dict(device_config), None if sr_uuids is None else list(sr_uuids)
    )


def find_copies(session: Session) -> list[MetadataCopy]:
    """Every copy of metadata ``session``'s pool sees on its attached SRs, read through its
    API."""
    return _xapi_sdk.dr_find_copies(session)


def plan(
    session: Session,
    copies: Sequence[MetadataCopy],
    *,
    mode: Literal["failover", "failback", "test_failover"] = "failover",
    names: Sequence[str] | None = None,
) -> Plan:
    """Reconcile ``copies`` (the newest copy of each VM and vApp wins) and plan a recovery
    into ``session``'s pool of the vApps and VMs of ``names`` (names or UUIDs; everything when
    ``None``), with every pre-check. A test failover starts the VMs paused on an isolated
    network."""
    return _xapi_sdk.dr_plan(
        session, list(copies), mode, None if names is None else list(names)
    )


def run(
    session: Session,
    plan: Plan,
    *,
    storage: Storage | None = None,
    apply_fixes: bool = False,
    force: bool = False,
    journal: str | os.PathLike[str] | None = None,
    on_progress: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Run ``plan`` on ``session``'s pool (``Run(...).execute(on_progress=…)``); the report.
    For a test failover, keep the :class:`Run` to call ``cleanup()`` afterwards."""
    return Run(
        session, plan, storage=storage, apply_fixes=apply_fixes, force=force, journal=journal
    ).execute(on_progress=on_progress)
