//! `ingest results`: installation results from the computers' clients, judged with each
//! update's exit codes (or JP1's return values), and their list.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_core::base::names::{ComputerName, UpdateId};
use ferry_core::formats::approval::Actor;
use ferry_core::formats::install_results::Outcome;
use ferry_core::ingest::results;

use super::computers::refusals_and_judgment;
use crate::common::{code, count, json_line, safe};
use crate::context::Context;

#[derive(Subcommand)]
pub enum ResultsCommand {
    /// Read installation results files (ferry-install-results JSON; files, or directories of
    /// them). Each file is taken whole or refused alone; the computers are judged again.
    Import(ImportArgs),
    /// Installation results, newest first.
    List(ListArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// Results files, or directories holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Who acts (recorded in the audit log).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// One JSON line per result recorded and per refusal.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this computer's results.
    #[arg(long, value_name = "NAME")]
    computer: Option<ComputerName>,
    /// Only this update's results.
    #[arg(long, value_name = "ID")]
    update: Option<UpdateId>,
    /// Only results with this outcome.
    #[arg(long, value_parser = outcome_parser(), value_name = "OUTCOME")]
    outcome: Option<Outcome>,
    /// Only the latest result per computer and update (what the judgment reads).
    #[arg(long)]
    latest: bool,
    #[arg(long)]
    json: bool,
}

fn outcome_parser() -> impl clap::builder::TypedValueParser<Value = Outcome> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Outcome::ALL.iter().map(|o| o.as_str()))
        .map(|s| s.parse::<Outcome>().expect("one of the values listed"))
}

pub fn run(ctx: &Context, command: ResultsCommand) -> anyhow::Result<u8> {
    match command {
        ResultsCommand::Import(args) => import(ctx, args),
        ResultsCommand::List(args) => {
            let data = ctx.read()?;
            let all = results::list(&data, args.computer.as_ref(), args.update.as_ref(), args.outcome, args.latest)?;
            if args.json {
                for r in &all {
                    json_line("install-result", r)?;
                }
                return Ok(code::OK);
            }
            if all.is_empty() {
                outln!("no installation results (`ingest results import FILE|DIR` reads them)");
                return Ok(code::OK);
            }
            let mut table = crate::common::Table::new(&["AT", "COMPUTER", "UPDATE", "OUTCOME", "CODE", "MEANING"]);
            for r in &all {
                table.row(vec![
                    r.at.to_string(),
                    r.computer.clone(),
                    r.update.clone(),
                    r.outcome.as_str().to_string(),
                    r.return_code.to_string(),
                    r.meaning.clone(),
                ]);
            }
            table.print();
            Ok(code::OK)
        }
    }
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write_configured()?;
    let result = results::import(&mut data, &args.paths, &actor)?;
    for o in &result.outcomes {
        if args.json {
            for r in &o.recorded {
                json_line("install-result", r)?;
            }
            continue;
        }
        let failures = o.recorded.iter().filter(|r| r.outcome == Outcome::Failure).count();
        outln!(
            "{}: {} from {}{}{}",
            safe(&o.computer),
            count(o.recorded.len() as u64, "new result"),
            safe(&o.source),
            if failures > 0 { format!(", {failures} failed") } else { String::new() },
            if o.already_recorded > 0 { format!(" ({} recorded before)", o.already_recorded) } else { String::new() }
        );
        for r in o.recorded.iter().filter(|r| r.outcome == Outcome::Failure) {
            outln!("  {} failed at {}: {}", safe(&r.update), r.at, safe(&r.meaning));
        }
    }
    let worst = refusals_and_judgment(&data, "results-refused", &result.refused, result.judged.as_ref(), args.json)?;
    if !args.json {
        let recorded: usize = result.outcomes.iter().map(|o| o.recorded.len()).sum();
        outln!(
            "{} read, {} recorded, {} refused",
            count(result.outcomes.len() as u64, "results file"),
            count(recorded as u64, "new result"),
            result.refused.len()
        );
    }
    Ok(worst)
}
