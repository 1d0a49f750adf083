//! `fetch`: the online side. Parses arguments, asks for passphrases, shows progress and
//! formats output; every rule is in `ferry-core`.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;
mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::key::KeyCommand;
use commands::{inspect, key, pack, plan};

const PROGRAM: &str = "fetch";

/// Builds signed update bundles on a machine with internet access.
#[derive(Parser)]
#[command(name = "fetch", version, max_term_width = 100, after_help = common::EXIT_CODES_HELP)]
struct Cli {
    /// Where fetch keeps its state (last sequence per channel). Default: /var/lib/ferry/fetch
    /// as root, %ProgramData%\ferry\fetch elevated on Windows, else the user's own data
    /// directory.
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
    Pack(Box<pack::PackArgs>),
    /// Show what a pack would carry and its size, downloading nothing.
    Plan(Box<plan::PlanArgs>),
    /// Show what a bundle holds, without trusting it.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::finish(PROGRAM, run(cli))
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Key(KeyCommand::Gen(args)) => key::key_gen(&args),
        Command::Key(KeyCommand::Rotate(args)) => key::key_rotate(&args),
        Command::Pack(args) => {
            let location = common::location(cli.work_dir, "fetch", "--work-dir", "FERRY_WORK_DIR")?;
            ferry_core::base::locations::prepare(&location)?;
            pack::pack(&location.dir, &args)
        }
        Command::Plan(args) => plan::plan(cli.work_dir, &args),
        Command::Inspect(args) => inspect::inspect(&args),
    }
}
