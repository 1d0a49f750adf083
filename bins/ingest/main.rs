//! `ingest`: the offline side. Parses arguments, formats output and chooses exit codes; every
//! rule is in `ferry-core`.
//!
//! Architecture invariant: this binary never calls `ferry_core::fetch::net` or `Sources`, so its
//! executable carries no HTTP client (tests/e2e/boundaries.rs checks its symbols).

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod config;
mod dp;
mod exchange;
mod groups;
mod register;
mod report;
mod rules;
mod watch;

/// mimalloc instead of the system allocator: a CSV import allocates each row on its reading
/// thread and frees it on the merging one, and with glibc's allocator the two threads
/// contended so much that reading beside the merge saved nothing (200,000 rows: 9.8 s
/// merging with the reader beside, 9.7 s reading first; with mimalloc 7.9 s;
/// tests/bench/update-list-scale.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferry_core::base::clock::Date;
use ferry_core::base::names::{Channel, GroupName, KeyId, UpdateId};
use ferry_core::formats::approval::{Actor, Status};
use ferry_core::formats::freshness::TimeJudgement;
use ferry_core::formats::keys;
use ferry_core::formats::model::{Classification, Severity};
use ferry_core::formats::trust::Allowed;
use ferry_core::ingest::import::{ImportOptions, ImportOutcome, Receipt, ReceiptEntry, ReceiptResult};
use ferry_core::server::datadir::DataDir;
use ferry_core::server::registry::{ListFilter, UpdateSummary};

use common::{code, human_bytes, json_line, safe};

const PROGRAM: &str = "ingest";

/// Verifies bundles and keeps the update list on the isolated management server.
#[derive(Parser)]
#[command(name = "ingest", version, about, max_term_width = 100)]
struct Cli {
    /// The data directory (registry and content store).
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
    Trust(TrustCommand),
    /// Check a bundle completely and change nothing.
    Verify(VerifyArgs),
    /// Verify bundles, store their files and register their updates.
    Import(ImportArgs),
    /// The update list.
    List(ListArgs),
    /// One update in full.
    Show(ShowArgs),
    /// The management server's own key pair (created on first use).
    #[command(subcommand, name = "server-key")]
    ServerKey(ServerKeyCommand),
    /// The state file that lets fetch build a delta bundle.
    #[command(subcommand)]
    State(StateCommand),
    /// Prove that registry and store agree: every registered file present with its digest and
    /// read-only, every stored file known; --repair puts right what can be.
    Check(CheckArgs),
    /// The append-only, hash-chained log of every accepted and refused bundle and trust change.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Approve updates (by id, or all that a filter matches) for distribution.
    Approve(StatusArgs),
    /// Decline updates: they are never distributed.
    Decline(StatusArgs),
    /// Put updates back to undefined, for the approval rules to decide again.
    Reset(StatusArgs),
    /// Licences that must be accepted before an update can be approved.
    #[command(subcommand)]
    Eula(EulaCommand),
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
}

#[derive(Subcommand)]
enum EulaCommand {
    /// Show an update's licence and whether it was accepted.
    Show(ShowArgs),
    /// Accept an update's licence, in the wording it has now (recorded with your name).
    Accept(EulaAcceptArgs),
}

