//! How `fetch pack` shows its progress: a progress bar with bytes, rate and ETA when stderr
//! is a terminal, plain log lines when it is not (timers, CI, pipes), and JSON Lines events on
//! stdout with `--json`, for scripts: one per file's step, and `progress` events with the
//! bytes and files done, as `ingest` gives them.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use ferry_core::fetch::download::{Job, Progress, Vouched};
use ferry_core::fetch::feed::Skip;
use ferry_core::fetch::pack::PackEvent;
use ferry_core::fetch::source::Location;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{count, human_bytes, safe};
use ferry_core::base::progress::{Stage, Task, Watch};

pub enum Reporter {
    Bar(Mutex<Option<ProgressBar>>, Counted),
    Lines,
    Json(Counted, Mutex<Tally>, View),
}

/// Bytes counted for each file, so that a transfer resumed in the same run is not counted
/// twice and one that starts over takes its bytes back.
type Counted = Mutex<HashMap<Vouched, u64>>;

/// The whole pack's counts, for `progress` events.
#[derive(Default)]
pub struct Tally {
    bytes_done: u64,
    bytes_total: u64,
    files_done: u64,
    files_total: u64,
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        if json {
            Reporter::Json(Mutex::new(HashMap::new()), Mutex::new(Tally::default()), View::new(PROGRAM, true))
        } else if std::io::stderr().is_terminal() {
            Reporter::Bar(Mutex::new(None), Mutex::new(HashMap::new()))
        } else {
            Reporter::Lines
        }
    }

    /// Prints one line, above the bar when there is one.
    fn line(&self, text: String) {
        match self {
            Reporter::Bar(bar, _) => match bar.lock().expect("bar lock").as_ref() {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            },
            _ => eprintln!("{text}"),
        }
    }

    pub fn event(&self, event: PackEvent<'_>) {
        if let Reporter::Json(..) = self {
            if let Some((kind, data)) = json_event(&event) {
                // Standard output gone is reported when the command ends.
                let _ = crate::common::json_line(kind, &data);
            }
            self.tally(&event);
            return;
        }
        match event {
            PackEvent::Selected { updates, files, bytes } => {
                self.line(format!(
                    "fetch: selected {}, {} to carry ({})",
                    count(updates as u64, "update"),
                    count(files as u64, "file"),
                    human_bytes(bytes)
                ));
                if let Reporter::Bar(bar, counted) = self {
                    // A second selection (after --skip-failed left updates out) starts over.
                    counted.lock().expect("counted lock").clear();
                    if let Some(old) = bar.lock().expect("bar lock").take() {
                        old.finish_and_clear();
                    }
                    let pb = ProgressBar::new(bytes);
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    *bar.lock().expect("bar lock") = Some(pb);
                }
            }
            PackEvent::ClockBehind { kept } => {
                self.line(format!("fetch: warning: the system clock is behind the last bundle; dating this one {kept}"))
            }
            PackEvent::FileSystemLimit { file_system, limit } => self.line(format!(
                "fetch: warning: the target is a {file_system} file system, which holds no file over {limit} bytes; \
                 the bundle is split into volumes under that size (as with --max-file-size)"
            )),
            PackEvent::Download(p) => self.download(p),
            PackEvent::Skipped(Skip::Winget(skipped)) => self.line(format!(
                "fetch: skipped {}@{}: {}",
                safe(&skipped.id),
                safe(&skipped.version),
                safe(&skipped.reason)
            )),
            PackEvent::Skipped(Skip::Scan(skipped)) => self.line(format!(
                "fetch: skipped {} {}: {}",
                safe(&skipped.id),
                safe(skipped.title.as_deref().unwrap_or("")),
                safe(&skipped.reason)
            )),
            PackEvent::Sealing { volume, volumes } => {
                self.line(format!("fetch: signing and syncing volume {volume} of {volumes}"))
            }
            PackEvent::LeftOut(l) => self.line(format!(
                "fetch: leaving out {} revision {} (--skip-failed): {}",
                safe(l.id.as_str()),
                l.revision,
                safe(&l.reason)
            )),
            PackEvent::Packed { done, total, job } => {
                if matches!(job.location, Location::File(_)) {
                    // Local files are read once, while they are packed.
                    self.set(job, job.size);
                }
                if let Reporter::Bar(bar, _) = self
                    && let Some(bar) = bar.lock().expect("bar lock").as_ref()
                {
                    bar.set_message(format!("{done}/{total} files packed"));
                    if done == total {
                        bar.finish_and_clear();
                    }
                }
            }
        }
    }

    fn download(&self, p: Progress<'_>) {
        match p {
            Progress::Cached { job } => {
                self.set(job, job.size);
                if let Reporter::Lines = self {
                    self.line(format!("fetch: from cache: {}", safe(&job.location.to_string())));
                }
            }
            Progress::Started { job, from } => {
                self.set(job, from);
                if let Reporter::Lines = self {
                    let resume = if from > 0 { format!(", resuming at byte {from}") } else { String::new() };
                    let verb = if matches!(job.location, Location::File(_)) { "reading" } else { "downloading" };
                    let size = if job.exact { human_bytes(job.size) } else { "size not given by the feed".into() };
                    self.line(format!("fetch: {verb} {} ({size}{resume})", safe(&job.location.to_string())));
                }
            }
            Progress::Bytes { job, bytes } => {
                let counted = self.counted(job);
                self.set(job, counted + bytes);
            }
            Progress::Retrying { job, attempt, of, delay, cause } => self.line(format!(
                "fetch: {}: {}; retry {attempt} of {of} in {:.1} s",
                safe(&job.location.to_string()),
                safe(cause),
                delay.as_secs_f64()
            )),
            Progress::Done { .. } => {}
        }
    }

    /// Counts a pack event into the `progress` events of `--json`.
    fn tally(&self, event: &PackEvent<'_>) {
        let Reporter::Json(_, tally, view) = self else { return };
        let stage = {
            let mut t = tally.lock().expect("tally lock");
            match *event {
                PackEvent::Selected { files, bytes, .. } => {
                    // A second selection (after --skip-failed left updates out) starts over.
                    *t = Tally { files_total: files as u64, bytes_total: bytes, ..Tally::default() };
                    if let Reporter::Json(counted, ..) = self {
                        counted.lock().expect("counted lock").clear();
                    }
                    Stage::Started
                }
                PackEvent::Packed { done, total, job } => {
                    t.files_done = done as u64;
                    drop(t);
                    if matches!(job.location, Location::File(_)) {
                        self.set(job, job.size);
                    }
                    if done == total { Stage::Finished } else { Stage::Running }
                }
                PackEvent::Download(Progress::Cached { job }) => {
                    drop(t);
                    self.set(job, job.size);
                    Stage::Running
                }
                PackEvent::Download(Progress::Started { job, from }) => {
                    drop(t);
                    self.set(job, from);
                    Stage::Running
                }
                PackEvent::Download(Progress::Bytes { job, bytes }) => {
                    drop(t);
                    self.set(job, self.counted(job) + bytes);
                    Stage::Running
                }
                _ => return,
            }
        };
        let t = tally.lock().expect("tally lock");
        view.progress(&ferry_core::base::progress::Progress {
            task: Task::Pack,
            subject: String::new(),
            stage,
            items_done: t.files_done,
            items_total: Some(t.files_total),
            bytes_done: t.bytes_done,
            bytes_total: Some(t.bytes_total),
        });
    }

    fn counted(&self, job: &Job) -> u64 {
        match self {
            Reporter::Bar(_, counted) | Reporter::Json(counted, ..) => {
                counted.lock().expect("counted lock").get(&job.vouched).copied().unwrap_or(0)
            }
            Reporter::Lines => 0,
        }
    }

    /// Records that `bytes` of `job` are in, moving the bar (or the tally) by the difference.
    fn set(&self, job: &Job, bytes: u64) {
        let counted = match self {
            Reporter::Bar(_, counted) | Reporter::Json(counted, ..) => counted,
            Reporter::Lines => return,
        };
        let before = counted.lock().expect("counted lock").insert(job.vouched, bytes).unwrap_or(0);
        match self {
            Reporter::Bar(bar, _) => {
                if let Some(bar) = bar.lock().expect("bar lock").as_ref() {
                    if bytes >= before {
                        bar.inc(bytes - before);
                    } else {
                        bar.dec(before - bytes);
                    }
                }
            }
            Reporter::Json(_, tally, _) => {
                let mut t = tally.lock().expect("tally lock");
                t.bytes_done = (t.bytes_done + bytes).saturating_sub(before);
            }
            Reporter::Lines => {}
        }
    }
}

