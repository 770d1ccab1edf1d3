//! `xapictl`: backup, restore and disaster recovery of XenServer / XCP-ng pools.
//!
//! Commands: `demo` (the whole story on the embedded simulator), `sim`, `vm list`, `pool info`,
//! `backup init|run|list|show|verify|forget|prune|export|import`, `restore ID|FILE`,
//! `metadata backup|restore`, `host backup|restore`, `dr inspect|plan|run|failover|failback|
//! test|cleanup|configure`, `completions`. One module per command group under `commands/`;
//! the shared conventions (connection, repository, output, progress bars, signals) in their
//! own modules.
//!
//! Exit codes: 0 done, 1 failed, 2 usage error (bad arguments, no password, a bad pin),
//! 3 partly done (some VMs failed), 4 pre-checks blocked (nothing changed), 130 interrupted.

mod bars;
mod commands;
mod config;
mod connect;
mod exit;
mod html;
mod interrupt;
mod output;
mod repo_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::commands::{
    backup, backup_incremental, backup_repo, backup_xva, demo, dr, dr_configure, dr_plan, dr_run,
    pool, restore, sim, system, vm,
};
use crate::connect::Connection;
use crate::exit::{Exit, Failure};

/// Backup, restore and disaster recovery of XenServer / XCP-ng pools.
///
/// The pool is given by --url or XAPI_URL, the user by --user or XAPI_USER (root by default),
/// the password by XAPI_PASSWORD, --password-file or a prompt: never on the command line.
/// Exit codes: 0 done, 1 failed, 2 usage error, 3 partly done, 4 pre-checks blocked,
/// 130 interrupted.
#[derive(Debug, Parser)]
#[command(name = "xapictl", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true, help_heading = "Output")]
    json: bool,
    /// Progress on stderr: `text` (bars on a terminal, lines otherwise), `json` (one JSON
    /// event per line, for an orchestrator) or `none`.
    #[arg(
        long,
        value_enum,
        global = true,
        default_value = "text",
        help_heading = "Output"
    )]
    progress: output::Progress,
    /// Logs on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Output")]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole story on the embedded simulator: replication, backups, a test failover, a
    /// lost site, the failover, a restore from backup (under a minute, nothing to install).
    Demo(demo::DemoArgs),
    /// Start the XAPI pool simulator in the foreground and print its URLs.
    Sim(sim::SimArgs),
    /// Virtual machines.
    #[command(subcommand)]
    Vm(VmCommand),
    /// The pool.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Disaster recovery.
    #[command(subcommand)]
    Dr(DrCommand),
    /// Backups into a deduplicating repository.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Restore a VM from a restore point or an XVA file (a new VM, or --overwrite in place).
    Restore(restore::RestoreArgs),
    /// Pool database backups.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Host (control domain) backups.
    #[command(subcommand)]
    Host(HostCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the command stops cleanly by itself on Ctrl-C (it hears the cancellation
    /// token); the others are dropped where they stand.
    fn stops_cleanly(&self) -> bool {
        matches!(self, Command::Backup(BackupCommand::Run(_)))
    }
}

#[derive(Debug, Subcommand)]
enum DrCommand {
    /// What a recovery from a metadata VDI image or database dump would bring back (offline).
    Inspect(dr::InspectArgs),
    /// Reconcile copies of metadata against this pool and write a plan with every pre-check.
    Plan(dr_plan::PlanArgs),
    /// Run a plan file with a journal (running it again continues).
    Run(dr_run::RunArgs),
    /// Plan and run a failover into this pool in one go (`dr plan` then `dr run`).
    Failover(PlanAndRun),
    /// Plan and run a failback into this (primary) pool in one go.
    Failback(PlanAndRun),
    /// Plan and run a test failover into this pool, cleaned up afterwards unless --keep.
    Test(TestArgs),
    /// Clean up a test failover from its journal.
    Cleanup(dr_run::CleanupArgs),
    /// Where the pool replicates its database (list, or set with --sr).
    Configure(dr_configure::ConfigureArgs),
}

/// `dr failover` / `dr failback`: the options of `dr plan` and of `dr run`.
#[derive(Debug, clap::Args)]
struct PlanAndRun {
    #[command(flatten)]
    plan: dr_plan::PlanArgs,
    #[command(flatten)]
    run: dr_run::RunFlags,
}

/// `dr test`: a test failover, cleaned up at the end unless `--keep`.
#[derive(Debug, clap::Args)]
struct TestArgs {
    #[command(flatten)]
    go: PlanAndRun,
    /// Leave the recovered VMs for inspection; `dr cleanup --journal` removes them later.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Create a repository (optionally encrypted).
    Init(backup::InitArgs),
    /// Back up VMs of the pool.
    Run(backup::RunArgs),
    /// List the restore points (every kind, or --kind).
    List(backup::ListArgs),
    /// What a restore point holds: its VM, snapshot, streams and sizes.
    Show(backup_repo::ShowArgs),
    /// Read restore points back and check every chunk (exit 1 on any problem).
    Verify(backup_repo::VerifyArgs),
    /// Forget restore points by a retention policy or by id (their data goes at `prune`).
    Forget(backup_repo::ForgetArgs),
    /// Delete the data no restore point references any more (under the maintenance lock).
    Prune(backup_repo::PruneArgs),
    /// Write a VM restore point as a standard XVA file (for `xe vm-import`).
    Export(backup_xva::ExportArgs),
    /// Read an XVA file into the repository as a VM restore point (checksums verified).
    Import(backup_xva::ImportArgs),
    /// Changed-block tracking on VMs' disks, for `backup run --incremental`.
    #[command(subcommand)]
    Cbt(CbtCommand),
}

#[derive(Debug, Subcommand)]
enum CbtCommand {
    /// Enable CBT on every disk of the VMs (it blocks storage motion of those disks).
    Enable(backup_incremental::CbtArgs),
    /// Disable CBT (the next incremental run of these VMs reads their disks in full).
    Disable(backup_incremental::CbtArgs),
}

#[derive(Debug, Subcommand)]
enum MetadataCommand {
    /// Store the pool database (`/pool/xmldbdump`), checked by xapi-dr's reader first.
    Backup(system::SystemBackupArgs),
    /// Restore a pool database after xapi's dry run (--dry-run: only the dry run).
    Restore(system::MetadataRestoreArgs),
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// Store the pool master's host backup (`/host_backup`, its control domain).
    Backup(system::SystemBackupArgs),
    /// Send a host backup to the host's backup partition (`/host_restore`).
    Restore(system::HostRestoreArgs),
}

#[derive(Debug, Subcommand)]
enum VmCommand {
    /// List the VMs (no templates, snapshots or control domains).
    List,
}

#[derive(Debug, Subcommand)]
enum PoolCommand {
    /// The pool, its hosts and storage, and where its database is replicated.
    Info,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    bars::init_logging(cli.verbose);
    if let Err(failure) = cli.connection.resolve() {
        eprintln!("xapictl: {failure}");
        return failure.exit.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("xapictl: cannot start: {err}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(async {
        // `sim` ends on Ctrl-C by design; every other command is interrupted by it.
        if matches!(cli.command, Command::Sim(_)) {
            return Box::pin(run(cli, CancellationToken::new())).await;
        }
        let cancel = interrupt::watch();
        if cli.command.stops_cleanly() {
            // the command hears the token, cleans up and says what it did
            return Box::pin(run(cli, cancel)).await;
        }
        tokio::select! {
            result = Box::pin(run(cli, cancel.clone())) => result,
            () = cancel.cancelled() => Err(Failure {
                exit: Exit::Interrupted,
                message: "interrupted".into(),
            }),
        }
    });
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            eprintln!("xapictl: {failure}");
            failure.exit.into()
        }
    }
}

