"""The native part of xapi_sdk (Rust, through pyo3)."""

import builtins
import os
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, final

__all__ = [
    "__version__",
    "Connection",
    "Ref",
    "register",
    "XapiError",
    "Failure",
    "TransportError",
    "TlsError",
    "TimeoutError",
    "DecodeError",
    "Repository",
    "backup_run",
    "backup_restore",
    "backup_export_xva",
    "backup_import_xva",
    "backup_pool_metadata",
    "restore_pool_metadata",
    "backup_host",
    "restore_host",
    "Storage",
    "MetadataCopy",
    "Plan",
    "Run",
    "dr_set_replication",
    "dr_attach_storage",
    "dr_find_copies",
    "dr_plan",
]

__version__: str

class XapiError(Exception):
    """Base class of the errors raised by xapi_sdk."""

class Failure(XapiError):
    """XAPI answered with an error."""

    code: str
    params: list[str]
    details: list[str]

class TransportError(XapiError):
    """The connection could not be opened, or broke."""

class TlsError(TransportError):
    """The TLS handshake failed or the server's certificate was refused."""

class TimeoutError(TransportError):
    """A connect or call deadline expired."""

class DecodeError(XapiError):
    """The server's answer could not be decoded."""

@final
class Connection:
    """One XAPI host reached over XML-RPC; values as xmlrpc.client gives them."""

    def __new__(
        cls,
        url: str,
        *,
        ignore_ssl: bool = False,
        fingerprint: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        protocol: str = "xmlrpc",
    ) -> Connection: ...
    @property
    def url(self) -> str: ...
    def call(self, method: str, params: tuple[Any, ...]) -> Any: ...
    def call_typed(
        self,
        method: str,
        params: tuple[Any, ...],
        param_types: tuple[str, ...],
        result_type: str,
    ) -> Any: ...
    def call_typed_async(
        self,
        method: str,
        params: tuple[Any, ...],
        param_types: tuple[str, ...],
        result_type: str,
    ) -> Awaitable[Any]: ...

@final
class Ref:
    """A reference to a XAPI object (``OpaqueRef:…``)."""

    NULL: ClassVar[Ref]
    def __new__(cls, opaque: str) -> Ref: ...
    @property
    def opaque(self) -> str: ...
    @property
    def is_null(self) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __bool__(self) -> bool: ...

def register(records: dict[str, Any], enums: dict[str, Any]) -> None:
    """Register the record and enum classes of the typed API (called by ``xapi_sdk.api``)."""

