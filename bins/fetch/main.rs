//! `fetch`: the online side. Parses arguments, asks for passphrases, shows progress and
//! formats output; every rule is in `ferry-core`.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferry_core::base::clock::Date;
use ferry_core::base::names::{Channel, UpdateId};
use ferry_core::bundle::reader::SignedBundle;
use ferry_core::fetch::download::DownloadOptions;
use ferry_core::fetch::net::NetOptions;
use ferry_core::fetch::pack::{PackOptions, PackOutcome, PlanOptions};
use ferry_core::fetch::source::{Location, Sources};
use ferry_core::fetch::volumes;
use ferry_core::fetch::workdir::WorkDir;
use ferry_core::formats::catalog::Selection;
use ferry_core::formats::keys;
use ferry_core::formats::minisign::SecretKey;
use ferry_core::formats::model::{Classification, Severity};
use ferry_core::formats::rotation::Statement;
use ferry_core::formats::state::ServerState;

use common::{code, human_bytes, json_line, safe};

const PROGRAM: &str = "fetch";

/// Builds signed update bundles on a machine with internet access.
#[derive(Parser)]
#[command(name = "fetch", version, about, max_term_width = 100)]
struct Cli {
    /// Where fetch keeps its state (last sequence per channel).
    #[arg(long, env = "FERRY_WORK_DIR", global = true, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signing keys (minisign format).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Select updates from a catalog, download their files and write a signed bundle.
    Pack(Box<PackArgs>),
    /// Show what a pack would carry and its size, downloading nothing.
    Plan(Box<PlanArgs>),
    /// Show what a bundle holds, without trusting it.
    Inspect(InspectArgs),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a new key pair.
    Gen(KeyGenArgs),
    /// Write a signed statement that replaces the keys a channel trusts (rotation, or
    /// revocation by leaving a key out); carry it with `fetch pack --rotation DIR`.
    Rotate(KeyRotateArgs),
}

#[derive(Args)]
struct KeyRotateArgs {
    /// The channel whose keys change.
    #[arg(long, default_value = "default")]
    channel: Channel,
    /// The trust version this creates: the channel's current version plus one (a channel
    /// starts at 1; `ingest trust list` shows it).
    #[arg(long, value_name = "N")]
    version: u32,
    /// A public key trusted after the rotation; repeat for each. Keys left out are revoked.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// How many distinct keys of the new set must sign each bundle.
    #[arg(long, default_value_t = 1)]
    threshold: usize,
    /// Secret key to sign the statement with: enough of the keys trusted now, and every key
    /// being added. Repeat for each; or run again on the same --out to add signatures.
    #[arg(long = "sign-with", value_name = "FILE", required = true)]
    sign_with: Vec<PathBuf>,
    /// Read key passphrases from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// The rotation directory to write (rotation.json and rotation-signatures/).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args)]
struct KeyGenArgs {
    /// Where to write the secret key (owner-only permissions).
    #[arg(long, value_name = "FILE")]
    secret_key: PathBuf,
    /// Where to write the public key, for `ingest trust add` and `minisign -V -p`.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// Do not protect the secret key with a passphrase (as `minisign -G -W`).
    #[arg(long)]
    unencrypted: bool,
    /// Read the passphrase from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

/// Which updates to take, and from where.
#[derive(Args)]
struct SelectionArgs {
    /// The catalog: a path, file:// or http(s):// URL.
    #[arg(long, value_name = "LOCATION")]
    catalog: String,
    /// The channel the bundle belongs to.
    #[arg(long, default_value = "default")]
    channel: Channel,
    /// Take updates of this product (repeatable; letter case is ignored).
    #[arg(long = "product", value_name = "NAME")]
    products: Vec<String>,
    /// Take updates of this classification (repeatable).
    #[arg(long = "classification", value_name = "NAME")]
    classifications: Vec<Classification>,
    /// Take updates of this severity (repeatable).
    #[arg(long = "severity", value_name = "NAME")]
    severities: Vec<Severity>,
    /// Take updates released on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    since: Option<Date>,
    /// Take the update with this id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<UpdateId>,
    /// The offline server's state file (`ingest state export`): build a delta with only what
    /// it lacks. Its signature (FILE.minisig) is checked against --server-key.
    #[arg(long, value_name = "FILE", requires = "server_key")]
    state: Option<PathBuf>,
    /// The offline server's public key (`ingest server-key export`).
    #[arg(long, value_name = "FILE", requires = "state")]
    server_key: Option<PathBuf>,
    /// Carry the updates' metadata only, no files.
    #[arg(long)]
    metadata_only: bool,
    #[command(flatten)]
    net: NetArgs,
}

impl SelectionArgs {
    fn selection(&self) -> Selection {
        Selection {
            ids: self.ids.clone(),
            products: self.products.clone(),
            classifications: self.classifications.clone(),
            severities: self.severities.clone(),
            released_since: self.since,
        }
    }

