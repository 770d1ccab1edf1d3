//! The backup engine (xapi-backup) for Python: a repository on a local directory or
//! S3-compatible storage, backup jobs with progress, restores, XVA export and import,
//! pool-metadata and host backups.
//!
//! Reports, restore points and events reach Python as plain dicts: the serde JSON form of the
//! engine's types, loaded with `json.loads`. Every call runs on the module's runtime with the
//! GIL released (`blocking::run`).

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use xapi_backup::EngineError;
use xapi_backup::import::{RestoreOptions, restore_vm_outcome};
use xapi_backup::jobs::{JobEvent, JobOptions, Selection, run_job_with};
use xapi_backup::pool_metadata::PoolRestoreOptions;
use xapi_backup::repo::{
    CheckOptions, CreateOptions, Manifest, OpenOptions, PruneOptions, RestorePointKind,
    RetentionPolicy, Secret, VerifyReport,
};
use xapi_backup::xva_io::XvaExportOptions;
use xapi_core::client::SessionHandle;

use crate::blocking;
use crate::connection::Connection;
use crate::errors::{self, XapiError};
use crate::reference::Ref;
use crate::repo_location::{self, Location, S3Settings};

/// `json.loads`, looked up once.
static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A value of the engine as the Python value of its JSON form (dicts, lists, str, int,
/// float, bool, None).
pub(crate) fn to_python<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|err| XapiError::new_err(format!("cannot serialize a report: {err}")))?;
    let loads = JSON_LOADS.get_or_try_init(py, || {
        py.import("json")
            .and_then(|json| json.getattr("loads"))
            .map(Bound::unbind)
    })?;
    loads.bind(py).call1((text,))
}

/// The engine handle of a logged-in `xapi_sdk.Session` (its connection and reference; the
/// session stays the caller's: it is not logged out when the engine is done).
pub(crate) fn session_handle(session: &Bound<'_, PyAny>) -> PyResult<SessionHandle> {
    let connection = session.getattr("_connection")?;
    let connection = connection.cast::<Connection>().map_err(|_| {
        PyValueError::new_err("expected an xapi_sdk.Session (logged in), not this object")
    })?;
    let reference = session.getattr("ref")?;
    let reference = reference
        .cast::<Ref>()
        .map_err(|_| PyValueError::new_err("the session's ref is not an xapi_sdk.Ref"))?;
    Ok(connection
        .get()
        .client()
        .attach_session(reference.get().text().into()))
}

/// The Python exception for an error of the backup engine: XAPI's failures and transport
/// errors as the client's exceptions, the rest as `XapiError` with the engine's message.
pub(crate) fn engine_error(py: Python<'_>, err: &EngineError) -> PyErr {
    match err {
        EngineError::Xapi { source, .. } => errors::to_py(py, source),
        other => XapiError::new_err(other.to_string()),
    }
}

/// The Python exception for an error of the repository.
fn repo_error(err: &xapi_backup::Error) -> PyErr {
    XapiError::new_err(err.to_string())
}

/// The Python exception for an error creating or opening the repository at `location`.
fn repo_error_at(location: &Location, err: &xapi_backup::Error) -> PyErr {
    XapiError::new_err(format!("{location}: {err}"))
}

/// The restore point kind named `kind` (`"vm"`, `"disk"`, `"pool-metadata"`, `"host"`).
fn kind_of(kind: &str) -> PyResult<RestorePointKind> {
    RestorePointKind::ALL
        .into_iter()
        .find(|k| k.dir() == kind)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "kind must be \"vm\", \"disk\", \"pool-metadata\" or \"host\", not {kind:?}"
            ))
        })
}

/// The secret of a key file, if one is given.
fn secret(key_file: Option<&PathBuf>) -> PyResult<Option<Secret>> {
    key_file
        .map(|path| {
            Secret::key_file(path)
                .map_err(|err| PyValueError::new_err(format!("key file {}: {err}", path.display())))
        })
        .transpose()
}

