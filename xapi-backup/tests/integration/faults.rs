//! The fault matrix: several VMs of the demo pool backed up four at a time (never more than
//! four in flight, measured) under each fault the simulator injects. Each ends retried to
//! success or in a typed error, with no snapshot left on the pool and no incomplete restore
//! point listed. Plus cancellation, limits per host and a bandwidth limit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use xapi_backup::export::SNAPSHOT_TAG;
use xapi_backup::hooks::Hook;
use xapi_backup::import::{RestoreOptions, restore_vm};
use xapi_backup::jobs::{JobEvent, JobOptions, JobReport, Selection, VmOutcome, run_job_with};
use xapi_backup::repo::{CreateOptions, Repository, RestorePointKind, Target};
use xapi_backup::retry::RetryPolicy;
use xapi_core::api::ErrorCode;
use xapi_core::client::{Client, Password, SessionHandle};
use xapi_sim::{DEFAULT_PASSWORD, Faults, Scenario, SimConfig, SimHandle, Simulator};

async fn demo() -> (SimHandle, SessionHandle) {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    let session = Client::builder(sim.url())
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "faults")
        .await
        .unwrap();
    (sim, session)
}

async fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create(
        &Target::LocalDir(dir.path().join("repo")),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    (dir, repo)
}

/// `count` VMs of the pool (the first by name that are neither templates, snapshots nor
/// control domains), by UUID: the test does not depend on the demo pool's names.
async fn some_vms(session: &SessionHandle, count: usize) -> Selection {
    let vms = session.vm().get_all_records().await.unwrap();
    let chosen = xapi_backup::jobs::select(
        &vms,
        &std::collections::HashMap::<_, _>::new(),
        &Selection {
            all: true,
            ..Selection::default()
        },
    )
    .unwrap();
    Selection {
        vms: chosen
            .into_iter()
            .take(count)
            .map(|(_, _, uuid)| uuid)
            .collect(),
        ..Selection::default()
    }
}

/// Retries a few milliseconds apart, so that the tests do not wait.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        jitter: 0.5,
        seed: 42,
    }
}

fn options(job: &str) -> JobOptions {
    let mut options = JobOptions::new(job, 4);
    options.retry = quick_retries();
    options
}

/// A pre-snapshot hook that arms a fault once, when the first VM's backup begins (so that the
/// job's own first calls are not the ones hit).
fn arm_once(faults: &Faults, arm: impl Fn(&Faults) + Send + Sync + 'static) -> Hook {
    let faults = faults.clone();
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let arm = Arc::new(arm);
    Hook::callback(move |_| {
        let (faults, armed, arm) = (faults.clone(), Arc::clone(&armed), Arc::clone(&arm));
        async move {
            if !armed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                arm(&faults);
            }
            Ok(())
        }
    })
}

/// No snapshot of the engine left on the pool, every listed restore point complete (readable,
/// one per VM that ended done), at most four backups in flight.
async fn assert_clean(session: &SessionHandle, repo: &Repository, report: &JobReport) {
    let all = session.vm().get_all_records().await.unwrap();
    let left: Vec<_> = all
        .values()
        .filter(|vm| vm.is_a_snapshot && vm.tags.iter().any(|t| &**t == SNAPSHOT_TAG))
        .map(|vm| (*vm.name_label).to_owned())
        .collect();
    assert!(left.is_empty(), "snapshots left: {left:?}");
    let listed = repo.list(RestorePointKind::Vm).await.unwrap();
    let done: HashSet<String> = report
        .vms
        .iter()
        .filter_map(|vm| match &vm.outcome {
            VmOutcome::Done { restore_point, .. } => Some(restore_point.clone()),
            _ => None,
        })
        .collect();
    let listed_ids: HashSet<String> = listed.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(
        listed_ids, done,
        "exactly the completed restore points are listed"
    );
    for manifest in &listed {
        assert!(manifest.ova_xml.is_some(), "complete: {}", manifest.id);
    }
    assert!(report.max_in_flight <= 4, "{}", report.max_in_flight);
}

