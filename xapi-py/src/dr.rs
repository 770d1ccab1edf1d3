//! The DR engine (xapi-dr) for Python: metadata replication, mirrored storage attached in the
//! recovery pool, copies of metadata found and read, plans (JSON in and out) and runs with
//! progress, clean-up after a test failover.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use xapi_dr::plan::{Mode, PlanRequest, Selection, reconcile_and_plan};
use xapi_dr::reconcile::{Preferences, Recovered};
use xapi_dr::run::{RunError, RunEvent, RunOptions, RunReport};
use xapi_dr::source::{DiscoverOptions, IntroducedStorage, MetadataCopy, discover};

use crate::backup::{session_handle, to_python};
use crate::blocking;
use crate::errors::XapiError;

/// The exception for an error of the DR engine.
fn dr_error(err: &impl std::fmt::Display) -> PyErr {
    XapiError::new_err(err.to_string())
}

/// Enable metadata replication on the SRs of `sr_uuids` of `session`'s pool, and disable it
/// on the others; `{"enabled", "disabled", "unchanged"}` (SR UUIDs).
#[pyfunction]
pub(crate) fn dr_set_replication<'py>(
    py: Python<'py>,
    session: &Bound<'py, PyAny>,
    sr_uuids: Vec<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let handle = session_handle(session)?;
    let change = blocking::run(py, async move {
        let wanted: Vec<&str> = sr_uuids.iter().map(String::as_str).collect();
        xapi_dr::configure::set_replication(&handle, &wanted).await
    })?
    .map_err(|err| dr_error(&err))?;
    to_python(py, &change)
}

/// SRs a `DR_task` introduced in the recovery pool: the mirrored storage the metadata is
/// read from. Hand it to `Run` (so that a test failover's clean-up forgets it too), or
/// `destroy` it.
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Storage {
    storage: IntroducedStorage,
}

#[pymethods]
impl Storage {
    /// The UUIDs of the introduced SRs.
    #[getter]
    fn sr_uuids(&self) -> Vec<String> {
        self.storage.sr_uuids().map(str::to_owned).collect()
    }

    /// The DR task's reference.
    #[getter]
    fn dr_task(&self) -> String {
        self.storage.dr_task.as_str().to_owned()
    }

    /// `DR_task.destroy`: unplug and forget every SR the task still lists.
    fn destroy(&self, py: Python<'_>, session: &Bound<'_, PyAny>) -> PyResult<()> {
        let handle = session_handle(session)?;
        let storage = self.storage.clone();
        blocking::run(py, async move { storage.destroy(&handle).await })?
            .map_err(|err| dr_error(&err))
    }

    fn __repr__(&self) -> String {
        format!("<xapi_sdk.dr.Storage SRs {:?}>", self.sr_uuids())
    }
}

/// Probe the mirrored LUNs behind `device_config` (storage `sr_type`: `lvmoiscsi` or
/// `lvmohba`) from `session`'s pool and introduce the SRs found (only those of `sr_uuids`
/// when given) with `DR_task.create`.
#[pyfunction]
#[pyo3(signature = (session, sr_type, device_config, sr_uuids = None))]
pub(crate) fn dr_attach_storage(
    py: Python<'_>,
    session: &Bound<'_, PyAny>,
    sr_type: String,
    device_config: BTreeMap<String, String>,
    sr_uuids: Option<Vec<String>>,
) -> PyResult<Storage> {
    let handle = session_handle(session)?;
    let storage = blocking::run(py, async move {
        let wanted = match sr_uuids {
            Some(uuids) => uuids,
            None => xapi_dr::source::probe(&handle, &sr_type, &device_config)
                .await?
                .into_iter()
                .map(|sr| sr.uuid)
                .collect(),
        };
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        xapi_dr::source::introduce(&handle, &sr_type, &device_config, &wanted).await
    })?
    .map_err(|err| dr_error(&err))?;
    Ok(Storage { storage })
}

/// A copy of a pool's metadata (its database), read from a metadata VDI.
#[pyclass(module = "xapi_sdk._xapi_sdk", name = "MetadataCopy", frozen)]
pub(crate) struct FoundCopy {
    copy: MetadataCopy,
}

#[pymethods]
impl FoundCopy {
    /// The UUID of the pool whose database this is.
    #[getter]
    fn pool_uuid(&self) -> String {
        self.copy.pool_uuid().to_owned()
    }

