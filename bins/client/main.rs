//! `ferry-client`: the managed computer's side. Reads its distribution point (a folder or a
//! share), checks the index and the assignment with the server key, refuses a generation
//! older than the last it accepted, installs what its group is assigned, each file checked
//! by SHA-256 in a copy of its own before it runs, and writes the installation results for
//! `ingest results import`. Every rule is in `ferry_core::client`.
//!
//! Exit codes as ingest's: 0 done (installers that failed are in the results), 3 bad input,
//! 6 an index or assignment not signed by the server key, 8 an older generation than the
//! last accepted, 9 a local failure.

#[path = "../common/mod.rs"]
#[allow(dead_code, unused_imports)]
#[macro_use]
mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferry_core::base::names::ComputerName;
use ferry_core::client::{Options, Step};

use common::{code, json_line, safe};

const PROGRAM: &str = "ferry-client";

/// Installs what the management server assigns to this computer from its distribution point.
#[derive(Parser)]
#[command(name = "ferry-client", version, max_term_width = 100, after_help = common::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the point's index and assignment, install what this computer's group is
    /// assigned and has not installed yet, and write the installation results.
    Install(InstallArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// The distribution point: a folder or a share (\\server\updates).
    #[arg(long, value_name = "DIR")]
    point: PathBuf,
    /// The management server's public key (`ingest server-key export`), from a channel you
    /// trust, not from the point.
    #[arg(long, value_name = "FILE")]
    server_key: PathBuf,
    /// The client's own folder: the generation last accepted and what was installed. Only
    /// the client may write to it.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// This computer's name as the server knows it [the system's name].
    #[arg(long, value_name = "NAME")]
    computer: Option<ComputerName>,
    /// Where to write the results file (for `ingest results import` or a watched folder);
    /// standard output if none.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Check and say what would be installed; install nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds one installer may run before it is stopped and reported as failed.
    #[arg(long, default_value_t = 7200, value_name = "SECONDS")]
    timeout: u64,
    /// One JSON line per step.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Install(args) => install(args),
    }
}

/// The system's name for this computer: COMPUTERNAME on Windows, the host name elsewhere.
fn system_name() -> anyhow::Result<ComputerName> {
    let name = std::env::var("COMPUTERNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .context("cannot tell this computer's name: give --computer NAME")?;
    Ok(name.parse()?)
}

fn install(args: InstallArgs) -> anyhow::Result<u8> {
    let key = ferry_core::formats::keys::read_public_key(&args.server_key)?;
    let computer = match args.computer {
        Some(c) => c,
        None => system_name()?,
    };
    let opts = Options {
        point: &args.point,
        key: &key,
        state: &args.state,
        computer: &computer,
        dry_run: args.dry_run,
        timeout: Duration::from_secs(args.timeout),
    };
    let json = args.json;
    let show = |s: &Step| {
        if json {
            let _ = json_line("client-step", s);
        } else if s.update.is_empty() {
            outln!("{}: {}", s.action, safe(&s.detail));
        } else {
            outln!("{} {}: {}", s.action, safe(&s.update), safe(&s.detail));
        }
    };
    let run = ferry_core::client::install(&opts, &show)?;
    if !json {
        outln!(
            "{} at {} (generation {}), group {}: {} step{}",
            computer,
            safe(&run.distribution_point),
            run.generation,
            safe(run.group.as_deref().unwrap_or("(none)")),
            run.steps.len(),
            if run.steps.len() == 1 { "" } else { "s" }
        );
    }
    if let Some(results) = &run.results {
        let mut bytes = serde_json::to_vec_pretty(results).expect("results serialise");
        bytes.push(b'\n');
        match &args.results {
            Some(dir) => {
                // Two runs in one second must not share a name: the first's results would be lost.
                let stamp: String = results.created.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                let path = (1..)
                    .map(|n| dir.join(format!("{computer}-{stamp}-{n}.json")))
                    .find(|p| std::fs::symlink_metadata(p).is_err())
                    .expect("a free name");
                ferry_core::base::output::write_bytes(&path, Some(&args.state), &bytes)?;
                eprintln!("{PROGRAM}: results written to {}", safe(&path.display().to_string()));
            }
            None if json => json_line("install-results", results)?,
            None => out!("{}", String::from_utf8_lossy(&bytes)),
        }
    }
    Ok(code::OK)
}
