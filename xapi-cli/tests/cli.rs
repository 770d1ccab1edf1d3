//! `xapictl` as a user runs it: the built binary against the simulator over real sockets.
//!
//! The simulator runs on the test's multi-threaded runtime while the test thread waits for the
//! binary; a current-thread runtime would leave nobody to answer it.

use std::process::{Command, Output, Stdio};

use xapi_sim::{DEFAULT_PASSWORD, Scenario, SimConfig, SimHandle, Simulator};

/// The demo simulator (primary and DR pools), plain HTTP or HTTPS.
async fn demo(tls: bool) -> SimHandle {
    Simulator::start(SimConfig {
        tls,
        ..SimConfig::with_scenario(Scenario::Demo)
    })
    .await
    .expect("the demo starts")
}

/// `xapictl ARGS` with only the environment given (no inherited XAPI_*), stdin not a terminal.
fn xapictl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xapictl"));
    command
        .args(args)
        .env_remove("XAPI_URL")
        .env_remove("XAPI_USER")
        .env_remove("XAPI_PASSWORD")
        .env_remove("XAPI_PIN")
        .env_remove("XAPI_POOL")
        .env_remove("XAPI_REPO")
        .env_remove("XAPI_REPO_PASSPHRASE")
        .env_remove("XAPICTL_CONFIG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What a failure must look like: the documented code, one line, no panic or backtrace.
fn assert_one_line_failure(output: &Output, code: i32) -> String {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.starts_with("xapictl: "), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_list_as_json_lists_the_pools_vms() {
    let sim = demo(false).await;
    let url = &sim.pool("primary").unwrap().url;
    let output = xapictl(
        &["vm", "list", "--json"],
        &[("XAPI_URL", url), ("XAPI_PASSWORD", DEFAULT_PASSWORD)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    let vms = json["vms"].as_array().expect("a vms array");
    assert_eq!(
        vms.len(),
        21,
        "the demo primary's VMs, without templates or dom0"
    );
    let web_db = vms
        .iter()
        .find(|vm| vm["name_label"] == "web-db")
        .expect("web-db is listed");
    assert_eq!(web_db["vapp"], "web-shop");
    assert_eq!(web_db["power_state"], "Running");
    assert_eq!(
        web_db["id"].as_str().map(str::len),
        Some(36),
        "the id is the UUID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_list_prints_a_table_and_pool_info_names_the_master() {
    let sim = demo(false).await;
    let url = &sim.pool("primary").unwrap().url;
    let env = [
        ("XAPI_URL", url.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let table = xapictl(&["vm", "list"], &env);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("web-db ")), "{text}");

    let info = xapictl(&["pool", "info", "--json"], &env);
    assert_eq!(info.status.code(), Some(0), "{}", stderr(&info));
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["hosts"][0]["master"], true, "master first");
    assert_eq!(json["hosts"].as_array().unwrap().len(), 2);
    let replicated: Vec<&serde_json::Value> = json["srs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sr| sr["sr_type"] == "lvmoiscsi")
        .collect();
    assert_eq!(replicated.len(), 2);
    assert!(replicated.iter().all(|sr| sr["dr_replication"] == false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_line_and_the_documented_exit_code() {
    let sim = demo(false).await;
    let url = sim.pool("primary").unwrap().url.clone();

    let wrong = xapictl(
        &["vm", "list"],
        &[("XAPI_URL", &url), ("XAPI_PASSWORD", "not-the-password")],
    );
    let text = assert_one_line_failure(&wrong, 1);
    assert!(text.contains("wrong user name or password"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password is never printed"
    );

    let no_password = xapictl(&["vm", "list"], &[("XAPI_URL", &url)]);
    let text = assert_one_line_failure(&no_password, 2);
    assert!(text.contains("XAPI_PASSWORD"), "{text}");

    let no_url = xapictl(&["vm", "list"], &[("XAPI_PASSWORD", DEFAULT_PASSWORD)]);
    let text = assert_one_line_failure(&no_url, 2);
    assert!(text.contains("--url"), "{text}");

    // A closed port: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let refused = xapictl(
        &["vm", "list"],
        &[("XAPI_URL", &closed), ("XAPI_PASSWORD", DEFAULT_PASSWORD)],
    );
    let text = assert_one_line_failure(&refused, 1);
    assert!(text.contains("cannot connect"), "{text}");

    let bad_pin = xapictl(
        &["vm", "list", "--pin", "sha256:zz"],
        &[("XAPI_URL", &url), ("XAPI_PASSWORD", DEFAULT_PASSWORD)],
    );
    assert_one_line_failure(&bad_pin, 2);

    // The password is never an argument.
    let as_argument = xapictl(&["vm", "list", "--password", "x"], &[("XAPI_URL", &url)]);
    assert_eq!(
        as_argument.status.code(),
        Some(2),
        "{}",
        stderr(&as_argument)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_gets_its_fingerprint_and_the_pin_works() {
    let sim = demo(true).await;
    let url = sim.pool("primary").unwrap().url.clone();
    let env = [
        ("XAPI_URL", url.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let refused = xapictl(&["vm", "list"], &env);
    let text = assert_one_line_failure(&refused, 1);
    let pin = text
        .split_whitespace()
        .skip_while(|word| *word != "--pin")
        .nth(1)
        .expect("the message says how to pin")
        .to_owned();
    assert!(pin.starts_with("sha256:"), "{text}");

    let pinned = xapictl(&["vm", "list", "--json", "--pin", &pin], &env);
    assert_eq!(pinned.status.code(), Some(0), "{}", stderr(&pinned));

    let insecure = xapictl(&["vm", "list", "--json", "--insecure"], &env);
    assert_eq!(insecure.status.code(), Some(0));
    assert!(stderr(&insecure).contains("WARNING"), "--insecure is loud");
}

#[test]
fn sim_prints_its_urls_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};

    let mut child = Command::new(env!("CARGO_BIN_EXE_xapictl"))
        .args(["sim", "--scenario", "empty"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").expect("text");
    assert!(
        first.starts_with("xapi-sim listening on http://127.0.0.1:"),
        "{first}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("it ends");
    assert_eq!(
        exit.code(),
        Some(0),
        "Ctrl-C is how the simulator is stopped"
    );
}

#[test]
fn dr_inspect_summarises_a_database_dump_offline() {
    use std::io::Write as _;

    use xapi_dr::metadata::{Database, Manifest, db_xml_bytes};

    let mut db = Database::new(Manifest {
        generation: 4242,
        ..Manifest::default()
    });
    db.insert_row(
        "pool",
        "OpaqueRef:p",
        1,
        1,
        [("uuid", "pool-uuid"), ("name__label", "site A")],
    );
    db.insert_row(
        "VM",
        "OpaqueRef:v",
        1,
        1,
        [
            ("uuid", "vm-uuid"),
            ("name__label", "web 01"),
            ("power_state", "Running"),
            ("version", "3"),
        ],
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&db_xml_bytes(&db)).unwrap();
    let path = file.path().to_str().unwrap().to_owned();

    let output = xapictl(&["dr", "inspect", &path, "--json"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["generation"], 4242);
    assert_eq!(json["pool"]["uuid"], "pool-uuid");
    assert_eq!(json["vms"][0]["name_label"], "web 01");
    assert_eq!(json["vms"][0]["version"], 3);

    let table = xapictl(&["dr", "inspect", &path], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("generation 4242"), "{text}");

    let missing = xapictl(&["dr", "inspect", "/nonexistent/metadata.img"], &[]);
    let text = assert_one_line_failure(&missing, 1);
    assert!(text.contains("/nonexistent/metadata.img"), "{text}");
}

/// `dr inspect URL`: the pool's database dump fetched with the connection's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_inspect_reads_a_dump_from_a_pool_url() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let url = format!("{primary}/pool/xmldbdump");
    let output = xapictl(
        &["dr", "inspect", &url, "--json"],
        &[("XAPI_PASSWORD", DEFAULT_PASSWORD)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        json["vms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|vm| vm["name_label"] == "web-db"),
        "{json}"
    );
    let wrong = xapictl(
        &["dr", "inspect", &url],
        &[("XAPI_PASSWORD", "not-the-password")],
    );
    assert_one_line_failure(&wrong, 1);
}

/// `dr configure`, `dr plan`, `dr run --cleanup`: a test failover from the command line, the
/// plan reviewed as a file in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_configure_plan_and_run_a_test_failover_with_cleanup() {
    let sim = demo(false).await;
    let primary = &sim.pool("primary").unwrap().url;
    let dr = &sim.pool("dr").unwrap().url;
    let env_primary = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let env_dr = [
        ("XAPI_URL", dr.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];

    let listed = xapictl(&["dr", "configure", "--json"], &env_primary);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let candidates: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let sr = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name_label"] == "Replicated iSCSI (DR)")
        .expect("the mirrored SR is a candidate");
    let sr_uuid = sr["uuid"].as_str().unwrap().to_owned();
    let set = xapictl(
        &["dr", "configure", "--sr", &sr_uuid, "--json"],
        &env_primary,
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let after: serde_json::Value = serde_json::from_slice(&set.stdout).unwrap();
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["uuid"] == sr_uuid.as_str() && c["enabled"] == true)
    );

    // the DR site's copy, read offline from the metadata VDI's image
    let client = xapi_core::client::Client::builder(primary).build().unwrap();
    let session = client
        .login_with_password(
            "root",
            xapi_core::client::Password::new(DEFAULT_PASSWORD),
            "1.0",
            "test",
        )
        .await
        .unwrap();
    let vdis = session.vdi().get_all_records().await.unwrap();
    let metadata = vdis
        .values()
        .find(|v| v.r#type == xapi_core::api::VdiType::Metadata)
        .unwrap();
    let image = sim.disk_image("primary", &metadata.uuid).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.json");
    let journal = dir.path().join("run.journal");
    let planned = xapictl(
        &[
            "dr",
            "plan",
            "--mode",
            "test",
            "--image",
            image.to_str().unwrap(),
            "--select",
            "web-shop",
            "--select",
            "mail",
            "--power",
            "halted",
            "-o",
            plan_file.to_str().unwrap(),
            "--html",
            dir.path().join("plan.html").to_str().unwrap(),
        ],
        &env_dr,
    );
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    let html = std::fs::read_to_string(dir.path().join("plan.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("<td>web-db</td>"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing fetched"
    );
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(
        text.contains("StorageAvailable"),
        "the SR to introduce: {text}"
    );

    let storage = format!(
        "{sr_uuid}=lvmoiscsi:{}",
        xapi_sim::DEMO_MIRROR_DEVICE_CONFIG
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let ran = xapictl(
        &[
            "dr",
            "run",
            plan_file.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--apply-fixes",
            "--storage",
            &storage,
            "--cleanup",
            "--json",
        ],
        &env_dr,
    );
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let report: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    let calls = report["calls"].as_array().unwrap();
    let count = |m: &str| calls.iter().filter(|c| c["method"] == m).count();
    assert_eq!(count("VM_appliance.recover"), 1);
    assert_eq!(count("VM.recover"), 1);
    assert_eq!(count("DR_task.destroy"), 1);
    assert_eq!(report["journal"]["cleaned_up"], true);

    // the same in one go: `dr test` plans, runs and cleans up
    let journal3 = dir.path().join("one-go.journal");
    let one_go = xapictl(
        &[
            "dr",
            "test",
            "--image",
            image.to_str().unwrap(),
            "--select",
            "mail",
            "--power",
            "halted",
            "--journal",
            journal3.to_str().unwrap(),
            "--apply-fixes",
            "--storage",
            &storage,
            "--json",
            "--progress",
            "json",
        ],
        &env_dr,
    );
    assert_eq!(one_go.status.code(), Some(0), "{}", stderr(&one_go));
    // NDJSON progress on stderr, one event per line, for an orchestrator
    let events: Vec<serde_json::Value> = stderr(&one_go)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each progress line is JSON"))
        .collect();
    assert!(events.iter().any(|e| e["event"] == "recovered"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "call" && e["method"] == "VM.recover")
    );
    let report: serde_json::Value = serde_json::from_slice(&one_go.stdout).unwrap();
    assert_eq!(report["mode"], "test_failover");
    assert_eq!(report["journal"]["cleaned_up"], true);

    // a blocked plan without --apply-fixes: one line, exit 4
    let journal2 = dir.path().join("second.journal");
    let refused = xapictl(
        &[
            "dr",
            "run",
            plan_file.to_str().unwrap(),
            "--journal",
            journal2.to_str().unwrap(),
            "--json",
        ],
        &env_dr,
    );
    let line = assert_one_line_failure(&refused, 4);
    assert!(line.contains("blocked"), "{line}");
}

#[test]
fn completions_are_printed_for_a_shell() {
    let output = xapictl(&["completions", "bash"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("xapictl") && script.contains("failover"));
}

/// The demo, as the README's first command runs it, with its JSON report checked.
#[test]
fn the_demo_tells_the_whole_story_and_reports_it_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let output = xapictl(&["demo", "--json", "--html", page.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(
        report["backups"].as_array().unwrap().len(),
        21,
        "every VM of the primary"
    );
    assert!(
        report["backup_bytes_stored"].as_u64().unwrap()
            <= report["backup_bytes_read"].as_u64().unwrap()
    );
    assert_eq!(report["test_failover_cleaned_up"], true);
    assert_eq!(report["failover_vms"].as_array().unwrap().len(), 11);
    let starts = report["starts"].as_array().unwrap();
    assert!(
        starts
            .iter()
            .any(|s| s["name_label"] == "web-app-1" && s["at_seconds"].as_i64() >= Some(30))
    );
    assert_eq!(report["restored_vm"], "fileserver");
    assert_eq!(report["restored_vm_power_state"], "Running");

    // the page: self-contained (nothing fetched), with the backups, the timeline and the table
    let html = std::fs::read_to_string(&page).expect("the page is written");
    assert!(html.contains("<h2>Backups</h2>") && html.contains("web-app-1"));
    assert!(html.contains("<h2>Start timeline</h2>") && html.contains("<svg"));
    assert!(html.contains("<h2>Newest wins</h2>"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));
}

/// `backup init --encrypt`, `backup run`, `backup list`, `restore --start`, and the bad inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_init_run_list_and_restore() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let env = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let key = dir.path().join("repo.key");
    let (repo, key) = (repo.to_str().unwrap(), key.to_str().unwrap());

    let init = xapictl(
        &[
            "backup",
            "init",
            "--repo",
            repo,
            "--encrypt",
            "--key-file",
            key,
            "--json",
        ],
        &[],
    );
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    let created: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(created["encrypted"], true);

    let ran = xapictl(
        &[
            "backup",
            "run",
            "--repo",
            repo,
            "--key-file",
            key,
            "--vm",
            "mail",
            "--vm",
            "dns-1",
            "--concurrency",
            "2",
            "--json",
        ],
        &env,
    );
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let job: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(job["vms"].as_array().unwrap().len(), 2);
    assert!(
        job["vms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|vm| vm["outcome"] == "done")
    );

    // without the key an encrypted repository cannot be opened (a usage error: say which key)
    let no_key = xapictl(&["backup", "list", "--repo", repo], &[]);
    assert_one_line_failure(&no_key, 2);
    assert!(
        stderr(&no_key).contains("--key-file"),
        "{}",
        stderr(&no_key)
    );
    let listed = xapictl(
        &[
            "backup",
            "list",
            "--repo",
            repo,
            "--key-file",
            key,
            "--json",
        ],
        &[],
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let points: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mail = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["vm"]["name_label"] == "mail")
        .expect("mail's restore point is listed");
    let id = mail["id"].as_str().unwrap().to_owned();

    let restored = xapictl(
        &[
            "restore",
            &id,
            "--repo",
            repo,
            "--key-file",
            key,
            "--name",
            "mail-copy",
            "--start",
            "--json",
        ],
        &env,
    );
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let vm: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(vm["name_label"], "mail-copy");
    assert_eq!(vm["power_state"], "Running");

    // bad input: an unknown VM, an unknown restore point, nothing selected
    let unknown = xapictl(
        &[
            "backup",
            "run",
            "--repo",
            repo,
            "--key-file",
            key,
            "--vm",
            "nope",
        ],
        &env,
    );
    assert!(assert_one_line_failure(&unknown, 2).contains("nope"));
    let missing = xapictl(
        &["restore", "no-such-id", "--repo", repo, "--key-file", key],
        &env,
    );
    assert!(assert_one_line_failure(&missing, 2).contains("backup list"));
    let nothing = xapictl(&["backup", "run", "--repo", repo, "--key-file", key], &env);
    assert_one_line_failure(&nothing, 2);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_show_verify_forget_and_prune() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let env = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo_path = dir.path().join("repo");
    let repo = repo_path.to_str().unwrap();
    let init = xapictl(&["backup", "init", "--repo", repo], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    for _ in 0..2 {
        let ran = xapictl(
            &[
                "backup", "run", "--repo", repo, "--vm", "dns-1", "--vm", "dns-2", "--json",
            ],
            &env,
        );
        assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    }
    let listed = xapictl(
        &["backup", "list", "--repo", repo, "--kind", "vm", "--json"],
        &[],
    );
    let points: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 4, "two runs of two VMs");
    let id = points[0]["id"].as_str().unwrap();

    // show: the manifest, as JSON and as text
    let shown = xapictl(&["backup", "show", id, "--repo", repo, "--json"], &[]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let manifest: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(manifest["id"], id);
    assert_eq!(manifest["kind"], "vm");
    assert!(!manifest["streams"].as_array().unwrap().is_empty());
    let text = xapictl(&["backup", "show", id, "--repo", repo], &[]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("STREAM"));
    let unknown = xapictl(&["backup", "show", "no-such-id", "--repo", repo], &[]);
    assert!(assert_one_line_failure(&unknown, 2).contains("backup list"));

    // verify: clean, whole repository and one restore point with its data read back
    let verified = xapictl(
        &["backup", "verify", "--repo", repo, "--read-data", "--json"],
        &[],
    );
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["restore_points"], 4);
    assert!(report["chunks_read"].as_u64().unwrap() > 0);
    assert!(report["problems"].as_array().unwrap().is_empty());

    // forget: keep the newest of each VM; a dry run first changes nothing
    let dry = xapictl(
        &[
            "backup",
            "forget",
            "--repo",
            repo,
            "--keep-last",
            "1",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let still = xapictl(&["backup", "list", "--repo", repo, "--json"], &[]);
    let still: serde_json::Value = serde_json::from_slice(&still.stdout).unwrap();
    assert_eq!(
        still.as_array().unwrap().len(),
        4,
        "a dry run forgets nothing"
    );
    let no_rule = xapictl(&["backup", "forget", "--repo", repo], &[]);
    assert!(assert_one_line_failure(&no_rule, 2).contains("--keep-last"));
    let forgot = xapictl(
        &[
            "backup",
            "forget",
            "--repo",
            repo,
            "--keep-last",
            "1",
            "--json",
        ],
        &[],
    );
    assert_eq!(forgot.status.code(), Some(0), "{}", stderr(&forgot));
    let decisions: serde_json::Value = serde_json::from_slice(&forgot.stdout).unwrap();
    let forgotten: usize = decisions["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["forgotten"].as_array().unwrap().len())
        .sum();
    assert_eq!(forgotten, 2, "the older restore point of each VM");

    // prune: twice with no grace (a first mark, then the deletion)
    for _ in 0..2 {
        let pruned = xapictl(
            &[
                "backup",
                "prune",
                "--repo",
                repo,
                "--grace-hours",
                "0",
                "--json",
            ],
            &[],
        );
        assert_eq!(pruned.status.code(), Some(0), "{}", stderr(&pruned));
    }
    let verified = xapictl(&["backup", "verify", "--repo", repo, "--json"], &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["restore_points"], 2);
    assert!(
        report["orphans"].as_array().unwrap().is_empty(),
        "prune removed what the forgotten restore points alone used: {report}"
    );

    // a flipped byte in a chunk: verify reads it back, names it and exits 1
    let chunk = files_under(&repo_path.join("chunks"))
        .into_iter()
        .next()
        .expect("the repository holds chunks");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&chunk, bytes).unwrap();
    let damaged = xapictl(
        &["backup", "verify", "--repo", repo, "--read-data", "--json"],
        &[],
    );
    assert_eq!(damaged.status.code(), Some(1), "{}", stderr(&damaged));
    let report: serde_json::Value = serde_json::from_slice(&damaged.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["problem"] == "corrupt-chunk"),
        "{report}"
    );

    // a repository of another format version, and no repository at all: one line, exit 2
    let config = repo_path.join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let newer = xapictl(&["backup", "list", "--repo", repo], &[]);
    assert!(assert_one_line_failure(&newer, 2).contains("version 9"));
    let nowhere = dir.path().join("nothing-here");
    let none = xapictl(
        &["backup", "list", "--repo", nowhere.to_str().unwrap()],
        &[],
    );
    assert!(assert_one_line_failure(&none, 2).contains("backup init"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_pool_of_the_config_file_stands_for_its_options() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{DEFAULT_PASSWORD}\n")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[pools.lab]\nurl = \"{primary}\"\nuser = \"root\"\npassword_file = \"{}\"\n",
            password.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let listed = xapictl(
        &["vm", "list", "--pool", "lab", "--json"],
        &[("XAPICTL_CONFIG", config)],
    );
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json["vms"].as_array().unwrap().len(), 21);

    // an unknown name says which names exist; -v logs go to stderr, not stdout
    let unknown = xapictl(
        &["vm", "list", "--pool", "prod"],
        &[("XAPICTL_CONFIG", config)],
    );
    assert!(assert_one_line_failure(&unknown, 2).contains("lab"));
    let verbose = xapictl(
        &["vm", "list", "--pool", "lab", "--json", "-vv"],
        &[("XAPICTL_CONFIG", config)],
    );
    assert_eq!(verbose.status.code(), Some(0), "{}", stderr(&verbose));
    serde_json::from_slice::<serde_json::Value>(&verbose.stdout).expect("stdout stays JSON");
    assert!(
        stderr(&verbose).contains("logged in"),
        "{}",
        stderr(&verbose)
    );
    assert!(
        !stderr(&verbose).contains(DEFAULT_PASSWORD),
        "logs never show the password"
    );
}

/// `backup export|import`, `restore FILE --sr`, `backup verify --deep`, `metadata` and `host`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xva_export_import_restore_file_deep_verify_metadata_and_host() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let env = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo_path = dir.path().join("repo");
    let repo = repo_path.to_str().unwrap();
    assert_eq!(
        xapictl(&["backup", "init", "--repo", repo], &[])
            .status
            .code(),
        Some(0)
    );
    let ran = xapictl(&["backup", "run", "--repo", repo, "--vm", "dns-1"], &env);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let listed = xapictl(&["backup", "list", "--repo", repo, "--json"], &[]);
    let points: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = points[0]["id"].as_str().unwrap().to_owned();

    // export: a complete file under the name asked for, nothing else left in the directory
    let xva = dir.path().join("out").join("dns-1.xva");
    std::fs::create_dir(xva.parent().unwrap()).unwrap();
    let exported = xapictl(
        &[
            "backup",
            "export",
            &id,
            "--repo",
            repo,
            "-o",
            xva.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    let report: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(
        report["bytes"].as_u64(),
        Some(std::fs::metadata(&xva).unwrap().len())
    );
    assert_eq!(std::fs::read_dir(xva.parent().unwrap()).unwrap().count(), 1);

    // import into a second repository: a VM restore point of dns-1
    let other = dir.path().join("other");
    let other = other.to_str().unwrap();
    assert_eq!(
        xapictl(&["backup", "init", "--repo", other], &[])
            .status
            .code(),
        Some(0)
    );
    let imported = xapictl(
        &[
            "backup",
            "import",
            xva.to_str().unwrap(),
            "--repo",
            other,
            "--json",
        ],
        &[],
    );
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let imported: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(imported["vm"], "dns-1");
    let garbage = dir.path().join("garbage.xva");
    std::fs::write(&garbage, b"not an xva at all").unwrap();
    let refused = xapictl(
        &[
            "backup",
            "import",
            garbage.to_str().unwrap(),
            "--repo",
            other,
        ],
        &[],
    );
    assert_one_line_failure(&refused, 1);

    // restore the file itself onto the shared NFS SR (named), as a new VM
    let restored = xapictl(
        &[
            "restore",
            xva.to_str().unwrap(),
            "--sr",
            "Shared NFS",
            "--name",
            "dns-1-from-file",
            "--json",
        ],
        &env,
    );
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let vm: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(vm["name_label"], "dns-1-from-file");
    let ambiguous = xapictl(
        &["restore", &id, "--repo", repo, "--sr", "no such SR"],
        &env,
    );
    assert!(assert_one_line_failure(&ambiguous, 2).contains("no SR"));

    // deep verify: restored, started paused, removed; the pool's VM count unchanged after
    let before = xapictl(&["vm", "list", "--json"], &env);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    let deep = xapictl(
        &["backup", "verify", &id, "--deep", "--repo", repo, "--json"],
        &env,
    );
    assert_eq!(deep.status.code(), Some(0), "{}", stderr(&deep));
    let results: serde_json::Value = serde_json::from_slice(&deep.stdout).unwrap();
    assert_eq!(results[0]["ok"], true, "{results}");
    assert!(!results[0]["removed"].as_array().unwrap().is_empty());
    let after = xapictl(&["vm", "list", "--json"], &env);
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(
        before["vms"].as_array().unwrap().len(),
        after["vms"].as_array().unwrap().len()
    );

    // the pool database: stored, then a dry-run restore that changes nothing
    let meta = xapictl(&["metadata", "backup", "--repo", repo, "--json"], &env);
    assert_eq!(meta.status.code(), Some(0), "{}", stderr(&meta));
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
    let meta_id = meta["id"].as_str().unwrap();
    let dry = xapictl(
        &[
            "metadata",
            "restore",
            meta_id,
            "--dry-run",
            "--repo",
            repo,
            "--json",
        ],
        &env,
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(dry["dry_run_passed"], true);
    assert_eq!(dry["restored"], false);
    let wrong_kind = xapictl(&["metadata", "restore", &id, "--repo", repo], &env);
    assert!(assert_one_line_failure(&wrong_kind, 2).contains("not a pool-metadata"));
    let vm_kind = xapictl(&["restore", meta_id, "--repo", repo], &env);
    assert!(assert_one_line_failure(&vm_kind, 2).contains("not a VM"));

    // the master's host backup, and its restore
    let host = xapictl(&["host", "backup", "--repo", repo, "--json"], &env);
    assert_eq!(host.status.code(), Some(0), "{}", stderr(&host));
    let host: serde_json::Value = serde_json::from_slice(&host.stdout).unwrap();
    let host_id = host["id"].as_str().unwrap();
    let back = xapictl(
        &["host", "restore", host_id, "--repo", repo, "--json"],
        &env,
    );
    assert_eq!(back.status.code(), Some(0), "{}", stderr(&back));
    let kinds = xapictl(&["backup", "list", "--repo", repo, "--json"], &[]);
    let kinds: serde_json::Value = serde_json::from_slice(&kinds.stdout).unwrap();
    let mut seen: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ["host", "pool-metadata", "vm"]);
}

/// `backup cbt enable`, `backup run --incremental` twice: the second reads only changed blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backups_read_only_changed_blocks() {
    // over TLS, as NBD is: the pool's certificate pinned
    let sim = demo(true).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let refused = xapictl(
        &["vm", "list"],
        &[("XAPI_URL", &primary), ("XAPI_PASSWORD", DEFAULT_PASSWORD)],
    );
    let pin = stderr(&refused)
        .split_whitespace()
        .skip_while(|word| *word != "--pin")
        .nth(1)
        .expect("the message says how to pin")
        .to_owned();
    let env = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
        ("XAPI_PIN", pin.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let state = dir.path().join("state");
    assert_eq!(
        xapictl(&["backup", "init", "--repo", repo], &[])
            .status
            .code(),
        Some(0)
    );
    let enabled = xapictl(
        &["backup", "cbt", "enable", "--vm", "dns-1", "--json"],
        &env,
    );
    assert_eq!(enabled.status.code(), Some(0), "{}", stderr(&enabled));
    let enabled: serde_json::Value = serde_json::from_slice(&enabled.stdout).unwrap();
    assert!(enabled["vms"][0]["disks_changed"].as_u64().unwrap() >= 1);

    let run = |label: &str| {
        let output = xapictl(
            &[
                "backup",
                "run",
                "--repo",
                repo,
                "--vm",
                "dns-1",
                "--incremental",
                "--state-dir",
                state.to_str().unwrap(),
                "--json",
            ],
            &env,
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{label}: {}",
            stderr(&output)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let first = run("first");
    assert_eq!(first["vms"][0]["incremental"], false, "{first}");
    assert!(
        first["vms"][0]["full_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "first_run"),
        "{first}"
    );
    assert!(first["nbd_bytes_read"].as_u64().unwrap() > 0);
    let second = run("second");
    assert_eq!(second["vms"][0]["incremental"], true, "{second}");
    assert_eq!(
        second["nbd_bytes_read"], 0,
        "nothing changed, nothing read: {second}"
    );

    // the incremental restore point is a full one: it restores
    let id = second["vms"][0]["restore_point"].as_str().unwrap();
    let restored = xapictl(
        &[
            "restore",
            id,
            "--repo",
            repo,
            "--name",
            "dns-1-incr",
            "--json",
        ],
        &env,
    );
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
}

/// Switches a fault of the simulator on through its admin endpoint.
fn sim_fault(url: &str, query: &str) {
    use std::io::{Read as _, Write as _};
    let authority = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("the simulator listens");
    write!(
        stream,
        "POST /_sim/fault?{query} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Ctrl-C during a backup's export: the task cancelled, the snapshot removed, nothing listed,
/// exit 130 with what was cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_backup_cancels_it_cleanly() {
    use std::io::{BufRead as _, BufReader};

    use xapi_core::client::{Client, Password};

    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    assert_eq!(
        xapictl(&["backup", "init", "--repo", repo], &[])
            .status
            .code(),
        Some(0)
    );
    // the export stalls (with keep-alives) once it has begun
    sim_fault(&primary, "stall_export_ms=60000");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xapictl"))
        .args([
            "backup",
            "run",
            "--repo",
            repo,
            "--vm",
            "dns-1",
            "--progress",
            "json",
        ])
        .env("XAPI_URL", &primary)
        .env("XAPI_PASSWORD", DEFAULT_PASSWORD)
        .env_remove("XAPI_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stderr_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = std::time::Instant::now();
    loop {
        let line = stderr_lines
            .next()
            .expect("progress events until the export")
            .expect("text");
        if line.contains("\"phase\":\"export\"") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let rest: Vec<String> = stderr_lines.map_while(Result::ok).collect();
    let exit = child.wait().expect("it ends");
    assert_eq!(exit.code(), Some(130), "{rest:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "cancelled, not waited out"
    );
    let last = rest.last().cloned().unwrap_or_default();
    assert!(
        last.contains("interrupted") && last.contains("snapshots removed"),
        "{rest:?}"
    );
    sim_fault(&primary, "clear");

    // nothing listed, no snapshot left on the pool
    let listed = xapictl(&["backup", "list", "--repo", repo, "--json"], &[]);
    let points: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 0);
    let session = Client::builder(&primary)
        .build()
        .unwrap()
        .login_with_password("root", Password::new(DEFAULT_PASSWORD), "1.0", "test")
        .await
        .unwrap();
    let vms = session.vm().get_all_records().await.unwrap();
    let snapshots: Vec<_> = vms
        .values()
        .filter(|vm| vm.is_a_snapshot && vm.tags.iter().any(|t| &**t == "xapi-backup:snapshot"))
        .collect();
    assert!(
        snapshots.is_empty(),
        "{} backup snapshots left",
        snapshots.len()
    );
}

/// Some VMs backed up and one failed: exit 3, the report says which; a plan file edited wrong
/// is a usage error found before the pool is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_done_backup_exits_3_and_a_plan_edited_wrong_exits_2() {
    let sim = demo(false).await;
    let primary = sim.pool("primary").unwrap().url.clone();
    let env = [
        ("XAPI_URL", primary.as_str()),
        ("XAPI_PASSWORD", DEFAULT_PASSWORD),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let init = xapictl(&["backup", "init", "--repo", repo], &[]);
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));

    // the first snapshot of the job fails for good (not an error worth retrying)
    sim_fault(&primary, "fail_call=VM.snapshot:1:VM_BAD_POWER_STATE");
    let ran = xapictl(
        &[
            "backup",
            "run",
            "--repo",
            repo,
            "--vm",
            "dns-1",
            "--vm",
            "ldap",
            "--concurrency",
            "1",
            "--json",
        ],
        &env,
    );
    assert_eq!(ran.status.code(), Some(3), "{}", stderr(&ran));
    let job: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    let outcomes: Vec<&str> = job["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| vm["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "done").count(),
        1,
        "{job}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "failed").count(),
        1,
        "{job}"
    );

    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, r#"{"mode": "failover", "steps": "edited by hand"}"#).unwrap();
    let refused = xapictl(
        &[
            "dr",
            "run",
            plan.to_str().unwrap(),
            "--journal",
            dir.path().join("journal.json").to_str().unwrap(),
        ],
        &env,
    );
    let line = assert_one_line_failure(&refused, 2);
    assert!(
        line.contains("plan.json") && line.contains("not a plan"),
        "{line}"
    );
    assert!(!dir.path().join("journal.json").exists(), "nothing was run");
}
