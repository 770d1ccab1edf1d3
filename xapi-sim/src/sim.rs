//! Starting a simulator: configuration, the handle tests hold, and the lines the binary prints.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;
use xapi_core::api::meta;

use crate::clock::SimClock;
use crate::error::Error;
use crate::faults::Faults;
use crate::nbd;
use crate::persist;
use crate::pool::NbdServer;
use crate::pool::Pool;
use crate::scenario::{self, Scenario};
use crate::server::{self, tls};
use crate::storage::Storage;

/// The password of `root` unless another is configured.
pub const DEFAULT_PASSWORD: &str = "xapi-sim";

/// How to start a simulator. Its `Debug` leaves the password out.
#[derive(Clone)]
pub struct SimConfig {
    /// Address of the first pool; later pools take the following ports (or ephemeral ports when
    /// the port is 0).
    pub listen: SocketAddr,
    /// Directory for disk images and saved state; created when missing. Without one, a
    /// temporary directory is used and removed when the handle is dropped.
    pub state_dir: Option<PathBuf>,
    /// The pools to start with.
    pub scenario: Scenario,
    /// The password `root` logs in with.
    pub password: String,
    /// Serve HTTPS with a generated self-signed certificate.
    pub tls: bool,
    /// Speed factor of the simulated clock (1.0 = real time).
    pub clock_speed: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            scenario: Scenario::Empty,
            password: DEFAULT_PASSWORD.to_owned(),
            tls: false,
            clock_speed: 1.0,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("scenario", &self.scenario)
            .field("password", &Redacted)
            .field("tls", &self.tls)
            .field("clock_speed", &self.clock_speed)
            .finish()
    }
}

/// What `Debug` prints instead of a password: `<redacted>`.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SimConfig {
    /// The default configuration with another scenario.
    pub fn with_scenario(scenario: Scenario) -> Self {
        Self {
            scenario,
            ..Self::default()
        }
    }
}

/// Where one simulated pool listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEndpoint {
    /// The pool's name (`sim`, or `primary` / `dr` in the demo).
    pub name: String,
    /// The socket address.
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://ADDR`.
    pub url: String,
    /// Plain HTTP to the same master, as a host serves it on port 80 next to HTTPS on 443: with
    /// TLS, `http://` and a port of its own; without, the same as `url`.
    pub http_url: String,
    /// Where the master's NBD server listens (the first entry `VDI.get_nbd_info` returns for a
    /// disk the master sees; each member serves NBD on its own address with the same port).
    pub nbd_addr: SocketAddr,
    /// The pool members other than the master (next to a master on 127.0.0.1): each answers
    /// `HOST_IS_SLAVE` to RPCs and redirects data-plane requests to the master.
    pub member_urls: Vec<String>,
    /// With TLS, the lower-case hex SHA-256 fingerprint of each member's own certificate, in the
    /// order of `member_urls` (empty without TLS).
    pub member_fingerprints: Vec<String>,
}

