//! Installation results: each computer's installations as its client reported them, judged
//! with the update's exit codes, and what the reports read of them. The judgment of a
//! computer reads the latest result per update (`computers::computer_facts`).

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{Registry, append_audit, exec, query_row};
use crate::base::clock::Timestamp;
use crate::base::error::Result;
use crate::base::names::{ComputerName, Sha256, UpdateId};
use crate::formats::approval::Actor;
use crate::formats::install_results::{self, Outcome, ResultsFile};
use crate::formats::model::Update;

/// One results file to record.
#[derive(Debug)]
pub struct ResultsRecord {
    pub file: ResultsFile,
    /// Where it was read from, for the record.
    pub source: String,
    pub sha256: Sha256,
}

/// One installation, judged.
#[derive(Debug, Clone, Serialize)]
pub struct JudgedResult {
    pub computer: String,
    pub update: String,
    pub sha256: Option<String>,
    pub at: Timestamp,
    pub return_code: i32,
    pub outcome: Outcome,
    pub meaning: String,
    pub source: String,
}

/// What recording one file did.
#[derive(Debug, Clone, Serialize)]
pub struct ResultsOutcome {
    pub computer: String,
    pub source: String,
    /// The results new to this server.
    pub recorded: Vec<JudgedResult>,
    /// Results recorded before (the same computer, update and time).
    pub already_recorded: usize,
}

/// Per update, the latest result on each computer, counted by outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ResultsSummary {
    pub update: String,
    pub success: u32,
    pub reboot: u32,
    pub already_installed: u32,
    pub failure: u32,
}

/// A refusal of one file: the field and why.
pub type Refusal = (String, String);

impl Registry {
    /// Records results files, each whole or not at all: a file naming a computer with no
    /// inventory, an update the list does not know, or a file that is not one of the
    /// update's is refused (its `Err`) and the others are recorded.
    pub fn record_install_results(
        &mut self,
        files: &[ResultsRecord],
        actor: &Actor,
    ) -> Result<Vec<std::result::Result<ResultsOutcome, Refusal>>> {
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let mut outcomes = Vec::with_capacity(files.len());
        for record in files {
            let sp = tx.savepoint().map_err(&e)?;
            let outcome = record_file(&sp, record).map_err(&e)?;
            if outcome.is_ok() {
                sp.commit().map_err(&e)?;
            }
            outcomes.push(outcome);
        }
        let recorded: usize = outcomes.iter().flatten().map(|o| o.recorded.len()).sum();
        if recorded > 0 {
            append_audit(
                &tx,
                &self.path,
                "install-results-imported",
                &format!("{recorded} installation results"),
                &serde_json::json!({
                    "by": actor.as_str(),
                    "files": outcomes.iter().flatten().map(|o| serde_json::json!({
                        "computer": o.computer, "source": o.source, "recorded": o.recorded.len(),
                        "failures": o.recorded.iter().filter(|r| r.outcome == Outcome::Failure).count(),
                    })).collect::<Vec<_>>(),
                }),
            )?;
        }
        tx.commit().map_err(&e)?;
        Ok(outcomes)
    }