/// A backup repository (xapi-backup's `Repository`) on a local directory or S3-compatible
/// storage.
///
/// `Repository.create(location, encrypt_key_file=None)` makes a new one (encrypted with a new
/// key written to `encrypt_key_file` when given: keep it apart from the backups);
/// `Repository.open(location, key_file=None)` opens an existing one. `location` is a directory
/// or `"s3://BUCKET/PREFIX"`; for S3 the keyword arguments `s3_endpoint` (else
/// `AWS_ENDPOINT_URL`, else AWS itself), `s3_region` (else `AWS_REGION`, else `us-east-1`),
/// `s3_access_key_id` and `s3_secret_access_key` (else `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`) and `s3_allow_http` (a plain `http://` endpoint is refused
/// without it) say how to reach it.
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Repository {
    repo: xapi_backup::repo::Repository,
    location: Location,
}

impl Repository {
    /// The restore point with this id.
    fn find(&self, py: Python<'_>, id: &str) -> PyResult<Manifest> {
        let repo = self.repo.clone();
        let all = blocking::run(py, async move { repo.list_all().await })?
            .map_err(|err| repo_error(&err))?;
        all.into_iter()
            .find(|m| m.id.as_str() == id)
            .ok_or_else(|| {
                PyValueError::new_err(format!("no restore point {id} in {}", self.location))
            })
    }
}