/// The entry point: [`Simulator::start`].
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Build the scenario's pools and serve each on its own port. Serving stops when the handle
    /// is dropped or [`SimHandle::shutdown`] is called.
    pub async fn start(config: SimConfig) -> Result<SimHandle, Error> {
        let (state_dir, scratch) = if let Some(dir) = &config.state_dir {
            std::fs::create_dir_all(dir).map_err(|source| Error::State {
                path: dir.clone(),
                source,
            })?;
            (dir.clone(), None)
        } else {
            let scratch = tempfile::Builder::new()
                .prefix("xapi-sim-")
                .tempdir()
                .map_err(|source| Error::State {
                    path: std::env::temp_dir(),
                    source,
                })?;
            (scratch.path().to_owned(), Some(scratch))
        };
        let clock = SimClock::new(config.clock_speed);
        let faults = Faults::default();
        let mut tasks = Vec::new();
        let mut saves = Vec::new();
        let mut pools = Vec::new();
        for name in config.scenario.pool_names() {
            let vdi_dir = state_dir.join(name).join("vdis");
            let storage = Storage::open(&vdi_dir).map_err(|source| Error::State {
                path: vdi_dir.clone(),
                source,
            })?;
            let pool = Pool::new(
                name,
                meta::CLASSES,
                &config.password,
                clock.clone(),
                faults.clone(),
                storage,
            );
            let state_path = persist::state_file(&state_dir, name);
            if let Some(saved) = persist::load(meta::CLASSES, name, &state_path)? {
                pool.replace_db(saved);
                // as xapi at each start: every installed SM driver has its record
                let registered = {
                    let mut db = pool.db();
                    crate::rpc::rbac::register_roles(&mut db)
                        .and_then(|()| crate::model::sm::register_drivers(&mut db))
                };
                registered.map_err(|f| Error::Build {
                    scenario: config.scenario.to_string(),
                    code: f.code.as_str().to_owned(),
                    params: f.params,
                })?;
                persist::resume(&pool, persist::load_cbt(&state_path)?);
            } else {
                scenario::build(&pool, &config.scenario, name).map_err(|f| Error::Build {
                    scenario: config.scenario.to_string(),
                    code: f.code.as_str().to_owned(),
                    params: f.params,
                })?;
                if config.tls && config.scenario == Scenario::Demo {
                    secure_nbd_networks(&pool);
                }
            }
            let pool = Arc::new(pool);
            if config.state_dir.is_some() {
                tasks.extend(persist::spawn_saver(Arc::clone(&pool), state_path.clone()));
                saves.push((Arc::clone(&pool), state_path));
            }
            pools.push(pool);
        }
        let identity = masters_identity(&pools, &state_dir.join("tls"))?;
        let http_identity = config.tls.then(|| identity.clone());
        let scheme = if config.tls { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            let mut addr = config.listen;
            if addr.port() != 0 {
                addr.set_port(addr.port() + i as u16);
            }
            let (local, task) =
                server::listen(Arc::clone(pool), addr, http_identity.clone()).await?;
            // a host serves plain HTTP next to HTTPS (ports 80 and 443)
            let http_url = if config.tls {
                let (plain, plain_task) =
                    server::listen(Arc::clone(pool), SocketAddr::new(local.ip(), 0), None).await?;
                tasks.push(plain_task);
                format!("http://{plain}")
            } else {
                format!("http://{local}")
            };
            let (nbd_local, nbd_task) = nbd::listen(
                Arc::clone(pool),
                SocketAddr::new(local.ip(), 0),
                identity.clone(),
            )
            .await?;
            tasks.push(nbd_task);
            {
                let db = pool.db();
                let master = crate::rpc::session::master_host(&db);
                let subject = db
                    .str_field("host", &master, "hostname")
                    .unwrap_or_else(|_| "localhost".to_owned());
                drop(db);
                pool.add_nbd_server(
                    &master,
                    NbdServer {
                        addr: nbd_local,
                        cert_pem: identity.cert_pem.clone(),
                        subject,
                    },
                );
            }
            let members = start_members(
                pool,
                local,
                nbd_local.port(),
                config.tls,
                &state_dir,
                &mut tasks,
            )
            .await?;
            endpoints.push(PoolEndpoint {
                name: pool.name.clone(),
                addr: local,
                url: format!("{scheme}://{local}"),
                http_url,
                nbd_addr: nbd_local,
                member_urls: members.iter().map(|(url, _)| url.clone()).collect(),
                member_fingerprints: members.into_iter().filter_map(|(_, fp)| fp).collect(),
            });
            tasks.push(task);
        }
        if let (Scenario::Demo, [primary, dr, ..]) = (&config.scenario, pools.as_slice()) {
            scenario::connect_mirror(primary, dr);
        }
        Ok(SimHandle {
            endpoints,
            fingerprint: http_identity.as_ref().map(|i| i.fingerprint.clone()),
            cert_pem: http_identity.map(|i| i.cert_pem),
            faults,
            clock,
            password: config.password,
            _scratch: scratch,
            multi_pool: config.scenario == Scenario::Demo,
            tasks,
            saves,
            pools,
        })
    }
}

/// The certificate of the pools' masters (one for all, so that one fingerprint pins every
/// pool): common name the first master's host name, valid for every master's host name and
/// address.
fn masters_identity(pools: &[Arc<Pool>], dir: &Path) -> Result<tls::TlsIdentity, Error> {
    let mut names = Vec::new();
    for pool in pools {
        let db = pool.db();
        let master = crate::rpc::session::master_host(&db);
        for field in ["hostname", "address"] {
            if let Ok(value) = db.str_field("host", &master, field) {
                names.push(value);
            }
        }
    }
    let subject = names
        .first()
        .cloned()
        .unwrap_or_else(|| "xapi-sim".to_owned());
    tls::stored_host_identity(dir, "masters", &subject, &names)
}