/// Runs a job of `count` VMs with `options`; the report, after checking it is clean.
async fn run(
    session: &SessionHandle,
    repo: &Repository,
    count: usize,
    options: &JobOptions,
) -> JobReport {
    let selection = some_vms(session, count).await;
    let report = run_job_with(session, repo, &selection, options, |_| {})
        .await
        .unwrap();
    assert_eq!(report.vms.len(), count);
    assert_clean(session, repo, &report).await;
    report
}

fn retried(report: &JobReport) -> usize {
    report.vms.iter().filter(|vm| vm.attempts > 1).count()
}

fn all_done(report: &JobReport) -> bool {
    report
        .vms
        .iter()
        .all(|vm| matches!(vm.outcome, VmOutcome::Done { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_job_keeps_four_in_flight_and_reports_json() {
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut events = Vec::new();
    let selection = some_vms(&session, 8).await;
    let report = run_job_with(&session, &repo, &selection, &options("clean"), |e| {
        events.push(e);
    })
    .await
    .unwrap();
    assert_clean(&session, &repo, &report).await;
    assert!(all_done(&report), "{}", report.to_json());
    assert_eq!(report.max_in_flight, 4, "eight VMs, four at a time");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let first = &json["vms"][0];
    for key in [
        "outcome",
        "attempts",
        "warnings",
        "times",
        "throughput",
        "virtual_size",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert!(events.iter().any(|e| matches!(e, JobEvent::Progress(p) if p.phase == xapi_backup::export::Phase::Export && p.total > 0)));
    let last_job = events
        .iter()
        .rev()
        .find_map(|e| match e {
            JobEvent::Job(job) => Some(job.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((last_job.vms_done, last_job.vms_total), (8, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_export_is_retried_to_success() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("cut");
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| {
        f.cut_next_download_after(1_500_000);
    }));
    let report = run(&session, &repo, 6, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    assert_eq!(retried(&report), 1, "{}", report.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_500_is_retried_to_success() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("http-500");
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| {
        f.fail_next_requests_with_http_500(2);
    }));
    let report = run(&session, &repo, 6, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    assert!(retried(&report) >= 1, "{}", report.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_invalidated_mid_job_is_absorbed() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("session");
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| f.invalidate_session_after(5)));
    let report = run(&session, &repo, 6, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_export_with_keep_alives_completes() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("stall");
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| {
        f.stall_next_export(Duration::from_secs(6));
    }));
    let report = run(&session, &repo, 5, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    assert_eq!(retried(&report), 0, "keep-alives keep the stream alive");
    assert!(
        report.vms.iter().any(|vm| vm.seconds >= 5.5),
        "one export stalled: {}",
        report.to_json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_midway_ends_in_a_typed_error_for_that_vm_only() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("task");
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| {
        f.fail_next_task(ErrorCode::SrBackendFailure.as_str());
    }));
    let report = run(&session, &repo, 5, &options).await;
    let failed: Vec<_> = report
        .vms
        .iter()
        .filter_map(|vm| match &vm.outcome {
            VmOutcome::Failed { error } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{}", report.to_json());
    assert!(failed[0].contains("SR_BACKEND_FAILURE"), "{failed:?}");
    assert_eq!(report.failed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_is_detected_and_the_export_taken_again() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("corrupt");
    options.pre_snapshot = Some(arm_once(sim.faults(), Faults::corrupt_next_export_checksum));
    let report = run(&session, &repo, 5, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    let retried: Vec<_> = report.vms.iter().filter(|vm| vm.attempts > 1).collect();
    assert_eq!(retried.len(), 1, "{}", report.to_json());
    assert!(
        retried[0].warnings.iter().any(|w| w.contains("mismatch")),
        "{:?}",
        retried[0].warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_and_end_in_the_last_error() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("bounded");
    options.concurrency = 1;
    // every export is cut, three attempts each: the VM fails with the export's error
    let faults = sim.faults().clone();
    options.pre_snapshot = Some(Hook::callback(move |_| {
        let faults = faults.clone();
        async move {
            faults.cut_next_download_after(1_500_000);
            Ok(())
        }
    }));
    let report = run(&session, &repo, 1, &options).await;
    let vm = &report.vms[0];
    assert_eq!(vm.attempts, 3, "{}", report.to_json());
    assert!(matches!(vm.outcome, VmOutcome::Failed { .. }));
    assert_eq!(vm.warnings.len(), 2, "{:?}", vm.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sr_on_restore_ends_in_a_typed_error_and_creates_nothing() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let report = run(&session, &repo, 1, &options("restore")).await;
    assert!(all_done(&report));
    let point = repo.list(RestorePointKind::Vm).await.unwrap().remove(0);
    let srs = session.sr().get_all_records().await.unwrap();
    let (sr, record) = srs
        .iter()
        .find(|(_, sr)| &*sr.name_label == "Shared NFS")
        .or_else(|| srs.iter().find(|(_, sr)| sr.shared))
        .unwrap();
    sim.faults().fill_sr(&*record.uuid);
    let before = session.vm().get_all_records().await.unwrap().len();
    let error = restore_vm(
        &session,
        &repo,
        &point,
        &RestoreOptions {
            sr: Some(sr.clone()),
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    // the pool refuses the import and closes the connection: the restore reports the task's
    // SR_BACKEND_FAILURE_44, or (a race in the upload: the close arrives while the body is
    // still being written) the transport error of the cut upload
    let text = format!("{error:?} {error}");
    assert!(
        text.contains("SR_BACKEND_FAILURE_44")
            || text.contains("space")
            || text.contains("error writing a body"),
        "{error}"
    );
    assert_eq!(session.vm().get_all_records().await.unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_cancels_the_task_destroys_the_snapshot_and_reports_cancelled() {
    let (sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("cancel");
    options.concurrency = 2;
    // the first export stalls; the job is cancelled while it does
    options.pre_snapshot = Some(arm_once(sim.faults(), |f| {
        f.stall_next_export(Duration::from_secs(30));
    }));
    let cancel = options.cancel.clone();
    let selection = some_vms(&session, 6).await;
    let started = std::time::Instant::now();
    let mut cancel_sent = false;
    let report = run_job_with(&session, &repo, &selection, &options, |event| {
        if !cancel_sent && matches!(&event, JobEvent::Progress(p) if p.phase == xapi_backup::export::Phase::Export && p.bytes_read > 0) {
            cancel_sent = true;
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                cancel.cancel();
            });
        }
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the stall was not waited out"
    );
    assert!(report.cancelled);
    let cancelled = report
        .vms
        .iter()
        .filter(|vm| matches!(vm.outcome, VmOutcome::Cancelled))
        .count();
    assert!(cancelled >= 1, "{}", report.to_json());
    assert_clean(&session, &repo, &report).await;
    // no task of the backup is left pending
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks = session.task().get_all_records().await.unwrap();
    let pending: Vec<_> = tasks
        .values()
        .filter(|t| t.status == xapi_core::api::TaskStatusType::Pending)
        .map(|t| (*t.name_label).to_owned())
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_backup_per_host_at_a_time() {
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let mut options = options("per-host");
    options.per_host = Some(1);
    let report = run(&session, &repo, 8, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    assert!(
        report.max_in_flight_per_host.values().all(|&n| n == 1),
        "{:?}",
        report.max_in_flight_per_host
    );
    assert!(report.max_in_flight <= report.max_in_flight_per_host.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit_holds_the_job_s_rate() {
    let (_sim, session) = demo().await;
    let (_dir, repo) = new_repo().await;
    let limit = 2 << 20;
    let mut options = options("bandwidth");
    options.bandwidth = Some(limit);
    let report = run(&session, &repo, 4, &options).await;
    assert!(all_done(&report), "{}", report.to_json());
    #[allow(clippy::cast_precision_loss)]
    let rate = report.bytes_read as f64 / report.seconds;
    eprintln!(
        "bandwidth limit {limit} B/s: {} bytes in {:.2} s = {rate:.0} B/s",
        report.bytes_read, report.seconds
    );
    assert!(report.bytes_read >= 4 << 20, "enough data to measure");
    // generous: a second's burst allowed, and the job's own calls take time
    #[allow(clippy::cast_precision_loss)]
    let ceiling = limit as f64 * (report.seconds + 1.0) / report.seconds;
    assert!(rate <= ceiling, "{rate} > {ceiling}");
    #[allow(clippy::cast_precision_loss)]
    let floor = limit as f64 * 0.25;
    assert!(rate >= floor, "{rate} < {floor}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_plain_http_to_the_same_host_while_calls_stay_on_tls() {
    let sim = Simulator::start(SimConfig {
        tls: true,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .unwrap();
    assert!(sim.url().starts_with("https://"));
    let plain: url_port::Port = sim.http_url().parse().unwrap();
    let pin = sim.fingerprint().unwrap().parse().unwrap();
    let session = Client::builder(sim.url())
        .tls(xapi_core::client::TlsPolicy::Pinned(pin))
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "plain")
        .await
        .unwrap();
    // the data plane answers in the clear on the plain port, the XAPI calls went over TLS
    let vm = session.vm().get_all().await.unwrap().remove(0);
    let metadata = session
        .get_plain_http(plain.0, "/export_metadata", &[("ref", vm.as_str())], None)
        .await
        .unwrap();
    assert!(metadata.url.starts_with("http://"), "{}", metadata.url);
    assert!(!metadata.bytes(1 << 20).await.unwrap().is_empty());
    let mut figures = Vec::new();
    for transport in [
        xapi_backup::export::Transport::Https,
        xapi_backup::export::Transport::PlainHttp { port: plain.0 },
    ] {
        let (_dir, repo) = new_repo().await;
        let mut options = options("transport");
        options.transport = transport;
        let report = run(&session, &repo, 4, &options).await;
        assert!(all_done(&report), "{}", report.to_json());
        #[allow(clippy::cast_precision_loss)]
        let rate = report.bytes_read as f64 / report.seconds / f64::from(1 << 20);
        figures.push(format!("{transport:?}: {rate:.1} MiB/s"));
    }
    eprintln!("export rates, 4 VMs: {}", figures.join(", "));
}

/// The port of an `http://ADDR:PORT` URL.
mod url_port {
    pub(super) struct Port(pub(super) u16);

    impl std::str::FromStr for Port {
        type Err = String;

        fn from_str(url: &str) -> Result<Self, String> {
            let port = url
                .strip_prefix("http://")
                .and_then(|rest| rest.rsplit_once(':'))
                .ok_or_else(|| format!("not a plain HTTP URL with a port: {url}"))?
                .1
                .trim_end_matches('/');
            port.parse().map(Port).map_err(|e| format!("{url}: {e}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_master_changing_mid_job_is_followed() {
    let (sim, session) = demo().await;
    let sim = Arc::new(sim);
    let (_dir, repo) = new_repo().await;
    let pool = session.pool().get_all_records().await.unwrap();
    let old_master = pool.values().next().unwrap().master.clone();
    let hosts = session.host().get_all_records().await.unwrap();
    let (new_master, new_record) = hosts.iter().find(|(h, _)| **h != old_master).unwrap();
    let new_name = (*new_record.name_label).to_owned();
    let pool_name = sim.pools()[0].name.clone();
    let mut options = options("master");
    let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (hook_sim, hook_moved) = (Arc::clone(&sim), Arc::clone(&moved));
    options.post_snapshot = Some(Hook::callback(move |_| {
        let (sim, moved, pool, host) = (
            Arc::clone(&hook_sim),
            Arc::clone(&hook_moved),
            pool_name.clone(),
            new_name.clone(),
        );
        async move {
            if !moved.swap(true, std::sync::atomic::Ordering::SeqCst) {
                sim.designate_master(&pool, &host)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }));
    let report = run(&session, &repo, 6, &options).await;
    assert!(moved.load(std::sync::atomic::Ordering::SeqCst));
    assert!(all_done(&report), "{}", report.to_json());
    let pool = session.pool().get_all_records().await.unwrap();
    assert_eq!(&pool.values().next().unwrap().master, new_master);
    assert!(
        session.client().url().contains(&*new_record.address),
        "the session followed HOST_IS_SLAVE to {}: {}",
        new_record.address,
        session.client().url()
    );
}