#[pymethods]
impl Repository {
    /// Create a repository at `location` (a directory, made if missing, or
    /// `s3://BUCKET/PREFIX`); encrypted with a new key written to `encrypt_key_file` when
    /// given.
    #[staticmethod]
    #[pyo3(signature = (location, encrypt_key_file = None, *, s3_endpoint = None, s3_region = None, s3_access_key_id = None, s3_secret_access_key = None, s3_allow_http = false))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        location: &Bound<'_, PyAny>,
        encrypt_key_file: Option<PathBuf>,
        s3_endpoint: Option<String>,
        s3_region: Option<String>,
        s3_access_key_id: Option<String>,
        s3_secret_access_key: Option<String>,
        s3_allow_http: bool,
    ) -> PyResult<Self> {
        let (location, target) = repo_location::resolve(
            location,
            S3Settings {
                endpoint: s3_endpoint,
                region: s3_region,
                access_key_id: s3_access_key_id,
                secret_access_key: s3_secret_access_key,
                allow_http: s3_allow_http,
            },
        )?;
        let encryption = encrypt_key_file
            .map(|file| {
                Secret::generate_key_file(&file).map_err(|err| {
                    PyValueError::new_err(format!("key file {}: {err}", file.display()))
                })
            })
            .transpose()?;
        if let Location::Local(path) = &location {
            std::fs::create_dir_all(path)?;
        }
        let repo = blocking::run(py, async move {
            xapi_backup::repo::Repository::create(
                &target,
                CreateOptions {
                    encryption,
                    ..CreateOptions::default()
                },
            )
            .await
        })?
        .map_err(|err| repo_error_at(&location, &err))?;
        Ok(Self { repo, location })
    }

    /// Open the repository at `location` (a directory or `s3://BUCKET/PREFIX`; `key_file`:
    /// the key of an encrypted one).
    #[staticmethod]
    #[pyo3(signature = (location, key_file = None, *, s3_endpoint = None, s3_region = None, s3_access_key_id = None, s3_secret_access_key = None, s3_allow_http = false))]
    #[allow(clippy::needless_pass_by_value, clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        location: &Bound<'_, PyAny>,
        key_file: Option<PathBuf>,
        s3_endpoint: Option<String>,
        s3_region: Option<String>,
        s3_access_key_id: Option<String>,
        s3_secret_access_key: Option<String>,
        s3_allow_http: bool,
    ) -> PyResult<Self> {
        let (location, target) = repo_location::resolve(
            location,
            S3Settings {
                endpoint: s3_endpoint,
                region: s3_region,
                access_key_id: s3_access_key_id,
                secret_access_key: s3_secret_access_key,
                allow_http: s3_allow_http,
            },
        )?;
        let secret = secret(key_file.as_ref())?;
        let repo = blocking::run(py, async move {
            xapi_backup::repo::Repository::open(
                &target,
                OpenOptions {
                    secret,
                    ..OpenOptions::default()
                },
            )
            .await
        })?
        .map_err(|err| repo_error_at(&location, &err))?;
        Ok(Self { repo, location })
    }

    /// Where the repository is: its directory, or `s3://BUCKET/PREFIX`.
    #[getter]
    fn location(&self) -> String {
        self.location.to_string()
    }

    /// The repository's directory; an S3 repository has none (`ValueError`: use `location`).
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        match &self.location {
            Location::Local(path) => Ok(path.clone()),
            Location::S3(url) => Err(PyValueError::new_err(format!(
                "{url}: an S3 repository has no local path: use location"
            ))),
        }
    }

    /// Whether every object is encrypted.
    #[getter]
    fn is_encrypted(&self) -> bool {
        self.repo.is_encrypted()
    }

    /// The restore points (manifests as dicts), of one kind or all.
    #[pyo3(signature = (kind = None))]
    fn list<'py>(&self, py: Python<'py>, kind: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        let kind = kind.map(kind_of).transpose()?;
        let repo = self.repo.clone();
        let points = blocking::run(py, async move {
            match kind {
                Some(kind) => repo.list(kind).await,
                None => repo.list_all().await,
            }
        })?
        .map_err(|err| repo_error(&err))?;
        to_python(py, &points)
    }

    /// Check the repository (every restore point, or those of `ids`, whose chunks are then
    /// all read back); `read_data` reads every chunk of a whole-repository check back too.
    /// The report as a dict (`problems` empty when all is well).
    #[pyo3(signature = (ids = None, read_data = false))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        ids: Option<Vec<String>>,
        read_data: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let report =
            match ids {
                None => {
                    let repo = self.repo.clone();
                    blocking::run(
                        py,
                        async move { repo.check(CheckOptions { read_data }).await },
                    )?
                    .map_err(|err| repo_error(&err))?
                }
                Some(ids) => {
                    let mut report = VerifyReport::default();
                    for id in ids {
                        let manifest = self.find(py, &id)?;
                        let repo = self.repo.clone();
                        let one = blocking::run(py, async move {
                            repo.verify_restore_point(&manifest).await
                        })?
                        .map_err(|err| repo_error(&err))?;
                        report.restore_points += one.restore_points;
                        report.streams += one.streams;
                        report.chunk_references += one.chunk_references;
                        report.chunks_read += one.chunks_read;
                        report.problems.extend(one.problems);
                        report.orphans.extend(one.orphans);
                    }
                    report
                }
            };
        to_python(py, &report)
    }

    /// Forget restore points: those of `ids`, or those of `kind` that the retention policy
    /// (`keep_last`, `keep_daily`, `keep_weekly`, `keep_monthly`) does not keep. Their data
    /// goes at a later `prune`. The report as a dict (for a policy; `None` for `ids`).
    #[pyo3(signature = (ids = None, *, kind = "vm", keep_last = 0, keep_daily = 0, keep_weekly = 0, keep_monthly = 0, dry_run = false))]
    #[allow(clippy::too_many_arguments)]
    fn forget<'py>(
        &self,
        py: Python<'py>,
        ids: Option<Vec<String>>,
        kind: &str,
        keep_last: u32,
        keep_daily: u32,
        keep_weekly: u32,
        keep_monthly: u32,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(ids) = ids {
            for id in ids {
                let manifest = self.find(py, &id)?;
                if !dry_run {
                    let repo = self.repo.clone();
                    blocking::run(
                        py,
                        async move { repo.forget_restore_point(&manifest).await },
                    )?
                    .map_err(|err| repo_error(&err))?;
                }
            }
            return Ok(py.None().into_bound(py));
        }
        let kind = kind_of(kind)?;
        let policy = RetentionPolicy {
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
        };
        if policy.is_empty() {
            return Err(PyValueError::new_err(
                "a retention policy that keeps nothing: give ids, or keep_last / keep_daily / \
                 keep_weekly / keep_monthly",
            ));
        }
        let repo = self.repo.clone();
        let report = blocking::run(py, async move { repo.forget(kind, &policy, dry_run).await })?
            .map_err(|err| repo_error(&err))?;
        to_python(py, &report)
    }

    /// Delete the data no restore point references any more, once it has stayed unreferenced
    /// for `grace_hours` (across two prunes); the report as a dict.
    #[pyo3(signature = (*, grace_hours = 24, dry_run = false))]
    fn prune<'py>(
        &self,
        py: Python<'py>,
        grace_hours: u32,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = PruneOptions {
            grace: chrono::TimeDelta::hours(i64::from(grace_hours)),
            owner: format!("xapi_sdk pid {}", std::process::id()),
            dry_run,
            ..PruneOptions::default()
        };
        let repo = self.repo.clone();
        let report = blocking::run(py, async move { repo.prune(&options).await })?
            .map_err(|err| repo_error(&err))?;
        to_python(py, &report)
    }

    fn __repr__(&self) -> String {
        format!("<xapi_sdk.backup.Repository {}>", self.location)
    }
}