/// Give the networks of purpose `insecure_nbd` the purpose `nbd` instead (the demo with
/// `--tls`: NBD over TLS; xapi refuses a pool with both purposes).
fn secure_nbd_networks(pool: &Pool) {
    let mut db = pool.db();
    for network in db.refs("network").unwrap_or_default() {
        let purposes = db
            .refs_field("network", &network, "purpose")
            .unwrap_or_default();
        if purposes.iter().any(|p| p == "insecure_nbd") {
            let secured = purposes
                .into_iter()
                .map(|p| {
                    xapi_core::wire::Value::String(if p == "insecure_nbd" {
                        "nbd".to_owned()
                    } else {
                        p
                    })
                })
                .collect();
            if let Err(err) = db.set_field(
                "network",
                &network,
                "purpose",
                xapi_core::wire::Value::Array(secured),
            ) {
                tracing::warn!(error = ?err, "cannot make the NBD network secure");
            }
        }
    }
}

/// Start a listener for every member of `pool` other than the master, on the member's
/// `host.address` with the master's port, when the master listens on 127.0.0.1; with `tls`,
/// each member serves HTTPS with a certificate of its own. Each member's URL, and the SHA-256
/// fingerprint of its certificate with `tls`.
async fn start_members(
    pool: &Arc<Pool>,
    master: SocketAddr,
    nbd_port: u16,
    tls: bool,
    state_dir: &Path,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    // members listen on other loopback addresses: only next to a master on 127.0.0.1
    if master.ip() != std::net::IpAddr::from([127, 0, 0, 1]) {
        return Ok(Vec::new());
    }
    let scheme = if tls { "https" } else { "http" };
    let members: Vec<(String, String, String)> = {
        let db = pool.db();
        let master_host = crate::rpc::session::master_host(&db);
        db.refs("host")
            .unwrap_or_default()
            .into_iter()
            .filter(|h| *h != master_host)
            .filter_map(|h| {
                let address = db.str_field("host", &h, "address").ok()?;
                let hostname = db.str_field("host", &h, "hostname").unwrap_or_default();
                Some((h, address, hostname))
            })
            .collect()
    };
    let mut started = Vec::new();
    for (host, address, hostname) in members {
        let Ok(ip) = address.parse::<std::net::IpAddr>() else {
            continue;
        };
        let target = server::member::MasterAddress {
            address: master.ip().to_string(),
            scheme,
            port: master.port(),
        };
        // each member has a certificate of its own: for HTTPS with --tls, for NBD always
        let subject = if hostname.is_empty() {
            address.clone()
        } else {
            hostname.clone()
        };
        let own_identity = tls::stored_host_identity(
            &state_dir.join(&pool.name).join("tls"),
            &address,
            &subject,
            std::slice::from_ref(&address),
        )?;
        start_member_nbd(
            pool,
            &host,
            SocketAddr::new(ip, nbd_port),
            &own_identity,
            &subject,
            tasks,
        )
        .await;
        let identity = tls.then_some(own_identity);
        let fingerprint = identity.as_ref().map(|i| i.fingerprint.clone());
        match server::member::listen(
            Arc::clone(pool),
            SocketAddr::new(ip, master.port()),
            target,
            identity,
        )
        .await
        {
            Ok((local, task)) => {
                tasks.push(task);
                started.push((format!("{scheme}://{local}"), fingerprint));
            }
            Err(err) => tracing::warn!(error = %err, "cannot start a pool member listener"),
        }
    }
    Ok(started)
}

/// A member's NBD server on its own address with the master's NBD port, serving the pool's
/// disks with the member's certificate; recorded for `VDI.get_nbd_info`. A member whose address
/// cannot be bound is left without one (logged).
async fn start_member_nbd(
    pool: &Arc<Pool>,
    host: &str,
    addr: SocketAddr,
    identity: &tls::TlsIdentity,
    subject: &str,
    tasks: &mut Vec<JoinHandle<()>>,
) {
    match nbd::listen(Arc::clone(pool), addr, identity.clone()).await {
        Ok((local, task)) => {
            tasks.push(task);
            pool.add_nbd_server(
                host,
                NbdServer {
                    addr: local,
                    cert_pem: identity.cert_pem.clone(),
                    subject: subject.to_owned(),
                },
            );
        }
        Err(err) => tracing::warn!(%addr, error = %err, "cannot start a pool member's NBD server"),
    }
}

