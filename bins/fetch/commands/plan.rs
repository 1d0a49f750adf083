//! `fetch plan`: what a pack would carry and its size, downloading nothing.

use clap::Args;
use ferry_core::fetch::pack::PlanOptions;
use ferry_core::fetch::source::Location;

use super::options::SelectionArgs;
use crate::common::{code, human_bytes, json_line, safe};

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The most bytes one volume may have: the medium's capacity and the file system's largest file.
pub fn plan(args: &PlanArgs) -> anyhow::Result<u8> {
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
        json_line(
            "plan",
            &serde_json::json!({
                "kind": plan.kind,
                "updates": plan.entries,
                "files": plan.jobs.len(),
                "payload_bytes": plan.payload_bytes(),
                "relies_on": plan.relies_on,
                "up_to_date": plan.up_to_date,
                "min_sequence": plan.min_sequence,
            }),
        )?;
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