#[derive(Args)]
struct EulaAcceptArgs {
    id: UpdateId,
    /// Who accepts (recorded in the audit log); the login name by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

/// What an update is: the options a filter and a rule share.
#[derive(Args, Clone)]
struct KindArgs {
    /// Only this product (repeatable; letter case is ignored).
    #[arg(long = "product", value_name = "NAME")]
    products: Vec<String>,
    #[arg(long = "classification", value_name = "NAME")]
    classifications: Vec<Classification>,
    #[arg(long = "severity", value_name = "NAME")]
    severities: Vec<Severity>,
}

impl KindArgs {
    fn is_empty(&self) -> bool {
        self.products.is_empty() && self.classifications.is_empty() && self.severities.is_empty()
    }
}

/// Which updates a list or a status change concerns.
#[derive(Args)]
struct FilterArgs {
    #[command(flatten)]
    kind: KindArgs,
    /// Only this approval status: undefined, approved or declined (repeatable).
    #[arg(long = "status", value_name = "STATUS", value_parser = ["undefined", "approved", "declined"])]
    statuses: Vec<String>,
    /// Only this KB number (repeatable), as KB5034122 or 5034122.
    #[arg(long = "kb", value_name = "KB")]
    kbs: Vec<String>,
    /// Only updates released on or before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    released_before: Option<Date>,
    /// Only updates released on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    released_after: Option<Date>,
    /// Only members of this update group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<GroupName>,
    /// Only updates superseded by an update present on this server.
    #[arg(long, conflicts_with = "not_superseded")]
    superseded: bool,
    /// Only updates not superseded by an update present on this server.
    #[arg(long)]
    not_superseded: bool,
}

impl FilterArgs {
    fn is_empty(&self) -> bool {
        self.kind.is_empty()
            && self.statuses.is_empty()
            && self.kbs.is_empty()
            && self.released_before.is_none()
            && self.released_after.is_none()
            && self.groups.is_empty()
            && !self.superseded
            && !self.not_superseded
    }