/// A running simulator. Its `Debug` leaves the password out.
pub struct SimHandle {
    endpoints: Vec<PoolEndpoint>,
    fingerprint: Option<String>,
    cert_pem: Option<String>,
    faults: Faults,
    clock: SimClock,
    password: String,
    /// The temporary state directory when none was configured (removed on drop).
    _scratch: Option<tempfile::TempDir>,
    multi_pool: bool,
    tasks: Vec<JoinHandle<()>>,
    /// Pools saved under `--state`, and where.
    saves: Vec<(Arc<Pool>, PathBuf)>,
    /// The pools, in endpoint order.
    pools: Vec<Arc<Pool>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("endpoints", &self.endpoints)
            .field("fingerprint", &self.fingerprint)
            .field("password", &Redacted)
            .field("pools", &self.pools)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// Every pool and where it listens, the first one first.
    pub fn pools(&self) -> &[PoolEndpoint] {
        &self.endpoints
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&PoolEndpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The address of the first pool.
    pub fn addr(&self) -> SocketAddr {
        self.endpoints[0].addr
    }

    /// The URL of the first pool.
    pub fn url(&self) -> &str {
        &self.endpoints[0].url
    }

    /// Make the member `host` (its `name_label`) the master of pool `pool`, as
    /// `Pool.designate_new_master` does, in the middle of whatever runs: `pool.master` names it,
    /// it serves the pool on its own address (`host.address`, the master's port), and the old
    /// master answers RPCs with `HOST_IS_SLAVE [new address]` and data-plane requests with a
    /// redirect, as a member does. Sessions stay valid (they live in the pool's database).
    pub fn designate_master(&self, pool: &str, host: &str) -> Result<(), Error> {
        let failed = |reason: String| Error::NewMaster {
            pool: pool.to_owned(),
            host: host.to_owned(),
            reason,
        };
        let target = self
            .pools
            .iter()
            .find(|p| p.name == pool)
            .ok_or_else(|| Error::NoSuchPool(pool.to_owned()))?;
        let mut db = target.db();
        let host_ref = db
            .find(
                "host",
                "name_label",
                &xapi_core::wire::Value::String(host.to_owned()),
            )
            .ok()
            .and_then(|found| found.into_iter().next())
            .ok_or_else(|| failed("no host of that name".into()))?;
        let address = db
            .str_field("host", &host_ref, "address")
            .map_err(|f| failed(format!("{} {:?}", f.code.as_str(), f.params)))?;
        let pool_ref = db
            .refs("pool")
            .ok()
            .and_then(|pools| pools.into_iter().next())
            .ok_or_else(|| failed("the pool has no pool object".into()))?;
        db.set_field(
            "pool",
            &pool_ref,
            "master",
            xapi_core::wire::Value::String(host_ref),
        )
        .map_err(|f| failed(format!("{} {:?}", f.code.as_str(), f.params)))?;
        drop(db);
        self.faults.move_master(pool, &address);
        Ok(())
    }

    /// The plain-HTTP URL of the first pool (the same as [`url`](Self::url) without TLS).
    pub fn http_url(&self) -> &str {
        &self.endpoints[0].http_url
    }

    /// Lower-case hex SHA-256 fingerprint of the TLS certificate (with `tls` only).
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// The TLS certificate in PEM form (with `tls` only).
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The image file backing a VDI of the pool `pool` (for tests that check disk contents).
    pub fn disk_image(&self, pool: &str, vdi_uuid: &str) -> Option<PathBuf> {
        let index = self.endpoints.iter().position(|e| e.name == pool)?;
        Some(self.pools.get(index)?.storage.path(vdi_uuid))
    }

    /// Writes `data` at `offset` of a VDI's disk as its VM's guest would (for tests that need a
    /// running VM's disk to change): the image is written and the write is logged for
    /// changed-block tracking. A write past the disk's end is refused (`InvalidInput`), an
    /// unknown pool or disk is `NotFound`.
    pub fn write_disk(
        &self,
        pool: &str,
        vdi_uuid: &str,
        offset: u64,
        data: &[u8],
    ) -> std::io::Result<()> {
        let not_found = || {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no disk {vdi_uuid} in pool {pool:?}"),
            )
        };
        let index = self
            .endpoints
            .iter()
            .position(|e| e.name == pool)
            .ok_or_else(not_found)?;
        let pool = self.pools.get(index).ok_or_else(not_found)?;
        let size = std::fs::metadata(pool.storage.path(vdi_uuid))
            .map_err(|_| not_found())?
            .len();
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > size)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "write of {} bytes at {offset} past the end of disk {vdi_uuid} ({size} bytes)",
                    data.len()
                ),
            ));
        }
        pool.storage.write_at(vdi_uuid, offset, data)?;
        pool.note_write(vdi_uuid, offset, data.len() as u64);
        Ok(())
    }

    /// Switch the storage mirrors of the demo, both SRs' at once (`Resync` overwrites the DR
    /// side from the primary and ends as `Mirrored`; once a mirror is reversed, the primary's
    /// reversed mirrors are the ones switched); the resulting mode. One SR's mirror alone:
    /// [`SimHandle::set_sr_mirror_mode`].
    ///
    /// # Errors
    ///
    /// [`Error::NoMirror`] without a mirror (any scenario but `demo`), [`Error::Mirror`] when
    /// the disk images cannot be copied or linked.
    pub fn set_mirror_mode(&self, mode: crate::MirrorMode) -> Result<crate::MirrorMode, Error> {
        for pool in &self.pools {
            if let Some(result) = crate::mirror::switch(pool, mode) {
                return result.map_err(|source| Error::Mirror { mode, source });
            }
        }
        Err(Error::NoMirror)
    }

    /// Switch the storage mirror of one SR of the demo's primary, by its name (one of
    /// [`crate::DEMO_REPLICATED_SRS`]), leaving the other mirror as it is: breaking one leaves
    /// the DR side's copy of its disks, metadata VDI included, as it was at the break (a stale
    /// copy at an older database generation) while the other replicates on. Once reversed
    /// ([`SimHandle::reverse_mirror`]) the reversed mirror is the one switched. The resulting
    /// mode.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchMirror`] when no mirror of an SR of that name exists, [`Error::Mirror`]
    /// when the disk images cannot be copied or linked.
    pub fn set_sr_mirror_mode(
        &self,
        sr_name: &str,
        mode: crate::MirrorMode,
    ) -> Result<crate::MirrorMode, Error> {
        for pool in &self.pools {
            if let Some(mirror) = crate::mirror::mirror_of(pool, sr_name) {
                return crate::mirror::switch_mirror(pool, &mirror, mode)
                    .map_err(|source| Error::Mirror { mode, source });
            }
        }
        Err(Error::NoSuchMirror(sr_name.to_owned()))
    }

    /// The mode of the storage mirror of the SR called `sr_name` (the reversed one once
    /// reversed), `None` when there is none.
    pub fn sr_mirror_mode(&self, sr_name: &str) -> Option<crate::MirrorMode> {
        self.pools
            .iter()
            .find_map(|pool| crate::mirror::mirror_of(pool, sr_name))
            .map(|mirror| mirror.state.mode())
    }

    /// Reverse the broken storage mirror of the SR called `sr_name` for a failback: the pool
    /// whose SR it mirrored (the demo's primary) now reaches, through its own PBD's device
    /// config, the copy of the SR that the other pool (the DR pool, after a failover) has
    /// introduced; the primary's images of the disks both hold are resynced from the DR side,
    /// and what the DR pool writes there (its metadata VDI, once it replicates its database
    /// with `SR.enable_database_replication`) shows on the primary after `SR.scan`. The DR
    /// pool must have introduced the SR (`DR_task.create`).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchMirror`] without such a mirror (or before the DR pool introduced the
    /// SR), [`Error::MirrorNotBroken`] while the mirror still replicates, [`Error::Mirror`]
    /// when the disk images cannot be linked or copied.
    pub fn reverse_mirror(&self, sr_name: &str) -> Result<(), Error> {
        let missing = || Error::NoSuchMirror(sr_name.to_owned());
        let (dr, forward) = self
            .pools
            .iter()
            .find_map(|pool| crate::mirror::mirror_of(pool, sr_name).map(|m| (pool, m)))
            .ok_or_else(missing)?;
        if forward.state.mode() != crate::MirrorMode::Broken {
            return Err(Error::MirrorNotBroken(sr_name.to_owned()));
        }
        if dr.db().by_uuid("SR", &forward.sr_uuid).is_err() {
            return Err(missing());
        }
        let primary = &forward.source;
        let device_config = {
            let db = primary.db();
            let sr = db.by_uuid("SR", &forward.sr_uuid).map_err(|_| missing())?;
            let pbd = db
                .refs_field("SR", &sr, "PBDs")
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(missing)?;
            match db.field("PBD", &pbd, "device_config") {
                Ok(config) => crate::rpc::dr_storage::string_map(Some(config)),
                Err(_) => return Err(missing()),
            }
        };
        crate::mirror::reverse(primary, dr, &forward.sr_uuid, device_config).map_err(|source| {
            Error::Mirror {
                mode: crate::MirrorMode::Resync,
                source,
            }
        })
    }

    /// The mode of the storage mirror of the demo's first replicated SR (`None` without one).
    pub fn mirror_mode(&self) -> Option<crate::MirrorMode> {
        self.pools.iter().find_map(|pool| crate::mirror::mode(pool))
    }

    /// Make the pool called `name` stop answering (`false`: a lost site; every connection to
    /// its port, its members' and its NBD servers is reset at once, open ones are cut), or
    /// answer again
    /// (`true`). Its state is kept meanwhile, and it is still seen through storage mirrors.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPool`] when the simulator has no pool of that name.
    pub fn set_reachable(&self, name: &str, reachable: bool) -> Result<(), Error> {
        self.pool_named(name)?.reachability.set(reachable);
        Ok(())
    }

    /// Restrict disaster recovery by licence on the pool called `name` (`restrict_dr` becomes
    /// `"true"` in `pool.restrictions` and every host's `license_params`; `DR_task.create`,
    /// `VM.recover` and `VM_appliance.recover` then fail with `LICENCE_RESTRICTION`), or lift
    /// the restriction (`false`, as every pool starts).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPool`] when the simulator has no pool of that name.
    pub fn set_dr_restricted(&self, name: &str, restricted: bool) -> Result<(), Error> {
        let pool = self.pool_named(name)?;
        if let Err(err) = crate::rpc::licence::set_dr_restricted(&mut pool.db(), restricted) {
            tracing::warn!(
                pool = name,
                code = err.code.as_str(),
                "cannot switch the DR licence"
            );
        }
        Ok(())
    }

    /// Whether the pool called `name` answers (`None` when there is no such pool).
    pub fn is_reachable(&self, name: &str) -> Option<bool> {
        self.pool_named(name).ok().map(|p| p.reachability.is_up())
    }

    /// The pool called `name`.
    fn pool_named(&self, name: &str) -> Result<&Arc<Pool>, Error> {
        self.pools
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::NoSuchPool(name.to_owned()))
    }

    /// The password `root` logs in with.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The simulated clock (speed it up to skip start delays).
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// The lines the binary prints on start-up, which scripts parse:
    /// `xapi-sim listening on URL` (with ` pool=NAME` when there are several pools), then
    /// `fingerprint sha256:HEX` with TLS.
    pub fn banner_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| {
                if self.multi_pool {
                    format!("xapi-sim listening on {} pool={}", e.url, e.name)
                } else {
                    format!("xapi-sim listening on {}", e.url)
                }
            })
            .collect();
        if let Some(fingerprint) = &self.fingerprint {
            lines.push(format!("fingerprint sha256:{fingerprint}"));
            // with TLS, each pool also serves plain HTTP, as a host does on port 80
            for e in &self.endpoints {
                lines.push(format!("plain http on {} pool={}", e.http_url, e.name));
            }
        }
        lines
    }

    /// Stop accepting connections and, with a state directory, save every pool one last time.
    pub fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
        for (pool, path) in &self.saves {
            if let Err(err) = persist::save(pool, path) {
                tracing::warn!(path = %path.display(), error = %err, "cannot save the pool database");
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_leaves_the_password_out() {
        let config = SimConfig {
            password: "correct horse battery staple".to_owned(),
            ..SimConfig::with_scenario(Scenario::Demo)
        };
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("correct horse"), "{printed}");
        assert!(printed.contains("password: <redacted>"), "{printed}");
        assert!(printed.contains("Demo"), "{printed}");
    }
}