    /// The verified state file, when one was given.
    fn state(&self) -> anyhow::Result<Option<ServerState>> {
        match (&self.state, &self.server_key) {
            (Some(state), Some(key)) => Ok(Some(ServerState::read_verified(state, &keys::read_public_key(key)?)?)),
            _ => Ok(None),
        }
    }
}

#[derive(Args)]
struct PackArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    /// Secret key to sign with; repeat for several signatures.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// A rotation directory from `fetch key rotate` to carry in the bundle: ingest applies
    /// it before checking the bundle's own signatures.
    #[arg(long, value_name = "DIR")]
    rotation: Option<PathBuf>,
    /// Read the key passphrase from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Directory to write the bundle into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Use at least this sequence number.
    #[arg(long, value_name = "N")]
    min_sequence: Option<u64>,
    /// The bundle expires this many days after its creation.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    expires_in_days: Option<u32>,
    /// Split the bundle into volumes of at most this size: a medium's name (cd, dvd, dvd-dl,
    /// bd25, bd50, usb-4g, usb-8g, usb-16g, usb-32g, usb-64g) or a number of bytes.
    #[arg(long, value_name = "MEDIUM")]
    media: Option<String>,
    /// The largest file the target file system holds: fat32, iso9660, or a number of bytes.
    #[arg(long, value_name = "FS")]
    max_file_size: Option<String>,
    #[command(flatten)]
    download: DownloadArgs,
    /// JSON Lines on stdout: progress events, then the result as {"event": "bundle", …}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    /// Print the plan as one JSON object.
    #[arg(long)]
    json: bool,
}

/// How fetch reaches the network.
#[derive(Args)]
struct NetArgs {
    /// Seconds a connection or a stalled transfer may take before it counts as failed.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    timeout: f64,
    /// Extra CA certificates (PEM) to trust, for example a corporate TLS proxy's.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

#[derive(Args)]
struct DownloadArgs {
    /// How many files to download at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// How many times to retry a download after a timeout, a reset connection or a server error.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Seconds to wait before the first retry; the wait doubles with each further one.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    retry_delay: f64,
    /// A transfer slower than this many bytes a second over --speed-time counts as stalled
    /// and is resumed by a retry (as curl's option of the same name); 0 turns the rule off.
    #[arg(long, default_value_t = ferry_core::fetch::download::DEFAULT_SPEED_LIMIT, value_name = "BYTES")]
    speed_limit: u64,
    /// Seconds over which --speed-limit is judged.
    #[arg(long, default_value_t = ferry_core::fetch::download::DEFAULT_SPEED_TIME.as_secs_f64(), value_name = "SECONDS")]
    speed_time: f64,
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| ferry_core::Error::Invalid(format!("{flag} {value} is not a number of seconds")).into())
}

impl NetArgs {
    fn sources(&self) -> anyhow::Result<Sources> {
        let net = NetOptions { timeout: seconds(self.timeout, "--timeout")?, ca_cert: self.ca_cert.clone() };
        Ok(Sources::new(&net)?)
    }
}

impl DownloadArgs {
    fn options(&self) -> anyhow::Result<DownloadOptions> {
        Ok(DownloadOptions {
            parallel: usize::from(self.parallel),
            retries: self.retries,
            retry_delay: seconds(self.retry_delay, "--retry-delay")?,
            speed_limit: self.speed_limit,
            speed_time: match seconds(self.speed_time, "--speed-time")? {
                zero if zero.is_zero() && self.speed_limit > 0 => {
                    return Err(ferry_core::Error::Invalid(
                        "--speed-time 0 would judge every transfer stalled before its first byte; give seconds, or --speed-limit 0".into(),
                    )
                    .into());
                }
                t => t,
            },
        })
    }
}

#[derive(Args)]
struct InspectArgs {
    bundle: PathBuf,
    /// Print as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Key(KeyCommand::Gen(args)) => key_gen(&args),
        Command::Key(KeyCommand::Rotate(args)) => key_rotate(&args),
        Command::Pack(args) => {
            pack(&common::default_dir(cli.work_dir, "fetch", "--work-dir", "FERRY_WORK_DIR")?, &args)
        }
        Command::Plan(args) => plan(&args),
        Command::Inspect(args) => inspect(&args),
    }
}

