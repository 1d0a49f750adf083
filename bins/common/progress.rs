//! How long work is shown to whoever waits on it: a bar on a terminal, a plain line every
//! [`LINE_EVERY`] in a log (a timer, a pipe, CI), or `progress` events with `--json`.
//! The counting is `ferry_core::base::progress`'s; this only draws.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_core::base::progress::{Progress, Stage, Watch};
use indicatif::{ProgressBar, ProgressStyle};

use super::human_bytes;

/// How often a log gets a line about work still running.
pub const LINE_EVERY: Duration = Duration::from_secs(10);
/// How often a script gets a `progress` event about work still running.
pub const EVENT_EVERY: Duration = Duration::from_secs(1);

pub enum View {
    /// A bar on standard error, for one piece of work at a time.
    Bar(Mutex<Option<ProgressBar>>),
    /// Plain lines on standard error, the last one's time kept.
    Lines { program: &'static str, last: Mutex<Option<Instant>>, ran_long: AtomicBool },
    /// `progress` JSON events on standard output, the last one's time kept.
    Json(Mutex<Option<Instant>>),
}

impl View {
    /// A bar when standard error is a terminal, JSON events with `--json`, lines otherwise.
    pub fn new(program: &'static str, json: bool) -> View {
        if json {
            View::Json(Mutex::new(None))
        } else if std::io::stderr().is_terminal() {
            View::Bar(Mutex::new(None))
        } else {
            View::Lines { program, last: Mutex::new(None), ran_long: AtomicBool::new(false) }
        }
    }

    /// Whether a running report is due, `every` after the last one; marks it sent if so.
    fn due(last: &Mutex<Option<Instant>>, stage: Stage, every: Duration) -> bool {
        let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = match stage {
            Stage::Started => true,
            Stage::Running => last.is_none_or(|at| at.elapsed() >= every),
            Stage::Finished => true,
        };
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

impl Watch for View {
    fn progress(&self, p: &Progress) {
        match self {
            View::Json(last) => {
                if View::due(last, p.stage, EVENT_EVERY) {
                    // Standard output gone is reported when the command ends.
                    let _ = super::json_line("progress", p);
                }
            }
            View::Lines { program, last, ran_long } => {
                let said = match p.stage {
                    // The end is worth a line in a log only when the work was long enough to
                    // have had one while running; the command's own output says the rest.
                    Stage::Finished => ran_long.swap(false, Ordering::Relaxed),
                    Stage::Started => View::due(last, p.stage, LINE_EVERY),
                    Stage::Running => {
                        let due = View::due(last, p.stage, LINE_EVERY);
                        ran_long.fetch_or(due, Ordering::Relaxed);
                        due
                    }
                };
                if said {
                    eprintln!("{program}: {}", line(p));
                }
            }
            View::Bar(bar) => {
                let mut bar = bar.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match p.stage {
                    Stage::Started => {
                        let pb = ProgressBar::new(p.bytes_total.unwrap_or(0));
                        let counts = if p.bytes_total.is_some() {
                            "{bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
                        } else {
                            "{bytes} {binary_bytes_per_sec}"
                        };
                        pb.set_style(
                            ProgressStyle::with_template(&format!(
                                "{{spinner}} {{prefix}} [{{bar:30}}] {counts} {{msg}}"
                            ))
                            .expect("a valid template")
                            .progress_chars("=> "),
                        );
                        pb.set_prefix(format!("{} {}", p.task.doing(), super::safe(&short(&p.subject))));
                        pb.enable_steady_tick(Duration::from_millis(200));
                        *bar = Some(pb);
                    }
                    Stage::Running => {
                        if let Some(pb) = bar.as_ref() {
                            pb.set_position(p.bytes_done);
                            pb.set_message(items(p));
                        }
                    }
                    Stage::Finished => {
                        if let Some(pb) = bar.take() {
                            pb.finish_and_clear();
                        }
                    }
                }
            }
        }
    }
}

/// The last two components of a path-like subject: a bar has a line's width.
fn short(subject: &str) -> String {
    let parts: Vec<&str> = subject.rsplit(['/', '\\']).take(2).collect();
    if parts.len() < 2 || subject.len() <= 40 {
        return subject.to_string();
    }
    format!("…/{}/{}", parts[1], parts[0])
}

/// "3 of 6 files" (or "3 rows" when the count is not known yet).
fn items(p: &Progress) -> String {
    match p.items_total {
        Some(total) => format!("{} of {total} {}", p.items_done, p.task.items()),
        None => format!("{} {}", p.items_done, p.task.items()),
    }
}

/// One log line: what, how many items, how many bytes of how many, and the share done; at
/// the start, what there is to do.
pub fn line(p: &Progress) -> String {
    let what = format!("{} {}", p.task.doing(), super::safe(&p.subject));
    if p.stage == Stage::Started {
        let items = p.items_total.map(|n| format!("{n} {}", p.task.items()));
        let bytes = p.bytes_total.map(human_bytes);
        let sizes: Vec<String> = items.into_iter().chain(bytes).collect();
        return if sizes.is_empty() { what } else { format!("{what}: {}", sizes.join(", ")) };
    }
    let bytes = match p.bytes_total {
        Some(total) if total > 0 => {
            let percent = p.bytes_done.saturating_mul(100) / total;
            format!("{} of {} ({percent}%)", human_bytes(p.bytes_done), human_bytes(total))
        }
        _ => human_bytes(p.bytes_done),
    };
    format!("{what}: {}, {bytes}", items(p))
}

#[cfg(test)]
mod tests {
    use ferry_core::base::progress::Task;

    use super::*;

    fn progress(stage: Stage) -> Progress {
        Progress {
            task: Task::Import,
            subject: "/media/stick/ferry-default-000001.zip".into(),
            stage,
            items_done: 3,
            items_total: Some(6),
            bytes_done: 512,
            bytes_total: Some(2048),
        }
    }

    #[test]
    fn a_log_line_says_items_bytes_and_share() {
        assert_eq!(
            line(&progress(Stage::Running)),
            "importing /media/stick/ferry-default-000001.zip: 3 of 6 files, 512 B of 2.0 KiB (25%)"
        );
    }

    #[test]
    fn a_log_line_at_the_start_says_what_there_is_to_do() {
        assert_eq!(
            line(&progress(Stage::Started)),
            "importing /media/stick/ferry-default-000001.zip: 6 files, 2.0 KiB"
        );
    }

    #[test]
    fn running_reports_wait_their_interval() {
        let last = Mutex::new(None);
        assert!(View::due(&last, Stage::Started, EVENT_EVERY));
        assert!(!View::due(&last, Stage::Running, EVENT_EVERY), "just after the start");
        assert!(View::due(&last, Stage::Running, Duration::ZERO));
        assert!(View::due(&last, Stage::Finished, EVENT_EVERY), "the end is always said");
    }
}