@final
class Repository:
    """A backup repository on a local directory or S3-compatible storage (see
    ``xapi_sdk.backup``).

    ``location`` is a directory or ``"s3://BUCKET/PREFIX"``. For S3 the keyword arguments say
    how to reach it, each with the usual environment variable as its fallback:
    ``s3_endpoint`` (``AWS_ENDPOINT_URL``, else AWS itself), ``s3_region`` (``AWS_REGION``,
    else ``"us-east-1"``), ``s3_access_key_id`` (``AWS_ACCESS_KEY_ID``) and
    ``s3_secret_access_key`` (``AWS_SECRET_ACCESS_KEY``). A plain ``http://`` endpoint is
    refused unless ``s3_allow_http=True`` (a trusted network or loopback only). The secret
    never appears in ``repr()`` or in an exception.
    """

    @staticmethod
    def create(
        location: str | os.PathLike[str],
        encrypt_key_file: str | os.PathLike[str] | None = None,
        *,
        s3_endpoint: str | None = None,
        s3_region: str | None = None,
        s3_access_key_id: str | None = None,
        s3_secret_access_key: str | None = None,
        s3_allow_http: bool = False,
    ) -> Repository:
        """Create a repository at ``location`` (a directory, made if missing, or
        ``"s3://BUCKET/PREFIX"``); encrypted with a new key written to ``encrypt_key_file``
        when given."""
    @staticmethod
    def open(
        location: str | os.PathLike[str],
        key_file: str | os.PathLike[str] | None = None,
        *,
        s3_endpoint: str | None = None,
        s3_region: str | None = None,
        s3_access_key_id: str | None = None,
        s3_secret_access_key: str | None = None,
        s3_allow_http: bool = False,
    ) -> Repository:
        """Open the repository at ``location`` (a directory or ``"s3://BUCKET/PREFIX"``;
        ``key_file``: the key of an encrypted one)."""
    @property
    def location(self) -> str:
        """Where the repository is: its directory, or ``s3://BUCKET/PREFIX``."""
    @property
    def path(self) -> pathlib.Path:
        """The repository's directory (``ValueError`` for an S3 repository: use
        ``location``)."""
    @property
    def is_encrypted(self) -> bool:
        """Whether every object is encrypted."""
    def list(self, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """The restore points (manifest dicts), of one kind (``"vm"``, ``"disk"``,
        ``"pool-metadata"``, ``"host"``) or all."""
    def verify(
        self, ids: builtins.list[str] | None = None, read_data: bool = False
    ) -> dict[str, Any]:
        """Check the whole repository, or read back every chunk of the restore points
        ``ids``; the report (``problems`` empty when all is well)."""
    def forget(
        self,
        ids: builtins.list[str] | None = None,
        *,
        kind: str = "vm",
        keep_last: int = 0,
        keep_daily: int = 0,
        keep_weekly: int = 0,
        keep_monthly: int = 0,
        dry_run: bool = False,
    ) -> dict[str, Any] | None:
        """Forget the restore points ``ids``, or those of ``kind`` the retention policy does
        not keep (the report); ``prune`` deletes their data later."""
    def prune(self, *, grace_hours: int = 24, dry_run: bool = False) -> dict[str, Any]:
        """Delete data unreferenced for ``grace_hours`` (across two prunes); the report."""

def backup_run(
    session: Any,
    repo: Repository,
    *,
    all: bool = False,
    vms: list[str] = ...,
    tags: list[str] = ...,
    vapps: list[str] = ...,
    exclude: list[str] = ...,
    shard: tuple[int, int] | None = None,
    concurrency: int = 4,
    job_id: str | None = None,
    on_progress: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Back up the selected VMs into ``repo`` (see ``xapi_sdk.backup.backup``)."""

def backup_restore(
    session: Any,
    repo: Repository,
    id: str,
    *,
    name: str | None = None,
    sr: Ref | str | None = None,
    overwrite: bool = False,
    start: bool = False,
) -> dict[str, Any]:
    """Restore a VM restore point (see ``xapi_sdk.backup.restore``)."""

def backup_export_xva(repo: Repository, id: str, path: str | os.PathLike[str]) -> int:
    """Write a VM restore point as an XVA file; the bytes written."""

def backup_import_xva(repo: Repository, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Store an XVA file as a VM restore point; its manifest."""

def backup_pool_metadata(session: Any, repo: Repository) -> dict[str, Any]:
    """Back up the pool database; the restore point's manifest."""

def restore_pool_metadata(
    session: Any, repo: Repository, id: str, *, dry_run_only: bool = False
) -> dict[str, Any]:
    """Restore a pool-metadata restore point."""

def backup_host(session: Any, repo: Repository) -> dict[str, Any]:
    """Back up the pool master; the restore point's manifest."""

def restore_host(session: Any, repo: Repository, id: str) -> None:
    """Restore a host restore point onto the session's host."""

@final
class Storage:
    """SRs a ``DR_task`` introduced in the recovery pool (see ``xapi_sdk.dr``)."""

    @property
    def sr_uuids(self) -> builtins.list[str]:
        """The UUIDs of the introduced SRs."""
    @property
    def dr_task(self) -> str:
        """The DR task's reference."""
    def destroy(self, session: Any) -> None:
        """``DR_task.destroy``: unplug and forget every SR the task still lists."""

@final
class MetadataCopy:
    """A copy of a pool's metadata, read from a metadata VDI."""

    @property
    def pool_uuid(self) -> str:
        """The UUID of the pool whose database this is."""
    @property
    def generation(self) -> int:
        """The database's generation (newest wins)."""

@final
class Plan:
    """A recovery plan with every pre-check; JSON in and out."""

    @staticmethod
    def from_json(text: str) -> Plan:
        """The plan read from its JSON form."""
    def to_json(self) -> str:
        """The plan's JSON form."""
    def to_dict(self) -> dict[str, Any]:
        """The plan as a dict."""
    @property
    def mode(self) -> str:
        """``"failover"``, ``"failback"`` or ``"test_failover"``."""
    @property
    def target_pool(self) -> str:
        """The UUID of the pool the plan recovers into."""
    @property
    def vms(self) -> builtins.list[dict[str, Any]]:
        """The VMs to recover."""
    @property
    def vapps(self) -> builtins.list[dict[str, Any]]:
        """The vApps to recover."""
    @property
    def checks(self) -> builtins.list[dict[str, Any]]:
        """Every pre-check."""
    @property
    def srs_to_introduce(self) -> builtins.list[str]:
        """The UUIDs of the SRs the run introduces."""
    @property
    def is_blocked(self) -> bool:
        """Whether a problem blocks the run (unless its fixes are applied)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Run:
    """A plan being run against the recovery pool."""

    def __new__(
        cls,
        session: Any,
        plan: Plan,
        *,
        storage: Storage | None = None,
        apply_fixes: bool = False,
        force: bool = False,
        journal: str | os.PathLike[str] | None = None,
    ) -> Run: ...
    def execute(
        self, *, on_progress: Callable[[dict[str, Any]], object] | None = None
    ) -> dict[str, Any]:
        """Run the plan; the report."""
    def cleanup(
        self, *, on_progress: Callable[[dict[str, Any]], object] | None = None
    ) -> dict[str, Any]:
        """Undo a test failover from its journal; the report."""

def dr_set_replication(session: Any, sr_uuids: list[str]) -> dict[str, Any]:
    """Set the SRs the pool's metadata is replicated to."""

def dr_attach_storage(
    session: Any,
    sr_type: str,
    device_config: dict[str, str],
    sr_uuids: list[str] | None = None,
) -> Storage:
    """Probe and introduce mirrored SRs in the recovery pool."""

def dr_find_copies(session: Any) -> list[MetadataCopy]:
    """Every copy of metadata the pool sees, read through its API."""

def dr_plan(
    session: Any,
    copies: list[MetadataCopy],
    mode: str = "failover",
    names: list[str] | None = None,
) -> Plan:
    """Reconcile and plan a recovery."""