/// A passphrase from a file, FERRY_KEY_PASSWORD, or the terminal, in that order.
fn read_passphrase(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<String, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(p) = std::env::var("FERRY_KEY_PASSWORD") {
        return Ok(p);
    }
    let no_terminal = |e: std::io::Error| {
        format!("no passphrase given ({e}); set FERRY_KEY_PASSWORD, use --passphrase-file, or run in a terminal")
    };
    let first = rpassword::prompt_password(prompt).map_err(no_terminal)?;
    if confirm {
        let again = rpassword::prompt_password("Passphrase (again): ").map_err(no_terminal)?;
        if again != first {
            return Err("the passphrases differ".into());
        }
    }
    Ok(first)
}

fn key_gen(args: &KeyGenArgs) -> anyhow::Result<u8> {
    let key = SecretKey::generate()?;
    let passphrase = if args.unencrypted {
        None
    } else {
        let p = read_passphrase(args.passphrase_file.as_deref(), "Passphrase for the new key: ", true)
            .map_err(ferry_core::Error::Invalid)?;
        if p.is_empty() {
            return Err(ferry_core::Error::Invalid(
                "the passphrase is empty; use --unencrypted for a key without one".into(),
            )
            .into());
        }
        Some(p)
    };
    keys::write_key_pair(&args.secret_key, &args.public_key, &key, passphrase.as_deref(), args.force)?;
    outln!("key {} created", key.key_id);
    outln!(
        "  secret key: {} ({})",
        args.secret_key.display(),
        if passphrase.is_some() { "passphrase-protected" } else { "NOT encrypted" }
    );
    outln!("  public key: {}", args.public_key.display());
    Ok(code::OK)
}

fn key_rotate(args: &KeyRotateArgs) -> anyhow::Result<u8> {
    let keys = args.trust.iter().map(|p| keys::read_public_key(p)).collect::<Result<Vec<_>, _>>()?;
    let statement = Statement::new(args.channel.clone(), args.version, args.threshold, &keys)
        .map_err(ferry_core::Error::Invalid)?;
    // An existing statement in --out is signed again, so several officers can sign in turn.
    let statement = ferry_core::formats::rotation::statement_to_sign(&args.out, statement)?;
    let mut signing = Vec::new();
    for path in &args.sign_with {
        let prompt = format!("Passphrase for {}: ", path.display());
        signing.push(keys::read_secret_key(path, || read_passphrase(args.passphrase_file.as_deref(), &prompt, false))?);
    }
    let signed = statement.sign(&signing.iter().collect::<Vec<_>>()).map_err(ferry_core::Error::Invalid)?;
    ferry_core::formats::rotation::write_dir(&args.out, &signed)?;
    outln!(
        "rotation statement for channel {} version {} written to {}",
        statement.channel,
        statement.version,
        args.out.display()
    );
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.to_string()).collect();
    outln!("  trusted after it: {} ({} of them must sign)", ids.join(", "), statement.threshold);
    let by: Vec<String> = signing.iter().map(|k| k.key_id.to_string()).collect();
    outln!("  signed now by: {}", by.join(", "));
    Ok(code::OK)
}