    fn into_filter(self, available: Option<bool>) -> ListFilter {
        ListFilter {
            products: self.kind.products,
            classifications: self.kind.classifications,
            severities: self.kind.severities,
            statuses: self.statuses,
            kbs: self.kbs,
            released_before: self.released_before,
            released_after: self.released_after,
            groups: self.groups,
            superseded: (self.superseded || self.not_superseded).then_some(self.superseded),
            available,
        }
    }
}

/// The updates a command acts on: ids, or a filter, or --all; never nothing by accident.
#[derive(Args)]
struct Selection {
    /// Update ids; or give a filter, or --all.
    ids: Vec<UpdateId>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Every update in the list.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
}

impl Selection {
    /// The ids and the filter, or the usage error to print.
    fn resolve(self) -> Result<(Vec<UpdateId>, ListFilter), &'static str> {
        if self.ids.is_empty() && self.filter.is_empty() && !self.all {
            return Err("name the updates, give a filter (see --help), or --all");
        }
        if !self.ids.is_empty() && !self.filter.is_empty() {
            return Err("give update ids or a filter, not both");
        }
        Ok((self.ids, self.filter.into_filter(None)))
    }
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    selection: Selection,
    /// Who decides (recorded in the audit log); the login name by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// One JSON object: what changed, what was skipped and why.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Prove the audit log's hash chain intact; prints the number of entries and the head hash.
    Verify(AuditVerifyArgs),
    /// Print the audit log, oldest first.
    List(JsonArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// Register files the store holds but the registry lost, mark missing or damaged files
    /// absent (fetch is then asked for them again), move damaged and unknown files to
    /// quarantine/, make writable files read-only again. Logged in the audit log.
    #[arg(long)]
    repair: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AuditVerifyArgs {
    /// A head hash recorded earlier (in a receipt or on paper): the log must still hold that
    /// entry, which proves no later entry was cut off the end.
    #[arg(long, value_name = "HASH")]
    head: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct JsonArgs {
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ServerKeyCommand {
    /// Write the server's public key (minisign format), for fetch and for branch offices.
    Export(OutArgs),
}

#[derive(Subcommand)]
enum StateCommand {
    /// Write what this server holds as FILE, signed by the server key in FILE.minisig.
    Export(OutArgs),
}

#[derive(Args)]
struct OutArgs {
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Trust a public key (minisign format) for a channel.
    Add(TrustAddArgs),
    /// List trusted keys.
    List(TrustListArgs),
    /// Stop trusting a key.
    Remove(TrustRemoveArgs),
    /// How many distinct trusted keys must sign each bundle of a channel (k of n).
    Threshold(TrustThresholdArgs),
    /// Forget the latest bundle time of a channel, against which expiry is judged, after a
    /// bundle dated in the future made fresh ones look expired (logged).
    ClockReset(ChannelArgs),
    /// Trust another management server's key (`ingest server-key export` there) for the
    /// update lists and groups it exports; never for bundles.
    AddPeer(PeerAddArgs),
    /// Stop trusting a peer server's key.
    RemovePeer(PeerRemoveArgs),
    /// The peer servers' keys trusted for update lists and groups.
    Peers(PeersArgs),
}

#[derive(Args)]
struct PeerAddArgs {
    public_key: PathBuf,
    /// Who acts (recorded in the audit log); the login name by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
struct PeerRemoveArgs {
    key_id: ferry_core::base::names::KeyId,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
struct PeersArgs {
    /// One JSON object per key.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ChannelArgs {
    #[arg(long, default_value = "default")]
    channel: Channel,
}

#[derive(Args)]
struct TrustThresholdArgs {
    /// At least 1 and at most the number of keys the channel trusts.
    threshold: usize,
    #[arg(long, default_value = "default")]
    channel: Channel,
}

#[derive(Args)]
struct TrustAddArgs {
    public_key: PathBuf,
    #[arg(long, default_value = "default")]
    channel: Channel,
    /// Accept the demo key shipped in samples/ (anyone can sign with it).
    #[arg(long)]
    allow_demo_key: bool,
}

#[derive(Args)]
struct TrustListArgs {
    #[arg(long)]
    channel: Option<Channel>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrustRemoveArgs {
    key_id: KeyId,
    #[arg(long, default_value = "default")]
    channel: Channel,
}

#[derive(Args)]
struct VerifyArgs {
    bundle: PathBuf,
    /// Do not refuse a bundle past its expiry (see import --allow-expired).
    #[arg(long)]
    allow_expired: bool,
    /// Accept signatures in minisign's legacy form (see import --allow-legacy-signature).
    #[arg(long)]
    allow_legacy_signature: bool,
    /// Accept a rotation to the demo key (see import --allow-demo-key).
    #[arg(long)]
    allow_demo_key: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ImportArgs {
    /// Bundle files, volumes, or directories holding them (a disc, a stick). Volumes are
    /// recognised by their signed manifests, not by their names, and may come in any order.
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    /// One JSON object per bundle.
    #[arg(long)]
    json: bool,
    /// Write a JSON receipt of every check made (keys, each file's digest and size, volume,
    /// time judgement, timings, the audit log's head), accepted or refused, for the records.
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// Accept bundles past their expiry, for example after a long courier delay. Each such
    /// acceptance is recorded in the audit log and the receipt.
    #[arg(long)]
    allow_expired: bool,
    /// Accept signatures in minisign's legacy form ("Ed", over the whole manifest), which
    /// minisign before 0.8 wrote; by default only the prehashed form ferry writes counts.
    #[arg(long)]
    allow_legacy_signature: bool,
    /// Accept a key rotation statement that makes the public demo key trusted (for
    /// demonstrations only: anyone can sign with it).
    #[arg(long)]
    allow_demo_key: bool,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only updates whose files are all in the store.
    #[arg(long, conflicts_with = "unavailable")]
    available: bool,
    /// Only updates still missing files.
    #[arg(long)]
    unavailable: bool,
    /// JSON Lines: one object per update.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ShowArgs {
    id: UpdateId,
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    ferry_core::failpoints_setup();
    let cli = Cli::parse();
    common::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let dir = common::default_dir(cli.data_dir, "ingest", "--data-dir", "FERRY_DATA_DIR")?;
    config::set_overrides(cli.set);
    match cli.command {
        Command::Trust(TrustCommand::Add(args)) => {
            let key = keys::read_public_key(&args.public_key)?;
            if keys::is_demo_key(&key) {
                if !args.allow_demo_key {
                    return Err(ferry_core::Error::DemoKey { key_id: key.key_id }.into());
                }
                eprintln!("{PROGRAM}: warning: trusting the public demo key {}; anyone can sign with it", key.key_id);
            }
            let mut data = DataDir::open_exclusive(&dir)?;
            if data.registry.add_trusted_key(&args.channel, &key)? {
                outln!("key {} is now trusted for channel {}", key.key_id, args.channel);
            } else {
                outln!("key {} was already trusted for channel {}", key.key_id, args.channel);
            }
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::Threshold(args)) => {
            let mut data = DataDir::open_exclusive(&dir)?;
            data.registry.set_threshold(&args.channel, args.threshold)?;
            outln!("channel {}: bundles now need signatures by {} distinct trusted keys", args.channel, args.threshold);
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::ClockReset(args)) => {
            let mut data = DataDir::open_exclusive(&dir)?;
            match data.registry.reset_clock(&args.channel)? {
                Some(t) => outln!(
                    "channel {}: forgot the latest bundle time {t}; expiry is now judged against the system clock ({})",
                    args.channel,
                    ferry_core::base::clock::Timestamp::now()
                ),
                None => outln!("channel {}: no bundle time was recorded; nothing to forget", args.channel),
            }
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::List(args)) => {
            let data = DataDir::open_shared(&dir)?;
            if !args.json {
                for (channel, keys, threshold, version) in data.registry.channel_policies()? {
                    if args.channel.as_ref().is_none_or(|c| c.as_str() == channel) {
                        outln!(
                            "channel {channel}: {threshold} of {keys} trusted keys must sign (trust version {version})"
                        );
                    }
                }
            }
            for k in data.registry.trusted_keys(args.channel.as_ref())? {
                if args.json {
                    json_line(&k)?;
                } else {
                    outln!("{}  channel {}  added {}", k.key_id, k.channel, k.added_at);
                }
            }
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::AddPeer(args)) => {
            let actor = actor(args.by.as_deref())?;
            let key = keys::read_public_key(&args.public_key)?;
            if keys::is_demo_key(&key) {
                return Err(ferry_core::Error::DemoKey { key_id: key.key_id }.into());
            }
            let mut data = DataDir::open_exclusive(&dir)?;
            if data.registry.add_peer_key(&key, &actor)? {
                outln!("peer key {} is now trusted for update lists and groups (never for bundles)", key.key_id);
            } else {
                outln!("peer key {} was already trusted", key.key_id);
            }
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::RemovePeer(args)) => {
            let actor = actor(args.by.as_deref())?;
            let mut data = DataDir::open_exclusive(&dir)?;
            data.registry.remove_peer_key(&args.key_id, &actor)?;
            outln!("peer key {} is no longer trusted", args.key_id);
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::Peers(args)) => {
            let data = DataDir::open_shared(&dir)?;
            let peers = data.registry.peer_keys()?;
            if !args.json && peers.is_empty() {
                outln!("no peer keys (trust one with `ingest trust add-peer FILE`)");
            }
            for p in &peers {
                if args.json {
                    json_line(p)?;
                } else {
                    outln!("{}  added by {} at {}", p.key_id, safe(&p.added_by), p.added_at);
                }
            }
            Ok(code::OK)
        }
        Command::Trust(TrustCommand::Remove(args)) => {
            let mut data = DataDir::open_exclusive(&dir)?;
            data.registry.remove_trusted_key(&args.channel, &args.key_id)?;
            outln!("key {} is no longer trusted for channel {}", args.key_id, args.channel);
            Ok(code::OK)
        }
        Command::Verify(args) => {
            let data = DataDir::open_shared(&dir)?;
            let opts = ImportOptions {
                allow_expired: args.allow_expired,
                allowed: Allowed { legacy_signatures: args.allow_legacy_signature, demo_key: args.allow_demo_key },
            };
            let v = ferry_core::ingest::import::verify(&data, &args.bundle, opts)?;
            warn_time(&v.time);
            if args.json {
                json_line(&v)?;
            } else {
                outln!("verified: {}", safe(&args.bundle.display().to_string()));
                outln!("  {} (bundle {})", v.position(), v.bundle_id);
                outln!("  signed by {}", v.signers.join(", "));
                outln!(
                    "  {} updates; {} payloads, {} checked against their SHA-256",
                    v.updates,
                    v.payloads_verified,
                    human_bytes(v.bytes_verified)
                );
            }
            Ok(code::OK)
        }
        Command::Import(args) => import(&dir, &args),
        Command::ServerKey(ServerKeyCommand::Export(args)) => {
            let data = DataDir::open_exclusive(&dir)?;
            let key = data.export_server_key(&args.out)?;
            outln!("server key {} written to {}", key.key_id, args.out.display());
            Ok(code::OK)
        }
        Command::State(StateCommand::Export(args)) => {
            let data = DataDir::open_exclusive(&dir)?;
            let state = data.export_state(&args.out)?;
            outln!(
                "state written to {} (signature {})",
                args.out.display(),
                ferry_core::formats::state::signature_path(&args.out).display()
            );
            outln!(
                "  {} updates, {} files held, {} still needed; channels: {}",
                state.updates.len(),
                state.files.len(),
                state.needs.len(),
                state
                    .channels
                    .iter()
                    .map(|(c, p)| format!(
                        "{c} at sequence {}",
                        p.highest_sequence.map_or("none".into(), |s| s.to_string())
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(code::OK)
        }
        Command::Check(args) => {
            let mut data = DataDir::open_exclusive(&dir)?;
            let report = ferry_core::ingest::check::check(&mut data, args.repair)?;
            if args.json {
                json_line(&report)?;
            } else {
                outln!("checked {} stored files ({})", report.files_checked, human_bytes(report.bytes_checked));
                for finding in &report.findings {
                    let state = match (report.repaired, finding.repairable()) {
                        (true, true) => "repaired",
                        (_, false) => "NOT REPAIRABLE",
                        (false, true) => "found",
                    };
                    outln!("  {state}: {}", safe(&finding.to_string()));
                }
                if let Some(q) = &report.quarantine {
                    outln!("  moved aside to {}", safe(&q.display().to_string()));
                }
                match (report.findings.len(), report.outstanding()) {
                    (0, _) => outln!("clean: the registry and the store agree"),
                    (_, 0) => outln!("repaired; run `ingest check` again to confirm"),
                    (_, n) if args.repair => outln!("{n} problems remain"),
                    (_, n) => outln!("{n} problems; `ingest check --repair` puts right what can be"),
                }
            }
            if report.outstanding() > 0 {
                eprintln!("{PROGRAM}: check: {} problems outstanding", report.outstanding());
                return Ok(code::INTEGRITY);
            }
            Ok(code::OK)
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            let data = DataDir::open_shared(&dir)?;
            let report = data.registry.verify_audit(args.head.as_deref())?;
            if args.json {
                json_line(&report)?;
            } else {
                outln!("audit log intact: {} entries", report.entries);
                if let Some(head) = &report.head {
                    outln!("  head {head}");
                }
            }
            Ok(code::OK)
        }
        Command::Audit(AuditCommand::List(args)) => {
            let data = DataDir::open_shared(&dir)?;
            data.registry.audit_entries(|entry| {
                if args.json {
                    json_line(&entry).map_err(|e| ferry_core::Error::Invalid(e.to_string()))
                } else {
                    outln!(
                        "{:>6}  {}  {:<18} {}  {}",
                        entry.seq,
                        entry.at,
                        entry.event,
                        safe(&entry.subject),
                        safe(&entry.detail.to_string())
                    );
                    Ok(())
                }
            })?;
            Ok(code::OK)
        }
        Command::List(args) => {
            let data = DataDir::open_shared(&dir)?;
            let available = if args.available {
                Some(true)
            } else if args.unavailable {
                Some(false)
            } else {
                None
            };
            let rows = data.registry.list(&args.filter.into_filter(available))?;
            if args.json {
                for row in &rows {
                    json_line(row)?;
                }
            } else {
                print_table(&rows);
            }
            Ok(code::OK)
        }
        Command::Approve(args) => set_status(&dir, args, Status::Approved),
        Command::Decline(args) => set_status(&dir, args, Status::Declined),
        Command::Reset(args) => set_status(&dir, args, Status::Undefined),
        Command::Group(command) => groups::run(&dir, command),
        Command::Rules(command) => rules::run(&dir, command),
        Command::Refresh(args) => rules::refresh(&dir, args),
        Command::Report(args) => report::run(&dir, args),
        Command::Config(command) => config::run(&dir, command),
        Command::Dp(command) => dp::run(&dir, command),
        Command::Publish(args) => dp::publish(&dir, args),
        Command::Watch(args) => watch::run(&dir, args),
        Command::Register(args) => register::run(&dir, args),
        Command::ExportList(args) => exchange::export_list(&dir, args),
        Command::ImportList(args) => exchange::import_list(&dir, args),
        Command::ExportGroups(args) => exchange::export_groups(&dir, args),
        Command::ImportGroups(args) => exchange::import_groups(&dir, args),
        Command::Eula(EulaCommand::Show(args)) => {
            let data = DataDir::open_shared(&dir)?;
            let view = data.registry.eula(&args.id)?;
            if args.json {
                json_line(&view)?;
                return Ok(code::OK);
            }
            outln!("{}  {}", safe(&view.id), safe(&view.title));
            let required =
                if view.eula.acceptance_required { "must be accepted before approval" } else { "for information" };
            outln!("  licence        {required}");
            if let Some(reference) = &view.eula.reference {
                outln!("  reference      {}", safe(reference));
            }
            match &view.accepted {
                Some(a) => outln!("  accepted       by {} at {}", safe(&a.by), a.at),
                None => outln!("  accepted       no"),
            }
            if let Some(text) = &view.eula.text {
                outln!();
                for line in text.lines() {
                    outln!("  {}", safe(line));
                }
            }
            Ok(code::OK)
        }
        Command::Eula(EulaCommand::Accept(args)) => {
            let actor = actor(args.by.as_deref())?;
            let mut data = DataDir::open_exclusive(&dir)?;
            let view = data.registry.accept_eula(&args.id, &actor)?;
            let a = view.accepted.as_ref().expect("recorded just now");
            outln!("licence of {} accepted by {} at {}", safe(&view.id), safe(&a.by), a.at);
            Ok(code::OK)
        }
        Command::Show(args) => {
            let data = DataDir::open_shared(&dir)?;
            let d = data.registry.show(&args.id)?;
            if args.json {
                json_line(&d)?;
                return Ok(code::OK);
            }
            let s = &d.summary;
            let m = &d.metadata;
            outln!("{}  revision {}", safe(&s.id), s.revision);
            outln!("  title          {}", safe(&s.title));
            outln!("  vendor         {}", safe(&s.vendor));
            outln!("  product        {} {}", safe(&s.product), safe(&s.version));
            outln!("  classification {}  severity {}", s.classification, s.severity);
            if let Some(kb) = &s.kb {
                outln!("  kb             {}", safe(kb));
            }
            if !m.cves.is_empty() {
                outln!("  cves           {}", safe(&m.cves.join(", ")));
            }
            outln!("  released       {}", s.release_date);
            outln!("  status         {} (set by {} at {})", s.status, s.status_set_by, s.status_set_at);
            if let Some(actor) = &d.status_actor {
                outln!("                 {}", safe(actor));
            }
            outln!(
                "  available      {}{}",
                if s.available { "yes" } else { "no" },
                if s.withdrawn { " (withdrawn)" } else { "" }
            );
            outln!("  origin         {} ({})", s.origin, safe(&d.origin_detail));
            if !m.supersedes.is_empty() {
                let ids: Vec<&str> = m.supersedes.iter().map(|i| i.as_str()).collect();
                outln!("  supersedes     {}", safe(&ids.join(", ")));
            }
            if let Some(since) = &d.superseded_since {
                outln!("  superseded     since {since}, by an update present on this server");
            }
            for link in &d.supersedence_chain {
                let state = match (link.known, link.present) {
                    (_, true) => "present",
                    (true, false) => "not present",
                    (false, _) => "not in the list",
                };
                outln!("  superseded by  {} <- {} ({state})", safe(&link.id), safe(&link.by));
            }
            if let Some(eula) = &m.eula {
                outln!(
                    "  eula           acceptance {}",
                    if eula.acceptance_required { "required" } else { "not required" }
                );
            }
            if let Some(install) = &m.install {
                outln!("  install        {} {}", safe(&install.command), safe(&install.arguments.join(" ")));
                outln!(
                    "  exit codes     success {:?}  reboot {:?}  failure {:?} (any other code fails)",
                    install.exit_codes.success,
                    install.exit_codes.reboot,
                    install.exit_codes.failure
                );
            }
            outln!("  files");
            for f in &m.files {
                let present = !d.missing_files.contains(&f.sha256.hex());
                outln!(
                    "    {}  {}  {}  {}",
                    if present { "present" } else { "MISSING" },
                    safe(f.name.as_str()),
                    human_bytes(f.size),
                    f.sha256
                );
            }
            Ok(code::OK)
        }
    }
}

fn import(dir: &std::path::Path, args: &ImportArgs) -> anyhow::Result<u8> {
    let mut data = config::open_configured(dir)?;
    eprintln!("{PROGRAM}: importing into {} (the data directory is locked until done)", dir.display());
    let mut status = code::OK;
    let paths = ferry_core::ingest::import::order_for_import(&args.bundles)?;
    if paths.is_empty() {
        return Err(ferry_core::Error::Invalid("no bundle found in the paths given".into()).into());
    }
    let opts = ImportOptions {
        allow_expired: args.allow_expired,
        allowed: Allowed { legacy_signatures: args.allow_legacy_signature, demo_key: args.allow_demo_key },
    };
    let mut receipt = Receipt::new(&data);
    // The latest word on each volume set seen: which of its volumes are still missing.
    let mut sets: std::collections::BTreeMap<(String, u64), Vec<u32>> = std::collections::BTreeMap::new();
    let by = who();
    let imported =
        ferry_core::ingest::import::import_all(&mut data, &paths, opts, &by, |path, result| -> anyhow::Result<()> {
            match result {
                Ok(outcome) => {
                    if args.json {
                        json_line(&outcome)?;
                    } else {
                        print_outcome(path, &outcome, &mut sets);
                    }
                    receipt.bundles.push(ReceiptEntry {
                        path: path.display().to_string(),
                        result: ReceiptResult::Done(Box::new(outcome)),
                    });
                }
                Err(e) => {
                    receipt
                        .bundles
                        .push(ReceiptEntry { path: path.display().to_string(), result: ReceiptResult::refused(&e) });
                    // Keep going with the other bundles, remember the failure.
                    let code = common::report(PROGRAM, &anyhow::Error::new(e));
                    if status == code::OK {
                        status = code;
                    }
                }
            }
            Ok(())
        })?;
    if args.json {
        let r = &imported.report;
        json_line(&serde_json::json!({"report": r.id, "headline": r.headline(), "refresh": imported.refresh}))?;
    } else {
        report_sets(&sets);
        if let Some(refresh) = imported.refresh.filter(|r| r.worth_showing()) {
            outln!("refreshed the update list:");
            rules::print_refresh(&refresh, "");
        }
        report::print_pointer(imported.report.id);
    }
    config::notify(&data, &imported.report);
    if let Some(out) = &args.receipt {
        receipt.write(&data, out)?;
        if !args.json {
            outln!("receipt written to {}", safe(&out.display().to_string()));
        }
    }
    Ok(status)
}

fn print_outcome(
    path: &std::path::Path,
    outcome: &ImportOutcome,
    sets: &mut std::collections::BTreeMap<(String, u64), Vec<u32>>,
) {
    match outcome {
        ImportOutcome::Accepted { verified: v, changes: c, missing_volumes, .. } => {
            if v.volumes > 1 {
                sets.insert((v.channel.clone(), v.sequence), missing_volumes.clone());
            }
            outln!("imported: {} ({})", safe(&path.display().to_string()), v.position());
            warn_time(&v.time);
            outln!("  signed by {}", v.signers.join(", "));
            outln!(
                "  {} payloads verified ({}); {} files newly stored",
                v.payloads_verified,
                human_bytes(v.bytes_verified),
                c.files_stored
            );
            outln!(
                "  updates: {} new, {} revised, {} unchanged, {} ignored",
                c.new.len(),
                c.revised.len(),
                c.unchanged.len(),
                c.ignored.len()
            );
            for id in &c.status_reset {
                outln!("  {}: files changed in the new revision; approval reset to undefined", safe(id));
            }
            for id in &c.ignored {
                outln!("  {}: older or conflicting metadata ignored; the list keeps its revision", safe(id));
            }
        }
        ImportOutcome::AlreadyImported { verified: v } => {
            outln!("already imported: {} ({}); nothing changed", safe(&path.display().to_string()), v.position());
        }
    }
}

/// Says on stderr when the time judgement needs a person's attention.
fn warn_time(t: &TimeJudgement) {
    if t.clock_behind {
        eprintln!(
            "{PROGRAM}: warning: the system clock ({}) is earlier than the latest accepted bundle ({}); expiry was judged against the latter. If the clock went backwards, set it right; if a bundle was dated in the future, `ingest trust clock-reset` recovers.",
            t.system_clock,
            t.latest_seen.map(|l| l.to_string()).unwrap_or_default()
        );
    }
    if t.expiry_relaxed {
        eprintln!(
            "{PROGRAM}: warning: accepted past its expiry ({}) because of --allow-expired; recorded in the audit log",
            t.expires.map(|e| e.to_string()).unwrap_or_default()
        );
    }
}

fn report_sets(sets: &std::collections::BTreeMap<(String, u64), Vec<u32>>) {
    for ((channel, sequence), missing) in sets {
        if missing.is_empty() {
            outln!("channel {channel} sequence {sequence}: every volume has arrived");
        } else {
            let list: Vec<String> = missing.iter().map(|v| v.to_string()).collect();
            outln!(
                "channel {channel} sequence {sequence}: volume{} {} still missing; updates with files in {} stay unavailable",
                if missing.len() == 1 { "" } else { "s" },
                list.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            );
        }
    }
}

fn print_table(rows: &[UpdateSummary]) {
    if rows.is_empty() {
        outln!("no updates");
        return;
    }
    outln!("{:<10} {:<5} {:<11} {:<24} {:<16} {:<12} TITLE", "STATUS", "AVAIL", "SEVERITY", "ID", "PRODUCT", "VERSION");
    for r in rows {
        outln!(
            "{:<10} {:<5} {:<11} {:<24} {:<16} {:<12} {}{}",
            r.status,
            if r.available { "yes" } else { "no" },
            r.severity,
            safe(&r.id),
            safe(&r.product),
            safe(&r.version),
            safe(&r.title),
            if r.superseded { " (superseded)" } else { "" }
        );
    }
    outln!("{} updates", rows.len());
}

fn usage_error(message: &str) -> u8 {
    eprintln!("{PROGRAM}: {message}");
    code::USAGE
}

/// Who runs a command that takes no --by, for its change report: the login name, if known.
fn who() -> String {
    actor(None).map_or_else(|_| "unknown".to_string(), |a| a.as_str().to_string())
}

/// Who is acting: the name given with --by, else the login name. The audit log must say who
/// acted, so an unknown name is refused rather than recorded.
fn actor(given: Option<&str>) -> ferry_core::Result<Actor> {
    let login = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).ok();
    match given.or(login.as_deref()) {
        Some(name) => name.parse(),
        None => Err(ferry_core::Error::Invalid("who is acting is unknown: give --by NAME".into())),
    }
}

/// approve, decline and reset.
fn set_status(dir: &Path, args: StatusArgs, to: Status) -> anyhow::Result<u8> {
    let (ids, filter) = match args.selection.resolve() {
        Ok(selected) => selected,
        Err(usage) => return Ok(usage_error(usage)),
    };
    let actor = actor(args.by.as_deref())?;
    let mut data = DataDir::open_exclusive(dir)?;
    let change = data.registry.set_status(&ids, &filter, to, &actor)?;
    if args.json {
        json_line(&change)?;
        return Ok(code::OK);
    }
    let n = change.changed.len();
    outln!("{to}: {n} update{} (by {})", if n == 1 { "" } else { "s" }, safe(actor.as_str()));
    for c in &change.changed {
        outln!("  {}  {} -> {}", safe(&c.id), c.from, c.to);
    }
    if !change.unchanged.is_empty() {
        outln!("already {to}: {}", safe(&change.unchanged.join(", ")));
    }
    for s in &change.skipped {
        outln!("skipped {}: {}", safe(&s.id), safe(&s.reason));
    }
    Ok(code::OK)
}
