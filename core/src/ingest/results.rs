//! `ingest results`: installation results in from the computers' clients, judged with the
//! update's exit codes, and the judgment of the computers after them.
//!
//! Results are unauthenticated input from the LAN, read as inventories are (no link, no
//! FIFO, a cap, each file whole or not at all). A file may change only the record of the
//! computer it names, and only of a computer that has sent an inventory: a results file
//! cannot invent computers. A file written later than now is refused.

use std::path::PathBuf;

use crate::base::error::{Error, Result};
use crate::base::names::{ComputerName, UpdateId};
use crate::formats::approval::Actor;
use crate::formats::install_results::{self, Outcome};
use crate::ingest::computers::{files_of, judge, not_after, read_lan_file};
use crate::server::datadir::DataDir;
use crate::server::registry::{JudgedResult, JudgmentRun, ResultsOutcome, ResultsRecord, ResultsSummary};

/// Files recorded per transaction.
const BATCH: usize = 256;

/// What `results import` did.
#[derive(Debug, Default)]
pub struct ResultsImport {
    pub outcomes: Vec<ResultsOutcome>,
    /// Files refused, each with why.
    pub refused: Vec<(PathBuf, Error)>,
    /// The judgment that followed, when a result was new.
    pub judged: Option<JudgmentRun>,
}

/// Imports the results files at `paths` (files and directories), then judges every computer
/// again if any result was new.
pub fn import(data: &mut DataDir, paths: &[PathBuf], actor: &Actor) -> Result<ResultsImport> {
    let mut result = ResultsImport::default();
    let not_after = not_after(data)?;
    let mut pending: Vec<(PathBuf, ResultsRecord)> = Vec::new();
    for file in files_of(paths, &mut result.refused) {
        let read = read_lan_file(&file).and_then(|(bytes, sha256, _)| {
            let parsed = install_results::read(&file, &bytes)?;
            if parsed.created > not_after {
                return Err(Error::Feed {
                    file: file.clone(),
                    line: None,
                    field: "created".into(),
                    reason: format!(
                        "{} is in the future (after {not_after}: the later of this server's clock and the latest \
                         bundle time accepted, plus a few minutes)",
                        parsed.created
                    ),
                });
            }
            Ok(ResultsRecord { file: parsed, source: file.display().to_string(), sha256 })
        });
        match read {
            Ok(record) => pending.push((file, record)),
            Err(e) => result.refused.push((file, e)),
        }
        if pending.len() >= BATCH {
            record(data, &mut pending, &mut result, actor)?;
        }
    }
    record(data, &mut pending, &mut result, actor)?;
    if result.outcomes.iter().any(|o| !o.recorded.is_empty()) {
        result.judged = Some(judge(data)?);
    }
    Ok(result)
}

fn record(
    data: &mut DataDir,
    pending: &mut Vec<(PathBuf, ResultsRecord)>,
    result: &mut ResultsImport,
    actor: &Actor,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let (files, records): (Vec<PathBuf>, Vec<ResultsRecord>) = std::mem::take(pending).into_iter().unzip();
    for (file, outcome) in files.into_iter().zip(data.registry.record_install_results(&records, actor)?) {
        match outcome {
            Ok(o) => result.outcomes.push(o),
            Err((field, reason)) => {
                result.refused.push((file.clone(), Error::Feed { file, line: None, field, reason }))
            }
        }
    }
    Ok(())
}

/// Installation results, newest first, narrowed by computer, update and outcome.
pub fn list(
    data: &DataDir,
    computer: Option<&ComputerName>,
    update: Option<&UpdateId>,
    outcome: Option<Outcome>,
    latest: bool,
) -> Result<Vec<JudgedResult>> {
    if let Some(name) = computer {
        data.registry.computer_key(name)?;
    }
    if let Some(id) = update {
        data.registry.show(id)?;
    }
    data.registry.install_results(computer, update, outcome, latest)
}

/// Per update, the latest result on each computer counted by outcome.
pub fn summary(data: &DataDir) -> Result<Vec<ResultsSummary>> {
    data.registry.results_summary()
}