fn pack(work_dir: &Path, args: &PackArgs) -> anyhow::Result<u8> {
    let rotation = args.rotation.as_deref().map(ferry_core::formats::rotation::read_dir).transpose()?;
    let mut signing_keys = Vec::new();
    for path in &args.keys {
        let prompt = format!("Passphrase for {}: ", path.display());
        signing_keys
            .push(keys::read_secret_key(path, || read_passphrase(args.passphrase_file.as_deref(), &prompt, false))?);
    }
    let sel = &args.selection;
    let catalog = Location::parse(&sel.catalog)?;
    let selection = sel.selection();
    let state = sel.state()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let options = PackOptions {
        plan: PlanOptions {
            catalog: &catalog,
            selection: &selection,
            channel: &sel.channel,
            state: state.as_ref(),
            metadata_only: sel.metadata_only,
        },
        keys: &signing_keys,
        out_dir: args.out.clone(),
        min_sequence: args.min_sequence,
        valid_for: args.expires_in_days.map(|d| Duration::from_secs(u64::from(d) * 86_400)),
        volume_capacity: volumes::requested_capacity(args.media.as_deref(), args.max_file_size.as_deref())?,
        download: args.download.options()?,
        rotation: rotation.as_ref(),
    };
    let mut work = WorkDir::open(work_dir)?;
    let sources = sel.net.sources()?;
    let reporter = progress::Reporter::new(args.json);
    let outcome = ferry_core::fetch::pack::pack(&mut work, &sources, &options, &|event| reporter.event(event))?;
    let result = match outcome {
        PackOutcome::NothingNew { up_to_date } => {
            if args.json {
                json_line(&serde_json::json!({"event": "nothing-new", "up_to_date": up_to_date}))?;
            } else {
                outln!(
                    "nothing new for the offline side: {up_to_date} selected updates are up to date; no bundle written"
                );
            }
            return Ok(code::OK);
        }
        PackOutcome::Written(result) => result,
    };
    if args.json {
        let mut value = serde_json::to_value(&result)?;
        value["event"] = "bundle".into();
        json_line(&value)?;
    } else {
        if result.volumes.len() == 1 {
            outln!("bundle written: {}", result.path.display());
        } else {
            outln!("bundle written in {} volumes:", result.volumes.len());
            for v in &result.volumes {
                outln!("  {} ({})", v.path.display(), human_bytes(v.size));
            }
        }
        outln!(
            "  channel {} sequence {} ({} bundle {})",
            result.channel,
            result.sequence,
            result.kind,
            result.bundle_id
        );
        outln!(
            "  {} updates, {} payloads, {}{}",
            result.updates,
            result.payloads,
            human_bytes(result.payload_bytes),
            if result.relies_on > 0 {
                format!("; relies on {} files the offline side holds", result.relies_on)
            } else {
                String::new()
            }
        );
        outln!("  signed by {}", result.signers.join(", "));
    }
    Ok(code::OK)
}