    /// Installation results, newest first, of one computer and/or one update, or of only
    /// the given outcome; `latest` keeps the latest result per computer and update.
    pub fn install_results(
        &self,
        computer: Option<&ComputerName>,
        update: Option<&UpdateId>,
        outcome: Option<Outcome>,
        latest: bool,
    ) -> Result<Vec<JudgedResult>> {
        let e = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.name, r.update_id, r.sha256, r.at, r.return_code, r.outcome, r.meaning, r.source \
                 FROM install_results r JOIN computers c ON c.id = r.computer_id \
                 WHERE (?1 IS NULL OR c.name = ?1) AND (?2 IS NULL OR r.update_id = ?2) \
                 AND (?3 IS NULL OR r.outcome = ?3) \
                 AND (?4 = 0 OR r.at = (SELECT max(x.at) FROM install_results x \
                      WHERE x.computer_id = r.computer_id AND x.update_id = r.update_id)) \
                 ORDER BY r.at DESC, c.name, r.update_id",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map(
                params![computer.map(|c| c.as_str()), update.map(|u| u.as_str()), outcome.map(|o| o.as_str()), latest],
                |r| {
                    Ok(JudgedResult {
                        computer: r.get(0)?,
                        update: r.get(1)?,
                        sha256: r.get(2)?,
                        at: r.get(3)?,
                        return_code: r.get(4)?,
                        outcome: r.get(5)?,
                        meaning: r.get(6)?,
                        source: r.get(7)?,
                    })
                },
            )
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }

    /// Per update, the latest result on each computer, counted by outcome; most failures
    /// first.
    pub fn results_summary(&self) -> Result<Vec<ResultsSummary>> {
        let e = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.update_id, \
                 SUM(r.outcome = 'success'), SUM(r.outcome = 'reboot'), SUM(r.outcome = 'already-installed'), \
                 SUM(r.outcome = 'failure') FROM install_results r \
                 WHERE r.at = (SELECT max(x.at) FROM install_results x \
                               WHERE x.computer_id = r.computer_id AND x.update_id = r.update_id) \
                 GROUP BY r.update_id ORDER BY 5 DESC, r.update_id",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ResultsSummary {
                    update: r.get(0)?,
                    success: r.get(1)?,
                    reboot: r.get(2)?,
                    already_installed: r.get(3)?,
                    failure: r.get(4)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }
}

/// Records one file inside `tx`; a refusal leaves nothing of it (the caller rolls back).
fn record_file(
    tx: &rusqlite::Connection,
    record: &ResultsRecord,
) -> rusqlite::Result<std::result::Result<ResultsOutcome, Refusal>> {
    let file = &record.file;
    let computer: Option<(i64, String)> =
        query_row(tx, "SELECT id, name FROM computers WHERE name = ?1", [file.computer.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((computer_id, name)) = computer else {
        return Ok(Err((
            "computer".into(),
            format!("{} has sent no inventory yet: import its inventory first", file.computer),
        )));
    };
    let mut outcome = ResultsOutcome {
        computer: name.clone(),
        source: record.source.clone(),
        recorded: Vec::new(),
        already_recorded: 0,
    };
    for (i, result) in file.results.iter().enumerate() {
        let metadata: Option<String> =
            query_row(tx, "SELECT metadata FROM update_metadata WHERE update_id = ?1", [result.update.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(metadata) = metadata else {
            return Ok(Err((
                format!("results[{i}].update"),
                format!("{} is not in this server's update list", result.update),
            )));
        };
        if let Some(digest) = result.sha256 {
            let listed: Option<i64> = query_row(
                tx,
                "SELECT 1 FROM update_files WHERE update_id = ?1 AND sha256 = ?2",
                params![result.update.as_str(), digest.to_string()],
                |r| r.get(0),
            )
            .optional()?;
            if listed.is_none() {
                return Ok(Err((
                    format!("results[{i}].sha256"),
                    format!("{digest} is not a file of {} as this server lists it", result.update),
                )));
            }
        }
        // Metadata the registry wrote itself; where it cannot be read, Windows' conventions
        // still judge the code.
        let exit_codes = serde_json::from_str::<Update>(&metadata).ok().and_then(|u| u.install).map(|i| i.exit_codes);
        let (judged, meaning) = install_results::judge(result.return_code, result.convention, exit_codes.as_ref());
        let meaning = match &result.message {
            Some(message) => format!("{meaning}; the installer said: {message}"),
            None => meaning,
        };
        let inserted = exec(
            tx,
            "INSERT OR IGNORE INTO install_results (computer_id, update_id, sha256, at, return_code, outcome, meaning, \
             source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                computer_id,
                result.update.as_str(),
                result.sha256.map(|d| d.to_string()),
                result.at.to_string(),
                result.return_code,
                judged.as_str(),
                meaning,
                record.source
            ],
        )?;
        if inserted == 0 {
            outcome.already_recorded += 1;
            continue;
        }
        outcome.recorded.push(JudgedResult {
            computer: name.clone(),
            update: result.update.to_string(),
            sha256: result.sha256.map(|d| d.to_string()),
            at: result.at,
            return_code: result.return_code,
            outcome: judged,
            meaning,
            source: record.source.clone(),
        });
    }
    Ok(Ok(outcome))
}