/// Back up the VMs selected (`all`, `vms` by name or UUID, `tags`, `vapps`, minus `exclude`,
/// optionally only shard `(k, n)`), `concurrency` at a time, into `repo`; `on_progress` is
/// called with each event (a dict: `{"event": "started", "name_label": …}` or
/// `{"event": "finished", …the VM's report}`). The job's report as a dict.
#[pyfunction]
#[pyo3(signature = (session, repo, *, all = false, vms = Vec::new(), tags = Vec::new(), vapps = Vec::new(), exclude = Vec::new(), shard = None, concurrency = 4, job_id = None, on_progress = None))]
#[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
pub(crate) fn backup_run<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    repo: &Repository,
    all: bool,
    vms: Vec<String>,
    tags: Vec<String>,
    vapps: Vec<String>,
    exclude: Vec<String>,
    shard: Option<(u32, u32)>,
    concurrency: usize,
    job_id: Option<String>,
    on_progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if !all && vms.is_empty() && tags.is_empty() && vapps.is_empty() {
        return Err(PyValueError::new_err(
            "nothing selected: give all=True, vms, tags or vapps",
        ));
    }
    if concurrency == 0 {
        return Err(PyValueError::new_err("concurrency must be at least 1"));
    }
    let selection = Selection {
        all,
        vms,
        tags,
        vapps,
        exclude,
        shard,
    };
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    let job_id = job_id.unwrap_or_else(|| format!("job-{}", std::process::id()));
    let mut options = JobOptions::new(job_id, concurrency);
    let cancel = options.cancel.clone();
    let report = blocking::run_reporting_cancellable(
        py,
        &cancel,
        move |events| async move {
            options.concurrency = options.concurrency.max(1);
            run_job_with(&handle, &store, &selection, &options, |event| {
                let _ = events.send(event);
            })
            .await
        },
        |py, event: JobEvent| match &on_progress {
            Some(callback) => callback.call1((to_python(py, &event)?,)).map(drop),
            None => Ok(()),
        },
    )?
    .map_err(|err| engine_error(py, &err))?;
    to_python(py, &report)
}

/// Restore the VM restore point `id` of `repo` on `session`'s pool: a new VM with new UUIDs
/// (`name` names it, `sr` is the SR for its disks), or with `overwrite=True` in place of the
/// source VM (which must be halted); `start` starts it. A dict: `vm` (its reference), `uuid`,
/// `started`, `replaced_disks_removed`, `replaced_disks_kept`.
#[pyfunction]
#[pyo3(signature = (session, repo, id, *, name = None, sr = None, overwrite = false, start = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn backup_restore<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    repo: &Repository,
    id: &str,
    name: Option<String>,
    sr: Option<&Bound<'py, PyAny>>,
    overwrite: bool,
    start: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let sr = sr
        .map(|sr| sr.str().map(|text| text.to_string()))
        .transpose()?;
    let options = RestoreOptions {
        sr: sr.map(Into::into),
        name_label: name,
        overwrite,
        start,
        ..RestoreOptions::default()
    };
    let manifest = repo.find(py, id)?;
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    let outcome = blocking::run(py, async move {
        restore_vm_outcome(&handle, &store, &manifest, &options).await
    })?
    .map_err(|err| engine_error(py, &err))?;
    to_python(
        py,
        &serde_json::json!({
            "vm": outcome.vm.as_str(),
            "uuid": outcome.uuid,
            "started": outcome.started,
            "replaced_disks_removed": outcome.replaced_disks_removed,
            "replaced_disks_kept": outcome.replaced_disks_kept,
        }),
    )
}

