//! `ingest config show`: the configuration in force, key by key, and where each value came
//! from.

use clap::{Args, Subcommand};

use crate::common::{code, json_line, safe};
use crate::context::Context;

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

pub fn run(ctx: &Context, command: ConfigCommand) -> anyhow::Result<u8> {
    let ConfigCommand::Show(args) = command;
    let effective = ctx.effective()?;
    let location = ctx.location();
    if args.json {
        json_line(
            "data-directory",
            &serde_json::json!({
                "dir": location.dir.display().to_string(),
                "config_file": ctx.config_file().display().to_string(),
                "system": location.system,
                "why": location.why,
            }),
        )?;
        for (key, value, origin) in &effective.values {
            json_line("config-value", &serde_json::json!({"key": key, "value": value, "origin": origin.to_string()}))?;
        }
        return Ok(code::OK);
    }
    outln!("# data directory: {} ({})", safe(&location.dir.display().to_string()), safe(&location.why));
    let file = ctx.config_file();
    outln!("# {} ({})", file.display(), if file.is_file() { "read" } else { "not present: defaults and --set only" });
    let width = effective.values.iter().map(|(k, v, _)| k.len() + v.len()).max().unwrap_or(0) + 3;
    for (key, value, origin) in &effective.values {
        let line = format!("{key} = {}", safe(value));
        outln!("{line:<width$}  # {origin}");
    }
    Ok(code::OK)
}