/// The most bytes one volume may have: the medium's capacity and the file system's largest file.
fn plan(args: &PlanArgs) -> anyhow::Result<u8> {
    let sel = &args.selection;
    let catalog = Location::parse(&sel.catalog)?;
    let selection = sel.selection();
    let state = sel.state()?;
    let options = PlanOptions {
        catalog: &catalog,
        selection: &selection,
        channel: &sel.channel,
        state: state.as_ref(),
        metadata_only: sel.metadata_only,
    };
    let plan = ferry_core::fetch::pack::plan(&sel.net.sources()?, &options)?;
    if args.json {
        json_line(&serde_json::json!({
            "kind": plan.kind,
            "updates": plan.entries,
            "files": plan.jobs.len(),
            "payload_bytes": plan.payload_bytes(),
            "relies_on": plan.relies_on,
            "up_to_date": plan.up_to_date,
            "min_sequence": plan.min_sequence,
        }))?;
        return Ok(code::OK);
    }
    outln!("{} bundle for channel {}", plan.kind, sel.channel);
    for e in &plan.entries {
        outln!(
            "  {:<8} {}  rev {}  {}",
            format!("{:?}", e.reason).to_lowercase(),
            safe(e.id.as_str()),
            e.revision,
            human_bytes(e.carried_bytes)
        );
    }
    if plan.up_to_date > 0 {
        outln!("  ({} selected updates are up to date on the offline side)", plan.up_to_date);
    }
    outln!(
        "{} updates, {} files to download and carry, {}{}",
        plan.entries.len(),
        plan.jobs.len(),
        human_bytes(plan.payload_bytes()),
        if plan.relies_on.is_empty() {
            String::new()
        } else {
            format!("; relies on {} held files", plan.relies_on.len())
        }
    );
    Ok(code::OK)
}

fn inspect(args: &InspectArgs) -> anyhow::Result<u8> {
    let bundle = SignedBundle::open(&args.bundle)?.parse_unverified()?;
    let m = &bundle.manifest;
    if args.json {
        let signatures: Vec<_> = bundle
            .signatures
            .iter()
            .map(|(entry, s)| serde_json::json!({"entry": entry, "key_id": s.key_id.to_string(), "trusted_comment": s.trusted_comment}))
            .collect();
        json_line(&serde_json::json!({
            "verified": false,
            "path": args.bundle.display().to_string(),
            "manifest_sha256": bundle.manifest_digest,
            "layout": m.layout.digest(),
            "signatures": signatures,
            "manifest": m,
        }))?;
        return Ok(code::OK);
    }
    outln!("UNVERIFIED: nothing below has been checked against trusted keys; use `ingest verify` for that.");
    outln!("bundle {}", args.bundle.display());
    outln!("  id {}  channel {}  sequence {}  kind {}", m.bundle_id, m.channel, m.sequence, m.kind);
    outln!("  created {}  expires {}", m.created, m.expires.map(|t| t.to_string()).unwrap_or_else(|| "never".into()));
    outln!("  volumes {}  layout {}", m.layout.volumes, m.layout.digest());
    outln!("  generator {}", safe(&m.generator));
    outln!("signatures ({}):", bundle.signatures.len());
    for (_, s) in &bundle.signatures {
        outln!("  key {}  trusted comment: {}", s.key_id, safe(&s.trusted_comment));
    }
    outln!("updates ({}):", m.updates.len());
    for u in &m.updates {
        let carried = u.files.iter().filter(|f| m.layout.payloads.iter().any(|p| p.sha256 == f.sha256)).count();
        outln!(
            "  {}  rev {}  {}  {}  {}{}  [{} of {} files carried]",
            safe(u.id.as_str()),
            u.revision,
            u.classification,
            u.severity,
            safe(&u.title),
            if u.withdrawn { "  (WITHDRAWN)" } else { "" },
            carried,
            u.files.len()
        );
    }
    outln!("payloads ({}):", m.layout.payloads.len());
    for p in &m.layout.payloads {
        outln!("  volume {}  {}  {}", p.volume, p.entry, human_bytes(p.size));
    }
    Ok(code::OK)
}
