//! DR decisions at scale: reconcile 10 copies of metadata (two pools, five copies each, the
//! same 10,000 VM UUIDs in both at different versions) against a target holding 2,000 of them,
//! then plan a failover of everything. Goal (issue 11): under one second for both.

use criterion::{Criterion, criterion_group, criterion_main};
use xapi_core::api::{VbdType, VmPowerState};
use xapi_dr::metadata::inspect::{PoolSummary, SrSummary};
use xapi_dr::metadata::{
    DiskSummary, InspectReport, NetworkSummary, Source, VappSummary, VifSummary, VmSummary,
};
use xapi_dr::plan::{Mode, PlanInputs, PlanRequest, TargetHost, TargetPool, TargetSr, plan};
use xapi_dr::reconcile::{Preferences, Recovered, TargetState, TargetVm, reconcile};
use xapi_dr::source::{MetadataCopy, Origin};

const VMS: usize = 10_000;
const GIB: i64 = 1 << 30;

fn vm(index: usize, version: i64) -> VmSummary {
    let uuid = format!("00000000-0000-4000-8000-{index:012}");
    VmSummary {
        uuid: uuid.clone(),
        name_label: format!("vm-{index:05}"),
        power_state: if index.is_multiple_of(3) {
            VmPowerState::Halted
        } else {
            VmPowerState::Running
        },
        vapp: index
            .is_multiple_of(10)
            .then(|| format!("app-{}", index / 100)),
        version,
        order: (index % 4) as i64,
        start_delay: (index % 7) as i64,
        shutdown_delay: 0,
        memory_static_max: GIB,
        vcpus_max: 2,
        ha_restart_priority: String::new(),
        disks: (0..2)
            .map(|d| DiskSummary {
                userdevice: d.to_string(),
                vbd_type: VbdType::Disk,
                vdi_uuid: format!("{uuid}-{d}"),
                vdi_name: format!("disk {d}"),
                virtual_size: 20 * GIB,
                sr_uuid: format!("sr-{}", index % 8),
                sr_name: format!("LUN {}", index % 8),
            })
            .collect(),
        vifs: vec![VifSummary {
            device: "0".into(),
            mac: format!("aa:{:02x}:{:02x}:00:00:01", index / 256 % 256, index % 256),
            network_uuid: format!("net-{}", index % 4),
            network_name: format!("Net {}", index % 4),
            network_bridge: format!("xenbr{}", index % 4),
        }],
        snapshots: index % 2,
        tags: Vec::new(),
    }
}

fn copy(pool: &str, copy_index: usize, generation: i64, version: i64) -> MetadataCopy {
    let vms: Vec<VmSummary> = (0..VMS).map(|i| vm(i, version + (i % 2) as i64)).collect();
    let vapps = (0..VMS / 100)
        .map(|a| VappSummary {
            uuid: format!("app-{a}"),
            name_label: format!("app {a}"),
            vms: (0..10)
                .map(|k| format!("00000000-0000-4000-8000-{:012}", a * 100 + k * 10))
                .collect(),
        })
        .collect();
    MetadataCopy {
        origin: Origin::Vdi {
            vdi_uuid: format!("{pool}-meta-{copy_index}"),
            sr_uuid: format!("sr-{copy_index}"),
        },
        metadata: InspectReport {
            source: Source::XmlDump,
            pool: PoolSummary {
                uuid: pool.to_owned(),
                ..PoolSummary::default()
            },
            generation,
            schema_version: "5.786".into(),
            vms,
            vapps,
            srs: (0..8)
                .map(|s| SrSummary {
                    uuid: format!("sr-{s}"),
                    name_label: format!("LUN {s}"),
                    sr_type: "lvmoiscsi".into(),
                    content_type: "user".into(),
                    shared: true,
                    required: true,
                })
                .collect(),
            networks: (0..4)
                .map(|n| NetworkSummary {
                    uuid: format!("net-{n}"),
                    name_label: format!("Net {n}"),
                    bridge: format!("xenbr{n}"),
                    mtu: 1500,
                })
                .collect(),
            other_vm_rows: 0,
            diagnostics: Vec::new(),
        },
    }
}

fn dr(c: &mut Criterion) {
    // Pool A: five copies, the newest two of equal generation and content. Pool B: five
    // copies holding the same VMs at other versions.
    let mut copies = Vec::new();
    for k in 0..5 {
        copies.push(copy("pool-a", k, 100 + (k as i64).min(3), 3));
        copies.push(copy("pool-b", k, 50 + k as i64, 2));
    }
    let target_state = TargetState {
        vms: (0..2_000)
            .map(|i| TargetVm {
                uuid: format!("00000000-0000-4000-8000-{:012}", i * 5),
                version: 1,
                power_state: VmPowerState::Halted,
            })
            .collect(),
        ..TargetState::default()
    };
    let target = TargetPool {
        uuid: "pool-dr".into(),
        hosts: (0..16)
            .map(|h| TargetHost {
                uuid: format!("h{h}"),
                name_label: format!("dr-{h:02}"),
                memory_free: 1024 * GIB,
            })
            .collect(),
        srs: (0..8)
            .map(|s| TargetSr {
                uuid: format!("sr-{s}"),
                name_label: format!("LUN {s}"),
                attached: true,
            })
            .collect(),
        ..TargetPool::default()
    };
    let mut group = c.benchmark_group("dr");
    group.sample_size(10);
    group.bench_function("reconcile_10_copies_10000_vms", |b| {
        b.iter(|| {
            reconcile(
                &copies,
                &target_state,
                &Recovered::default(),
                &Preferences::default(),
            )
        });
    });
    group.bench_function("reconcile_and_plan_10_copies_10000_vms", |b| {
        b.iter(|| {
            let reconciliation = reconcile(
                &copies,
                &target_state,
                &Recovered::default(),
                &Preferences::default(),
            );
            let planned = plan(
                PlanInputs {
                    copies: &copies,
                    reconciliation: &reconciliation,
                    target: &target,
                    source: None,
                },
                &PlanRequest::new(Mode::Failover),
            )
            .expect("a valid request");
            assert!(planned.vms.len() > 5_000);
            planned
        });
    });
    group.finish();
}

criterion_group!(benches, dr);
criterion_main!(benches);