/// A file's URL, digests and size (null when the feed gives none) with `more`: the SHA-256
/// the feed gives (null for a file it names by SHA-1 only, then given as `sha1`).
fn file_json(job: &Job, mut more: serde_json::Value) -> serde_json::Value {
    let map = more.as_object_mut().expect("an object");
    map.insert("url".into(), json!(job.location.to_string()));
    map.insert("sha256".into(), json!(job.sha256()));
    if let Vouched::Sha1(sha1) = job.vouched {
        map.insert("sha1".into(), json!(sha1));
    }
    map.insert("size".into(), json!(job.exact.then_some(job.size)));
    more
}

/// An event as a JSON line's type and data; none for byte counts.
fn json_event(event: &PackEvent<'_>) -> Option<(&'static str, serde_json::Value)> {
    Some(match event {
        PackEvent::Selected { updates, files, bytes } => {
            ("selected", json!({"updates": updates, "files": files, "bytes": bytes}))
        }
        PackEvent::ClockBehind { kept } => ("clock-behind", json!({"created": kept})),
        PackEvent::FileSystemLimit { file_system, limit } => {
            ("file-system-limit", json!({"file_system": file_system, "limit": limit}))
        }
        PackEvent::Packed { done, total, job } => {
            ("packed", json!({"sha256": job.sha256(), "done": done, "total": total}))
        }
        PackEvent::Sealing { volume, volumes } => ("sealing", json!({"volume": volume, "volumes": volumes})),
        PackEvent::LeftOut(l) => ("left-out", json!(l)),
        PackEvent::Skipped(Skip::Winget(skipped)) => ("plan-skipped", json!(skipped)),
        PackEvent::Skipped(Skip::Scan(skipped)) => ("scan-skipped", json!(skipped)),
        PackEvent::Download(p) => match p {
            Progress::Cached { job } => ("cached", file_json(job, json!({}))),
            Progress::Started { job, from } => ("download-started", file_json(job, json!({"from": from}))),
            Progress::Bytes { .. } => return None,
            Progress::Retrying { job, attempt, of, delay, cause } => (
                "retrying",
                json!({"url": job.location.to_string(), "attempt": attempt, "of": of,
                    "delay_ms": delay.as_millis() as u64, "cause": cause
                }),
            ),
            Progress::Done { job } => ("downloaded", file_json(job, json!({}))),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(size: u64) -> Job {
        Job::sized(
            ferry_core::base::names::Sha256([7; 32]),
            size,
            Location::parse("http://127.0.0.1/update.msu").expect("a valid URL"),
        )
    }

    #[test]
    fn the_bar_counts_resumed_and_restarted_transfers_once() {
        let job = job(100);
        let reporter = Reporter::Bar(Mutex::new(Some(ProgressBar::hidden())), Mutex::new(HashMap::new()));
        let position = || match &reporter {
            Reporter::Bar(bar, _) => bar.lock().unwrap().as_ref().unwrap().position(),
            _ => unreachable!(),
        };
        reporter.download(Progress::Started { job: &job, from: 0 });
        reporter.download(Progress::Bytes { job: &job, bytes: 40 });
        assert_eq!(position(), 40);
        // The connection broke; the next attempt resumes at byte 40.
        reporter.download(Progress::Started { job: &job, from: 40 });
        assert_eq!(position(), 40, "a resume is not counted twice");
        reporter.download(Progress::Bytes { job: &job, bytes: 20 });
        // The server ignored the range: the transfer starts over.
        reporter.download(Progress::Started { job: &job, from: 0 });
        assert_eq!(position(), 0, "a restart takes its bytes back");
        reporter.download(Progress::Bytes { job: &job, bytes: 100 });
        assert_eq!(position(), 100);
    }
}
