//! `ingest config show`, the configuration in force for every command that changes the update
//! list, and the notification that follows each change report.

use std::path::Path;
use std::sync::OnceLock;

use clap::{Args, Subcommand};
use ferry_core::server::config::{self, Effective};
use ferry_core::server::datadir::DataDir;
use ferry_core::server::report::ChangeReport;

use crate::PROGRAM;
use crate::common::{code, json_line, safe};

/// The `--set KEY=VALUE` overrides of this run.
static OVERRIDES: OnceLock<Vec<String>> = OnceLock::new();

pub fn set_overrides(overrides: Vec<String>) {
    OVERRIDES.set(overrides).expect("set once, at start");
}

fn overrides() -> &'static [String] {
    OVERRIDES.get().map(Vec::as_slice).unwrap_or_default()
}

/// ingest.toml in the data directory with this run's overrides.
pub fn effective(dir: &Path) -> ferry_core::Result<Effective> {
    config::load(dir, overrides())
}

/// Opens the data directory for changes, with the configuration in force.
pub fn open_configured(dir: &Path) -> anyhow::Result<DataDir> {
    let effective = effective(dir)?;
    let mut data = DataDir::open_exclusive(dir)?;
    data.config = effective.config;
    Ok(data)
}

/// Sends the notifications the configuration asks for about `report`, and says how each went
/// (on standard error: standard output may be JSON). A failed notification is a warning: the
/// change it reports was made.
pub fn notify(data: &DataDir, report: &ChangeReport) {
    let mailer = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(format!("ferry-mail{}", std::env::consts::EXE_SUFFIX))))
        .unwrap_or_else(|| "ferry-mail".into());
    for o in ferry_core::ingest::notify::notify(&data.config.notify, report, &mailer) {
        if o.delivered {
            eprintln!("{PROGRAM}: notified by {} about change report {}", o.channel, report.id);
        } else {
            eprintln!("{PROGRAM}: warning: notification by {} failed: {}", o.channel, safe(&o.detail));
        }
    }
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration in force: each key, its value, and where it came from
    /// (default, the file, or --set).
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ShowArgs {
    /// One JSON object per key.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, command: ConfigCommand) -> anyhow::Result<u8> {
    let ConfigCommand::Show(args) = command;
    let effective = effective(dir)?;
    if args.json {
        for (key, value, origin) in &effective.values {
            json_line(&serde_json::json!({"key": key, "value": value, "origin": origin.to_string()}))?;
        }
        return Ok(code::OK);
    }
    let file = dir.join(config::CONFIG_FILE);
    outln!("# {} ({})", file.display(), if file.is_file() { "read" } else { "not present: defaults and --set only" });
    let width = effective.values.iter().map(|(k, v, _)| k.len() + v.len()).max().unwrap_or(0) + 3;
    for (key, value, origin) in &effective.values {
        let line = format!("{key} = {}", safe(value));
        outln!("{line:<width$}  # {origin}");
    }
    Ok(code::OK)
}
