//! A XAPI pool simulator on loopback that speaks the real protocols.
//!
//! No real XenServer runs on a laptop or in CI, so xapi-sim is the peer of every integration
//! test and the embedded default of the demo. It serves XML-RPC on `/` and `/RPC2` and JSON-RPC
//! (v1 and v2) on `/jsonrpc`, with sessions shared between the two, generic calls for every
//! class of the datamodel (`get_all`, `get_all_records`, `get_record`, `get_by_uuid`,
//! `get_by_name_label`, `get_<field>`, `set_<field>`, `add_to_`/`remove_from_`), `Async.*` calls
//! as tasks, `event.from`, the VM lifecycle and vApp start order on a simulated clock, and the
//! errors real xapi raises.
//!
//! ## What it serves
//!
//! - **Objects**: every class of `xapi_core::api::meta`, fields and defaults from the datamodel,
//!   one-to-many sets kept in step; scenarios `empty`, `demo` (pools `primary` and `dr`, each on
//!   its own port) and `large:N`.
//! - **Data plane**: `GET /export` and `/export_metadata` (XVA by `xapi_backup::format`: xxhash,
//!   `use_compression`; a running VM is refused as xapi refuses it), `PUT /import` (plain or
//!   `restore`/`force`; `force`
//!   accepts bad chunk checksums; a failed import leaves nothing behind),
//!   `PUT /import_metadata` (`restore`, `force`, `dry_run`, `vdi:<src>=<dst>`),
//!   `GET /export_raw_vdi` (`raw`, `vhd`, `tar`), `PUT /import_raw_vdi` (`raw`, `chunked`, `tar`),
//!   `GET`/`PUT /pool/xmldbdump` (restore with `dry_run` and the schema check),
//!   `GET /host_backup` / `PUT /host_restore` (a gzip'd tar of the simulated dom0); credentials
//!   from the cookie or the query, a `task-id` header and a task on every transfer. Paths are
//!   routed as xapi's HTTP server routes them (the longest registered prefix per method, so
//!   `/export/` is an export; 403 for a path no handler claims). Downloads are framed as
//!   xapi's: `/export`, `/export_raw_vdi`, `/host_backup` and `/pool/xmldbdump` answer HTTP/1.0
//!   with `Connection: close` and no length, the body ending when the connection closes.
//!   Uploads (`/import`, `/import_metadata`, `/import_raw_vdi`, the database restore) are
//!   answered `200` before their body is read, the outcome going to the task and the response
//!   ending when the work is done; an XVA upload is read up to its end-of-archive marker only,
//!   so a client that streams with an oversized `Content-Length` (Xen Orchestra) is served.
//! - **Storage**: VDIs are sparse files under the state directory; snapshots and clones are
//!   copy-on-write (constant time, split on the first write); changed-block tracking per
//!   64 KiB block (`VDI.enable_cbt`, `list_changed_blocks`, `data_destroy`), and the operations
//!   it blocks refused with `VDI_CBT_ENABLED` (`VDI.set_on_boot`, `VDI.pool_migrate`,
//!   `VM.migrate_send`; storage motion itself is not simulated); `VDI.snapshot`
//!   (keeping CBT), `VDI.clone`, `VDI.copy` (into an existing VDI, differentially against a
//!   base); an NBD server on every host (the master's address, and each member's own on
//!   loopback), listed by `VDI.get_nbd_info` for the hosts that see the VDI's SR, over TLS
//!   (`NBD_OPT_STARTTLS`, each host's own certificate as `cert`) when a network has purpose
//!   `nbd` (the demo's with `--tls`), plain with `insecure_nbd`.
//! - **Disaster recovery**: `SR.enable_database_replication` writes the pool database into a
//!   metadata VDI as xapi's redo log (`xapi_dr::metadata`), on SRs whose SM driver has the
//!   `SR_METADATA` feature (LVM over iSCSI or HBA; the demo's two `Replicated iSCSI` SRs, none
//!   enabled at start); plugging an SR caches the metadata
//!   VDIs of other pools on it (`VDI.read_database_pool_uuid`, `metadata_latest` for the newest
//!   generation per pool); `VDI.open_database` gives a read-only session on such a database;
//!   `VM.recover` / `VM_appliance.recover` bring VMs back from it: every pre-check (SRs, disks,
//!   suspend image, VMs with the same UUID and the version rule, MAC seeds) for every VM of the
//!   call before anything changes, so that a failed recovery leaves the target as it was;
//!   snapshots come with their VM; references are mapped into the target by UUID or nulled
//!   and networks matched by name, then bridge, or made, as xapi's import does; `force` skips
//!   missing disks and running VMs and replaces newer ones.
//! - **What DR pre-checks read**: `pool.enable_ha` / `pool.disable_ha` (`ha_enabled`,
//!   `ha_statefiles`, `ha_host_failures_to_tolerate`); the DR licence (`restrict_dr` in
//!   `pool.restrictions` and `host.license_params`, [`SimHandle::set_dr_restricted`]; while
//!   restricted `DR_task.create` and the recoveries fail with `LICENCE_RESTRICTION`); host
//!   memory (`host_metrics.memory_total` / `memory_free`, `host.compute_free_memory`, and
//!   `VM.start` refusing a VM that does not fit with `HOST_NOT_ENOUGH_FREE_MEMORY`); xapi's six
//!   roles and a second user, [`READ_ONLY_USER`] (the pool's password), whose sessions have the
//!   `read-only` role: `is_local_superuser = false`, a `subject`, `rbac_permissions`, and
//!   `RBAC_PERMISSION_DENIED [permission; reason]` for any call that changes something.
//! - **State**: with a state directory, each pool is saved as DB XML and reloaded on restart,
//!   with its changed-block tracking; database replication resumes on the pool's metadata VDIs
//!   (the log goes on with a full database, then deltas, as xapi's re-enable writes); every
//!   host keeps its certificate (pins hold across restarts).
//!
//!   On the demo's DR pool, `SR.probe` / `DR_task.create` with [`DEMO_MIRROR_DEVICE_CONFIG`] find
//!   the storage mirrors of the primary's two replicated SRs; `SR.probe` runs on the host it
//!   names and checks the device config as the SM driver of its type does; `DR_task.create`
//!   introduces only SRs holding metadata and undoes what it introduced when it fails;
//!   `SR.introduce`, `PBD.plug` (which scans the mirror), `SR.scan`, `PBD.unplug`, `SR.forget`
//!   and `DR_task.destroy` (through `PBD.unplug`) follow xapi.
//!
//! - **Pool members**: on loopback, each host other than the master listens on its own
//!   `host.address` (127.0.0.2, ...) with the master's port (with `--tls`, over HTTPS with a
//!   certificate of its own: [`PoolEndpoint::member_fingerprints`]), answers `HOST_IS_SLAVE`
//!   to RPCs and redirects data-plane requests to the master with a 302.
//!
//!   The mirror is an explicit state ([`MirrorMode`]): `mirrored` (the DR side's images are the
//!   primary's, so writes on the primary replicate, and the DR side refuses writes through NBD
//!   and `/import_raw_vdi` with `VDI_READONLY`), `broken` (the DR images become independent
//!   copies, writable, and the sides diverge) and `resync` (the DR images are overwritten from
//!   the primary and the mirror is `mirrored` again). Switch it with
//!   [`SimHandle::set_mirror_mode`] or `POST /_sim/mirror?mode=...` on the DR pool.
//!
//! Not simulated (yet): `live`/`check_cpu` of `/import_metadata`;
//! a host restore validates the archive and stages nothing (xapi writes it to the backup
//! partition for the next boot).
//!
//! ```no_run
//! # async fn demo() -> Result<(), xapi_sim::Error> {
//! use xapi_sim::{Scenario, SimConfig, Simulator};
//!
//! let sim = Simulator::start(SimConfig::with_scenario(Scenario::Demo)).await?;
//! println!("primary pool at {}", sim.pool("primary").map_or("?", |p| p.url.as_str()));
//! sim.clock().set_speed(1000.0); // vApp start delays pass 1000 times faster
//! sim.faults().invalidate_session_after(10); // the 11th call gets SESSION_INVALID
//! # Ok(()) }
//! ```
//!
//! ## Disaster recovery in a test
//!
//! A test plays a whole site failure on the demo (see `tests/integration/dr_failback.rs`):
//!
//! 1. start it with a fast clock (`SimConfig { clock_speed: 10_000.0, .. }`: start delays cost
//!    no real time, yet each start is stamped in `VM_metrics.start_time` with the simulated
//!    time, [`SimClock::now`], so order and delays can be asserted);
//! 2. on the primary, `SR.enable_database_replication` on one or both of
//!    [`DEMO_REPLICATED_SRS`];
//! 3. optionally break the mirror of one SR early with [`SimHandle::set_sr_mirror_mode`]: its
//!    DR-side copy stays at an older database generation (a stale copy, `metadata_latest =
//!    false` once both are plugged);
//! 4. the disaster: break the other mirror too (mirroring halted) and make the primary a lost
//!    site with [`SimHandle::set_reachable`]`("primary", false)`;
//! 5. on the DR pool: `SR.probe` / `DR_task.create` with [`DEMO_MIRROR_DEVICE_CONFIG`] and the
//!    SR UUIDs, `VDI.open_database` on a metadata VDI, `VM_appliance.recover` / `VM.recover`
//!    with the DR pool's session as `session_to`, then start;
//! 6. failback: the DR pool enables replication on the introduced SR,
//!    [`SimHandle::reverse_mirror`] points the primary's SR at the DR side's copy, the primary
//!    answers again (`set_reachable(.., true)`), `SR.scan` on it shows the DR pool's metadata
//!    VDI, and the same recovery runs into the primary (its stale VMs replaced by the version
//!    rule once halted).
//!
//! [`Faults::fail_call`] fails the Nth call of a method (`VM.recover`, or the `PBD.plug` inside
//! `DR_task.create`) to stop a run midway.
//!
//! ## Admin endpoints
//!
//! Every pool also answers, for tests written in other languages:
//! - `POST /_sim/fault?delay_ms=N` (delay every RPC response), `?http_500=N` (answer the next N
//!   requests with HTTP 500), `?session_invalid_after=N`, `?fail_next_task=CODE` (the next Async
//!   task fails at progress 0.5 with CODE), `?cut_after_bytes=N` (the next download is cut after
//!   N bytes), `?fill_sr=SR_UUID` (disks cannot be created on that SR:
//!   `SR_BACKEND_FAILURE_44`), `?corrupt_checksum` (the next uncompressed export carries a wrong
//!   checksum member), `?stall_export_ms=N` (the next export's source stalls N ms after its first
//!   MiB: keep-alive chunks go out), `?fail_call=METHOD:NTH:CODE` ([`Faults::fail_call`]),
//!   `?clear`;
//! - `POST /_sim/licence?restrict_dr=true|false` (the DR licence restriction of this pool);
//! - `POST /_sim/clock?speed=F` (simulated delays run F times faster);
//! - `POST /_sim/mirror?mode=mirrored|broken|resync` on a pool that reaches a storage mirror
//!   (the demo's `dr`): switch the mirror and answer its resulting mode; `GET /_sim/mirror`
//!   answers the current mode (404 on a pool without a mirror).

mod api_error;
mod cbt;
mod clock;
mod error;
mod faults;
mod mirror;
mod model;
mod nbd;
mod persist;
mod pool;
mod rpc;
mod scenario;
mod server;
mod sim;
mod storage;
mod timestamp;
mod transfer;

pub use clock::SimClock;
pub use error::Error;
pub use faults::Faults;
pub use mirror::{MirrorMode, UnknownMirrorMode};
pub use rpc::rbac::READ_ONLY_USER;
pub use scenario::{DEMO_MIRROR_DEVICE_CONFIG, DEMO_REPLICATED_SRS, Scenario};
pub use sim::{DEFAULT_PASSWORD, PoolEndpoint, SimConfig, SimHandle, Simulator};
