//! The demo's storage mirror as an explicit state: writes on the primary replicate to the DR
//! side, which refuses writes; broken, both sides take writes and diverge; resync makes the DR
//! side equal the primary again and replication resumes.

use crate::support;

use std::collections::BTreeMap;
use std::io::Read as _;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use xapi_core::client::SessionHandle;
use xapi_sim::{DEMO_MIRROR_DEVICE_CONFIG, MirrorMode, Scenario, SimConfig, SimHandle, Simulator};

const BODY: usize = 256 << 10;

/// Write `body` at the start of the disk `uuid`; the task's status and error info.
async fn upload(session: &SessionHandle, uuid: &str, body: Vec<u8>) -> (String, Vec<String>) {
    let length = body.len() as u64;
    let stream =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) });
    let upload = session
        .put(
            "/import_raw_vdi",
            &[("vdi", uuid), ("format", "raw")],
            None,
            stream,
            length,
        )
        .await
        .unwrap();
    let task = upload.task_id.expect("a task-id header").to_string();
    let status: String = session.call("task.get_status", (&task,)).await.unwrap();
    let info: Vec<String> = session.call("task.get_error_info", (&task,)).await.unwrap();
    (status, info)
}

/// The first `BODY` bytes of the image of `uuid` on `pool`.
fn head(sim: &SimHandle, pool: &str, uuid: &str) -> Vec<u8> {
    let mut file = std::fs::File::open(sim.disk_image(pool, uuid).unwrap()).unwrap();
    let mut bytes = vec![0; BODY];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..BODY)
        .map(|i| (i % 253) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

/// `POST /_sim/mirror?mode=...` over a plain socket, as a test in another language would; the
/// status line and body.
async fn admin(url: &str, mode: &str) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /_sim/mirror?mode={mode} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn mirror_replicates_breaks_diverges_and_resyncs() {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo))
        .await
        .unwrap();
    sim.clock().set_speed(10_000.0);
    let dr_url = sim.pool("dr").unwrap().url.clone();
    let primary = support::login_to(&sim, &sim.pool("primary").unwrap().url).await;
    let dr = support::login_to(&sim, &dr_url).await;

    // attach the mirror on the DR side
    let srs: Vec<String> = primary
        .call("SR.get_by_name_label", ("Replicated iSCSI (DR)",))
        .await
        .unwrap();
    let sr_uuid: String = primary.call("SR.get_uuid", (&srs[0],)).await.unwrap();
    // DR_task.create introduces only SRs that hold metadata (it probes with metadata=true)
    primary
        .call::<()>("SR.enable_database_replication", (&srs[0],))
        .await
        .unwrap();
    let config: BTreeMap<&str, &str> = DEMO_MIRROR_DEVICE_CONFIG.iter().copied().collect();
    dr.call::<String>("DR_task.create", ("lvmoiscsi", &config, vec![sr_uuid]))
        .await
        .unwrap();
    let vdis: Vec<String> = primary.call("SR.get_VDIs", (&srs[0],)).await.unwrap();
    let mut uuid = None;
    for vdi in &vdis {
        let size: u64 = primary.call("VDI.get_virtual_size", (vdi,)).await.unwrap();
        if size >= BODY as u64 {
            uuid = Some(
                primary
                    .call::<String>("VDI.get_uuid", (vdi,))
                    .await
                    .unwrap(),
            );
            break;
        }
    }
    let uuid = uuid.expect("the replicated SR holds a disk");
    dr.call::<String>("VDI.get_by_uuid", (&uuid,))
        .await
        .expect("the DR side sees the mirrored disk");
    assert_eq!(sim.mirror_mode(), Some(MirrorMode::Mirrored));

    // mirrored: the primary's write shows on the DR side, which refuses writes
    let a = pattern(1);
    assert_eq!(upload(&primary, &uuid, a.clone()).await.0, "success");
    assert_eq!(head(&sim, "dr", &uuid), a);
    let (status, info) = upload(&dr, &uuid, pattern(9)).await;
    assert_eq!(status, "failure");
    assert_eq!(info.first().map(String::as_str), Some("VDI_READONLY"));
    assert_eq!(head(&sim, "dr", &uuid), a, "a refused write left no trace");

    // broken (through the admin endpoint): both sides take writes and diverge
    let (line, body) = admin(&dr_url, "broken").await;
    assert!(line.contains(" 200 "), "{line}");
    assert_eq!(body, "broken");
    assert_eq!(sim.mirror_mode(), Some(MirrorMode::Broken));
    let b = pattern(2);
    let c = pattern(3);
    assert_eq!(upload(&primary, &uuid, b.clone()).await.0, "success");
    assert_eq!(upload(&dr, &uuid, c.clone()).await.0, "success");
    assert_eq!(head(&sim, "primary", &uuid), b);
    assert_eq!(head(&sim, "dr", &uuid), c);

    // resync (in process): the DR side equals the primary and replicates again
    assert_eq!(
        sim.set_mirror_mode(MirrorMode::Resync).unwrap(),
        MirrorMode::Mirrored
    );
    assert_eq!(head(&sim, "dr", &uuid), b);
    let d = pattern(4);
    assert_eq!(upload(&primary, &uuid, d.clone()).await.0, "success");
    assert_eq!(head(&sim, "dr", &uuid), d);
    assert_eq!(upload(&dr, &uuid, pattern(5)).await.0, "failure");

    let (line, _) = admin(&dr_url, "sideways").await;
    assert!(line.contains(" 400 "), "{line}");
    let (line, _) = admin(&sim.pool("primary").unwrap().url, "broken").await;
    assert!(line.contains(" 404 "), "{line}");
}

#[tokio::test]
async fn only_the_demo_has_a_mirror() {
    let sim = Simulator::start(SimConfig::with_scenario(Scenario::Empty))
        .await
        .unwrap();
    assert_eq!(sim.mirror_mode(), None);
    assert!(matches!(
        sim.set_mirror_mode(MirrorMode::Broken),
        Err(xapi_sim::Error::NoMirror)
    ));
    assert_eq!("resync".parse::<MirrorMode>(), Ok(MirrorMode::Resync));
    assert!("sideways".parse::<MirrorMode>().is_err());
}