/// Write the VM restore point `id` of `repo` as an XVA file at `path` (for `xe vm-import`);
/// the bytes written. A file cut short by an error or Ctrl-C is removed.
#[pyfunction]
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn backup_export_xva(
    py: Python<'_>,
    repo: &Repository,
    id: &str,
    path: PathBuf,
) -> PyResult<u64> {
    let manifest = repo.find(py, id)?;
    let store = repo.repo.clone();
    let target = path.clone();
    let written = blocking::run(py, async move {
        let mut file = tokio::fs::File::create(&target)
            .await
            .map_err(|err| format!("{}: {err}", target.display()))?;
        xapi_backup::xva_io::export_xva(&store, &manifest, &XvaExportOptions::default(), &mut file)
            .await
            .map_err(|err| err.to_string())
    });
    match written {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(message)) => {
            let _ = std::fs::remove_file(&path);
            Err(XapiError::new_err(message))
        }
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            Err(err)
        }
    }
}

/// Store the XVA file at `path` (from `xe vm-export`) in `repo` as a VM restore point,
/// checking every chunk as it is read; the restore point (a manifest dict).
#[pyfunction]
pub(crate) fn backup_import_xva<'py>(
    py: Python<'py>,
    repo: &Repository,
    path: PathBuf,
) -> PyResult<Bound<'py, PyAny>> {
    let store = repo.repo.clone();
    let stored = blocking::run(py, async move {
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| XapiError::new_err(format!("{}: {err}", path.display())))?;
        xapi_backup::xva_io::import_xva(&store, file, None)
            .await
            .map_err(|err| XapiError::new_err(err.to_string()))
    })??;
    to_python(py, &stored.manifest)
}

/// Back up the pool database of `session`'s pool into `repo`; the restore point (a manifest
/// dict).
#[pyfunction]
pub(crate) fn backup_pool_metadata<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    repo: &Repository,
) -> PyResult<Bound<'py, PyAny>> {
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    let done = blocking::run(py, async move {
        xapi_backup::pool_metadata::backup_pool_metadata(&handle, &store, None).await
    })?
    .map_err(|err| engine_error(py, &err))?;
    to_python(py, &done.manifest)
}

/// Restore the pool-metadata restore point `id` on `session`'s pool: xapi's dry run, then
/// (unless `dry_run_only`) the restore, after which the session is no longer valid. A dict:
/// `dry_run_passed`, `restored`.
#[pyfunction]
#[pyo3(signature = (session, repo, id, *, dry_run_only = false))]
pub(crate) fn restore_pool_metadata<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    repo: &Repository,
    id: &str,
    dry_run_only: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let manifest = repo.find(py, id)?;
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    let report = blocking::run(py, async move {
        xapi_backup::pool_metadata::restore_pool_metadata(
            &handle,
            &store,
            &manifest,
            PoolRestoreOptions { dry_run_only },
        )
        .await
    })?
    .map_err(|err| engine_error(py, &err))?;
    to_python(
        py,
        &serde_json::json!({
            "dry_run_passed": report.dry_run_passed,
            "restored": report.restored,
        }),
    )
}

/// Back up `session`'s host (the pool's master) into `repo`; the restore point (a manifest
/// dict).
#[pyfunction]
pub(crate) fn backup_host<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    repo: &Repository,
) -> PyResult<Bound<'py, PyAny>> {
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    let done = blocking::run(py, async move {
        xapi_backup::host_backup::backup_host(&handle, &store, None).await
    })?
    .map_err(|err| engine_error(py, &err))?;
    to_python(py, &done.manifest)
}

/// Restore the host restore point `id` onto `session`'s host.
#[pyfunction]
pub(crate) fn restore_host(
    py: Python<'_>,
    session: &Bound<'_, PyAny>,
    repo: &Repository,
    id: &str,
) -> PyResult<()> {
    let manifest = repo.find(py, id)?;
    let handle = session_handle(session)?;
    let store = repo.repo.clone();
    blocking::run(py, async move {
        xapi_backup::host_backup::restore_host(&handle, &store, &manifest).await
    })?
    .map_err(|err| engine_error(py, &err))
}
