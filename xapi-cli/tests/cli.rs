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
    let output = xapictl(&["demo", "--json"], &[]);
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

    // without the key an encrypted repository cannot be opened
    let no_key = xapictl(&["backup", "list", "--repo", repo], &[]);
    assert_one_line_failure(&no_key, 1);
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