    /// The database's generation (newest wins).
    #[getter]
    fn generation(&self) -> i64 {
        self.copy.generation()
    }

    fn __repr__(&self) -> String {
        format!(
            "<xapi_sdk.dr.MetadataCopy of pool {} generation {}>",
            self.copy.pool_uuid(),
            self.copy.generation()
        )
    }
}

/// Every copy of metadata the pool of `session` sees on its attached SRs, read through its
/// API (`VDI.open_database`).
#[pyfunction]
pub(crate) fn dr_find_copies(
    py: Python<'_>,
    session: &Bound<'_, PyAny>,
) -> PyResult<Vec<FoundCopy>> {
    let handle = session_handle(session)?;
    let copies = blocking::run(py, async move {
        let mut copies = Vec::new();
        for found in discover(&handle, &DiscoverOptions::default()).await? {
            copies.push(MetadataCopy::from_vdi(&handle, &found.vdi).await?);
        }
        Ok::<_, xapi_dr::Error>(copies)
    })?
    .map_err(|err| dr_error(&err))?;
    Ok(copies.into_iter().map(|copy| FoundCopy { copy }).collect())
}

/// The mode named `mode`.
fn mode_of(mode: &str) -> PyResult<Mode> {
    match mode {
        "failover" => Ok(Mode::Failover),
        "failback" => Ok(Mode::Failback),
        "test_failover" => Ok(Mode::TestFailover),
        other => Err(PyValueError::new_err(format!(
            "mode must be \"failover\", \"failback\" or \"test_failover\", not {other:?}"
        ))),
    }
}

/// The name of `mode`.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Failover => "failover",
        Mode::Failback => "failback",
        Mode::TestFailover => "test_failover",
    }
}

/// A recovery plan: what a run does, and every pre-check with its outcome. Plain data:
/// `to_json()` writes it, `Plan.from_json(text)` reads it back (maybe edited).
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Plan {
    plan: xapi_dr::plan::Plan,
}

#[pymethods]
impl Plan {
    /// The plan read from its JSON form.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        xapi_dr::plan::Plan::from_json(text)
            .map(|plan| Self { plan })
            .map_err(|err| PyValueError::new_err(err.to_string()))
    }

    /// The plan's JSON form.
    fn to_json(&self) -> String {
        self.plan.to_json()
    }

    /// The plan as a dict (its JSON form, loaded).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.plan)
    }

    /// `"failover"`, `"failback"` or `"test_failover"`.
    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.plan.mode)
    }

    /// The UUID of the pool the plan recovers into.
    #[getter]
    fn target_pool(&self) -> String {
        self.plan.target_pool.clone()
    }

    /// The VMs to recover (dicts).
    #[getter]
    fn vms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.plan.vms)
    }

    /// The vApps to recover (dicts).
    #[getter]
    fn vapps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.plan.vapps)
    }

    /// Every pre-check (dicts with `severity`, `kind`, `message`).
    #[getter]
    fn checks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.plan.checks)
    }

    /// The UUIDs of the SRs the run introduces.
    #[getter]
    fn srs_to_introduce(&self) -> Vec<String> {
        self.plan.srs_to_introduce.clone()
    }

    /// Whether a problem blocks the run (unless its fixes are applied).
    #[getter]
    fn is_blocked(&self) -> bool {
        self.plan.is_blocked()
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.plan == other.plan
    }

    fn __repr__(&self) -> String {
        format!(
            "<xapi_sdk.dr.Plan {} into pool {}: {} vApps, {} VMs>",
            mode_name(self.plan.mode),
            self.plan.target_pool,
            self.plan.vapps.len(),
            self.plan.vms.len()
        )
    }
}

/// Reconcile `copies` (newest wins) and plan a `mode` recovery into `session`'s pool of the
/// vApps and VMs named in `names` (names or UUIDs; all when `None`), with every pre-check.
#[pyfunction]
#[pyo3(signature = (session, copies, mode = "failover", names = None))]
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn dr_plan(
    py: Python<'_>,
    session: &Bound<'_, PyAny>,
    copies: Vec<Bound<'_, FoundCopy>>,
    mode: &str,
    names: Option<Vec<String>>,
) -> PyResult<Plan> {
    let mut request = PlanRequest::new(mode_of(mode)?);
    if let Some(names) = names {
        request.selection = Selection::Named(names);
    }
    let copies: Vec<MetadataCopy> = copies.iter().map(|c| c.get().copy.clone()).collect();
    let handle = session_handle(session)?;
    let target = blocking::run(py, async move {
        xapi_dr::target::read_target_pool(&handle).await
    })?
    .map_err(|err| dr_error(&err))?;
    let (_, plan) = py
        .detach(|| {
            reconcile_and_plan(
                &copies,
                &target,
                None,
                &Recovered::default(),
                &Preferences::default(),
                &request,
            )
        })
        .map_err(|err| dr_error(&err))?;
    Ok(Plan { plan })
}

