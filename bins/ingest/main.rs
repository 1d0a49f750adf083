//! `ingest`: the offline side. Parses arguments, formats output and chooses exit codes; every
//! rule is in `ferry-core`.
//!
//! Architecture invariant: this binary never calls `ferry_core::fetch::net` or `Sources`, so its
//! executable carries no HTTP client (tests/e2e/boundaries.rs checks its symbols).

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod commands;
mod context;

/// mimalloc instead of the system allocator: a CSV import allocates each row on its reading
/// thread and frees it on the merging one, and with glibc's allocator the two threads
/// contended so much that reading beside the merge saved nothing (200,000 rows: 9.8 s
/// merging with the reader beside, 9.7 s reading first; with mimalloc 7.9 s;
/// tests/bench/update-list-scale.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferry_core::formats::approval::Status;

use commands::*;
use context::Context;

const PROGRAM: &str = "ingest";

/// Verifies bundles and keeps the update list on the isolated management server.
#[derive(Parser)]
#[command(name = "ingest", version, max_term_width = 100, after_help = common::EXIT_CODES_HELP)]
struct Cli {
    /// The data directory (registry and content store). Default: /var/lib/ferry/ingest
    /// (ingest.toml in /etc/ferry) as root, %ProgramData%\ferry\ingest elevated or as a
    /// service on Windows, else the user's own data directory; `ingest config show` says
    /// which and why.
    #[arg(long, env = "FERRY_DATA_DIR", global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Override a value of ingest.toml for this run, as notify.smtp.port=2525 (repeatable;
    /// `ingest config show` lists the keys).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keys trusted to sign bundles, per channel.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Check a bundle completely and change nothing.
    Verify(verify::VerifyArgs),
    /// Verify bundles, store their files and register their updates.
    Import(import::ImportArgs),
    /// The update list.
    List(list::ListArgs),
    /// One update in full.
    Show(list::ShowArgs),
    /// The management server's own key pair (created on first use).
    #[command(subcommand, name = "server-key")]
    ServerKey(server_key::ServerKeyCommand),
    /// The state file that lets fetch build a delta bundle.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Prove that registry and store agree: every registered file present with its digest and
    /// read-only, every stored file known; --repair puts right what can be.
    Check(check::CheckArgs),
    /// The append-only, hash-chained log of every accepted and refused bundle and trust change.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Approve updates (by id, or all that a filter matches) for distribution.
    Approve(status::StatusArgs),
    /// Decline updates: they are never distributed.
    Decline(status::StatusArgs),
    /// Put updates back to undefined, for the approval rules to decide again.
    Reset(status::StatusArgs),
    /// Licences that must be accepted before an update can be approved.
    #[command(subcommand)]
    Eula(eula::EulaCommand),
    /// Computers: their inventories, computer groups and policies, which updates each
    /// needs, and the compliance reports.
    #[command(subcommand)]
    Computers(computers::ComputersCommand),
    /// Installation results from the computers: what each installation came to, judged with
    /// the update's exit codes or JP1's return values.
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// Update groups: named sets of updates for rules, reports and distribution points.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Approval rules: standing decisions that every refresh applies (never overriding a
    /// person's decision; a matching decline rule wins over approve rules).
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Register update files downloaded by hand: attach them to the updates that list them,
    /// or make them a new manual update.
    Register(register::RegisterArgs),
    /// Write the update list (statuses, groups, manual registrations) as CSV for another
    /// management server or a spreadsheet.
    ExportList(exchange::ExportArgs),
    /// Merge an update list written by export-list: every row is checked first; revisions
    /// never go down; a status wins only if a person set it later; files never come by CSV.
    ImportList(exchange::ImportArgs),
    /// Write the update groups and their members as CSV.
    ExportGroups(exchange::ExportArgs),
    /// Merge update groups written by export-groups.
    ImportGroups(exchange::ImportArgs),
    /// Re-mark superseded updates and apply the approval rules now (every import ends with
    /// one; run daily so that rules counting days apply without new bundles).
    Refresh(rules::RefreshArgs),
    /// A change report: what an import, registration, CSV import or refresh changed (new,
    /// revised, superseded, rule decisions, files arrived, volumes awaited), as text, JSON or
    /// a self-contained HTML page.
    Report(report::ReportArgs),
    /// The configuration (ingest.toml in the data directory, overridden by --set).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Distribution points: directories that web servers or file shares serve to clients.
    #[command(subcommand)]
    Dp(dp::DpCommand),
    /// Bring distribution points up to date: approved files first, then a new signed index
    /// generation, then one atomic switch of `current`; files no recent index lists are pruned.
    Publish(dp::PublishArgs),
    /// Scheduled ingestion: import the bundles that appear in drop folders (in sequence order,
    /// once they are no longer being written), move each to processed/ or rejected/, refresh
    /// daily, notify, and publish the distribution points that are behind.
    Watch(watch::WatchArgs),
    /// Windows: run `ingest watch` as the service ferry-ingest-watch (install, start, stop,
    /// uninstall). On Linux, the systemd units in samples/schedule/ do this.
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

fn main() -> ExitCode {
    ferry_core::failpoints_setup();
    let cli = Cli::parse();
    common::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let location = common::location(cli.data_dir, "ingest", "--data-dir", "FERRY_DATA_DIR")?;
    let ctx = Context::new(location, cli.set);
    match cli.command {
        Command::Trust(command) => trust::run(&ctx, command),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::List(args) => list::run(&ctx, args),
        Command::Show(args) => list::show(&ctx, args),
        Command::ServerKey(command) => server_key::run(&ctx, command),
        Command::State(command) => state::run(&ctx, command),
        Command::Check(args) => check::run(&ctx, args),
        Command::Audit(command) => audit::run(&ctx, command),
        Command::Approve(args) => status::run(&ctx, args, Status::Approved),
        Command::Decline(args) => status::run(&ctx, args, Status::Declined),
        Command::Reset(args) => status::run(&ctx, args, Status::Undefined),
        Command::Eula(command) => eula::run(&ctx, command),
        Command::Computers(command) => computers::run(&ctx, command),
        Command::Results(command) => results::run(&ctx, command),
        Command::Group(command) => groups::run(&ctx, command),
        Command::Rules(command) => rules::run(&ctx, command),
        Command::Register(args) => register::run(&ctx, args),
        Command::ExportList(args) => exchange::export_list(&ctx, args),
        Command::ImportList(args) => exchange::import_list(&ctx, args),
        Command::ExportGroups(args) => exchange::export_groups(&ctx, args),
        Command::ImportGroups(args) => exchange::import_groups(&ctx, args),
        Command::Refresh(args) => rules::refresh(&ctx, args),
        Command::Report(args) => report::run(&ctx, args),
        Command::Config(command) => config::run(&ctx, command),
        Command::Dp(command) => dp::run(&ctx, command),
        Command::Publish(args) => dp::publish(&ctx, args),
        Command::Watch(args) => watch::run(&ctx, args),
        Command::Service(command) => service::run(&ctx, command),
    }
}