async fn run(cli: Cli, cancel: CancellationToken) -> Result<Exit, Failure> {
    match cli.command {
        Command::Sim(args) => sim::run(args).await,
        Command::Demo(args) => {
            demo::run(&args, cli.json).await?;
            Ok(Exit::Done)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "xapictl",
                &mut std::io::stdout(),
            );
            Ok(Exit::Done)
        }
        Command::Vm(VmCommand::List) => {
            let session = cli.connection.login().await?;
            let rows = vm::list(&session, cli.connection.url()?).await?;
            vm::print(&rows, cli.json);
            Ok(Exit::Done)
        }
        Command::Dr(DrCommand::Inspect(args)) => {
            let report = dr::inspect(&args, &cli.connection).await?;
            dr::print(&report, cli.json);
            Ok(Exit::Done)
        }
        Command::Dr(DrCommand::Plan(args)) => {
            let session = cli.connection.login().await?;
            let plan = dr_plan::make_plan(&session, cli.connection.url()?, &args).await?;
            dr_plan::print(&plan, cli.json);
            Ok(Exit::Done)
        }
        Command::Dr(DrCommand::Run(args)) => {
            // the plan file first: one edited wrong is a usage error, the pool untouched
            let plan = dr_run::read_plan(&args.plan)?;
            let session = cli.connection.login().await?;
            dr_run::run_plan(
                session,
                cli.connection.url()?,
                plan,
                &args.options,
                cli.json,
                cli.progress,
            )
            .await?;
            Ok(Exit::Done)
        }
        Command::Dr(DrCommand::Failover(mut args)) => {
            args.plan.mode = dr_plan::ModeArg::Failover;
            plan_and_run(&cli.connection, args, cli.json, cli.progress).await
        }
        Command::Dr(DrCommand::Failback(mut args)) => {
            args.plan.mode = dr_plan::ModeArg::Failback;
            plan_and_run(&cli.connection, args, cli.json, cli.progress).await
        }
        Command::Dr(DrCommand::Test(mut args)) => {
            args.go.plan.mode = dr_plan::ModeArg::Test;
            args.go.run.cleanup = !args.keep;
            plan_and_run(&cli.connection, args.go, cli.json, cli.progress).await
        }
        Command::Dr(DrCommand::Cleanup(args)) => {
            let session = cli.connection.login().await?;
            dr_run::cleanup(&session, cli.connection.url()?, &args, cli.json).await?;
            Ok(Exit::Done)
        }
        Command::Dr(DrCommand::Configure(args)) => {
            let session = cli.connection.login().await?;
            let candidates =
                dr_configure::configure(&session, cli.connection.url()?, &args).await?;
            dr_configure::print(&candidates, cli.json);
            Ok(Exit::Done)
        }
        Command::Backup(BackupCommand::Init(args)) => backup::init(&args, cli.json).await,
        Command::Backup(BackupCommand::List(args)) => backup::list(&args, cli.json).await,
        Command::Backup(BackupCommand::Show(args)) => backup_repo::show(&args, cli.json).await,
        Command::Backup(BackupCommand::Verify(args)) => {
            if args.needs_pool() {
                let session = cli.connection.login().await?;
                let url = cli.connection.url()?;
                backup_repo::verify(&args, Some((&session, url)), cli.json).await
            } else {
                backup_repo::verify(&args, None, cli.json).await
            }
        }
        Command::Backup(BackupCommand::Forget(args)) => backup_repo::forget(&args, cli.json).await,
        Command::Backup(BackupCommand::Prune(args)) => backup_repo::prune(&args, cli.json).await,
        Command::Backup(BackupCommand::Cbt(which)) => {
            let session = cli.connection.login().await?;
            let url = cli.connection.url()?;
            match which {
                CbtCommand::Enable(args) => {
                    backup_incremental::set_cbt(&session, url, &args, true, cli.json).await
                }
                CbtCommand::Disable(args) => {
                    backup_incremental::set_cbt(&session, url, &args, false, cli.json).await
                }
            }
        }
        Command::Backup(BackupCommand::Export(args)) => backup_xva::export(&args, cli.json).await,
        Command::Backup(BackupCommand::Import(args)) => backup_xva::import(&args, cli.json).await,
        Command::Metadata(MetadataCommand::Backup(args)) => {
            let session = cli.connection.login().await?;
            system::metadata_backup(&session, cli.connection.url()?, &args, cli.json).await
        }
        Command::Metadata(MetadataCommand::Restore(args)) => {
            let session = cli.connection.login().await?;
            system::metadata_restore(&session, cli.connection.url()?, &args, cli.json).await
        }
        Command::Host(HostCommand::Backup(args)) => {
            let session = cli.connection.login().await?;
            system::host_backup(&session, cli.connection.url()?, &args, cli.json).await
        }
        Command::Host(HostCommand::Restore(args)) => {
            let session = cli.connection.login().await?;
            system::host_restore(&session, cli.connection.url()?, &args, cli.json).await
        }
        Command::Backup(BackupCommand::Run(args)) => {
            let session = cli.connection.login().await?;
            backup::run(
                &session,
                cli.connection.url()?,
                &args,
                cli.json,
                cli.progress,
                &cancel,
            )
            .await
        }
        Command::Restore(args) => {
            let session = cli.connection.login().await?;
            restore::restore(&session, cli.connection.url()?, &args, cli.json).await
        }
        Command::Pool(PoolCommand::Info) => {
            let session = cli.connection.login().await?;
            let info = pool::info(&session, cli.connection.url()?).await?;
            pool::print(&info, cli.json);
            Ok(Exit::Done)
        }
    }
}

/// `dr failover|failback|test`: the plan is made, shown (unless `--json`), and run.
async fn plan_and_run(
    connection: &Connection,
    mut args: PlanAndRun,
    json: bool,
    progress: output::Progress,
) -> Result<Exit, Failure> {
    // running again with the same journal continues: the plan sees what it recovered
    if args.plan.from_journal.is_none() {
        args.plan.from_journal = Some(args.run.journal.clone());
    }
    let session = connection.login().await?;
    let url = connection.url()?;
    let plan = dr_plan::make_plan(&session, url, &args.plan).await?;
    if !json {
        dr_plan::print(&plan, false);
    }
    dr_run::run_plan(session, url, plan, &args.run, json, progress).await?;
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