/// A plan being run against the recovery pool: `execute()` runs it, `cleanup()` undoes a
/// test failover from its journal. Both take an `on_progress` callable, called with each
/// event (a dict with an `"event"` key), and return the run's report as a dict.
///
/// `Run(session, plan, *, storage=None, apply_fixes=False, force=False, journal=None)`:
/// `storage` (from `attach_storage`) is adopted, so that a test's clean-up forgets it too;
/// `apply_fixes` applies the fixes the plan proposes for its problems; `journal` is the path
/// of the journal file (a journal already there is continued).
#[pyclass(module = "xapi_sdk._xapi_sdk", frozen)]
pub(crate) struct Run {
    run: Arc<tokio::sync::Mutex<xapi_dr::run::Run>>,
}

/// What a step of a run gives back: its report, or the error with the report so far.
type Step = Result<RunReport, (String, RunReport)>;

impl Run {
    /// Run `step` on the run with progress events going to `on_progress`.
    fn step<'py>(
        &self,
        py: Python<'py>,
        cleanup: bool,
        on_progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let run = self.run.clone();
        let outcome: Step = blocking::run_reporting(
            py,
            move |sender| async move {
                let mut run = run.lock().await;
                let mut events = run.events();
                let result = {
                    let work = async {
                        if cleanup {
                            run.cleanup().await
                        } else {
                            run.execute().await
                        }
                    };
                    tokio::pin!(work);
                    loop {
                        tokio::select! {
                            result = &mut work => break result,
                            Some(event) = events.recv() => { let _ = sender.send(event); }
                        }
                    }
                };
                while let Ok(event) = events.try_recv() {
                    let _ = sender.send(event);
                }
                result.map_err(|err: RunError| (err.to_string(), run.report(Some(&err))))
            },
            |py, event: RunEvent| match on_progress {
                Some(callback) => callback.call1((to_python(py, &event)?,)).map(drop),
                None => Ok(()),
            },
        )?;
        match outcome {
            Ok(report) => to_python(py, &report),
            Err((message, report)) => {
                let err = XapiError::new_err(message);
                err.value(py).setattr("report", to_python(py, &report)?)?;
                Err(err)
            }
        }
    }
}

#[pymethods]
impl Run {
    #[new]
    #[pyo3(signature = (session, plan, *, storage = None, apply_fixes = false, force = false, journal = None))]
    fn new(
        session: &Bound<'_, PyAny>,
        plan: &Plan,
        storage: Option<&Storage>,
        apply_fixes: bool,
        force: bool,
        journal: Option<PathBuf>,
    ) -> PyResult<Self> {
        let options = RunOptions {
            apply_fixes,
            force,
            journal_path: journal,
            ..RunOptions::default()
        };
        let mut run = xapi_dr::run::Run::new(session_handle(session)?, plan.plan.clone(), options)
            .map_err(|err| dr_error(&err))?;
        if let Some(storage) = storage {
            run.adopt(&storage.storage).map_err(|err| dr_error(&err))?;
        }
        Ok(Self {
            run: Arc::new(tokio::sync::Mutex::new(run)),
        })
    }

    /// Run the plan: fixes, storage, recovery, networks, starts; the report as a dict. On
    /// error `XapiError` with the report so far in its `report` attribute.
    #[pyo3(signature = (*, on_progress = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        on_progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.step(py, false, on_progress)
    }

    /// A test failover's clean-up from the journal: recovered VMs and vApps destroyed, DR
    /// tasks destroyed, introduced SRs forgotten, created networks removed, fixes unwound.
    #[pyo3(signature = (*, on_progress = None))]
    fn cleanup<'py>(
        &self,
        py: Python<'py>,
        on_progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.step(py, true, on_progress)
    }
}
