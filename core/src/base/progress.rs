//! How far a long piece of work has come, for the person or the script waiting on it.
//!
//! Work that reads many files or rows (an import, a verification, a publish, a check, a list
//! import, a pack) counts its items and bytes on a [`Meter`] and hands a [`Progress`] to a
//! [`Watch`]: when it starts, at most every [`INTERVAL`] while it runs, and when it ends. What
//! a watch does with it (a bar on a terminal, a line in a log, a JSON event) is the binary's
//! choice; the rules only count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The shortest time between two reports of the same work while it runs.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// The kind of work being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Copying a bundle volume's payloads into the store, hashing them on the way.
    Import,
    /// Reading and hashing a bundle volume's payloads, copying nothing.
    Verify,
    /// Placing files on a distribution point.
    Publish,
    /// Hashing every file of the content store.
    Check,
    /// Reading and merging the rows of an update list.
    ImportList,
    /// Downloading, reading and packing the files of a bundle.
    Pack,
}

impl Task {
    /// The verb a person reads.
    pub fn doing(self) -> &'static str {
        match self {
            Task::Import => "importing",
            Task::Verify => "verifying",
            Task::Publish => "publishing",
            Task::Check => "checking",
            Task::ImportList => "importing the list",
            Task::Pack => "packing",
        }
    }

    /// What the items of this task are.
    pub fn items(self) -> &'static str {
        match self {
            Task::ImportList => "rows",
            _ => "files",
        }
    }
}

/// Where the work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Started,
    Running,
    Finished,
}

/// One report of how far a piece of work has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub task: Task,
    /// What is being worked on: a bundle's path, a distribution point's name, a list's source.
    pub subject: String,
    pub stage: Stage,
    pub items_done: u64,
    /// None where the count is not known before the end (the rows of a list).
    pub items_total: Option<u64>,
    pub bytes_done: u64,
    /// None where the size is not known (a list read from standard input).
    pub bytes_total: Option<u64>,
}

/// Receives reports; called from whichever thread did the work, so it must be `Sync`.
pub trait Watch: Sync {
    fn progress(&self, progress: &Progress);
}

impl<F: Fn(&Progress) + Sync> Watch for F {
    fn progress(&self, progress: &Progress) {
        self(progress)
    }
}

/// A watch that looks away: for work nobody waits on.
pub struct Unwatched;

impl Watch for Unwatched {
    fn progress(&self, _: &Progress) {}
}

/// Counts one piece of work from any number of threads and reports it to a watch: started
/// when made, finished when [`Meter::finish`] is called, in between at most every
/// [`INTERVAL`].
pub struct Meter<'a> {
    watch: &'a dyn Watch,
    task: Task,
    subject: String,
    items_total: Option<u64>,
    bytes_total: Option<u64>,
    items_done: AtomicU64,
    bytes_done: AtomicU64,
    /// When the last report went out; held while one is made, so reports come in order.
    last: Mutex<Instant>,
    interval: Duration,
}

impl<'a> Meter<'a> {
    /// Starts counting `items_total` items of `bytes_total` bytes, and says so.
    pub fn start(
        watch: &'a dyn Watch,
        task: Task,
        subject: String,
        items_total: impl Into<Option<u64>>,
        bytes_total: impl Into<Option<u64>>,
    ) -> Meter<'a> {
        Meter::with_interval(watch, task, subject, (items_total.into(), bytes_total.into()), INTERVAL)
    }

    fn with_interval(
        watch: &'a dyn Watch,
        task: Task,
        subject: String,
        (items_total, bytes_total): (Option<u64>, Option<u64>),
        interval: Duration,
    ) -> Meter<'a> {
        let meter = Meter {
            watch,
            task,
            subject,
            items_total,
            bytes_total,
            items_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            interval,
        };
        meter.report(Stage::Started);
        meter
    }

    /// `bytes` more were read (or written).
    pub fn bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        self.tick();
    }

    /// One more item is done.
    pub fn item(&self) {
        self.items_done.fetch_add(1, Ordering::Relaxed);
        self.tick();
    }

    /// One more item of `bytes` bytes is done, counted whole.
    pub fn item_of(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        self.item();
    }

    /// The work ended (whether or not every item was done: a refusal ends it early).
    pub fn finish(self) {
        self.report(Stage::Finished);
    }

    /// Reports if the interval has passed since the last report; never waits for another
    /// thread's report.
    fn tick(&self) {
        let Ok(mut last) = self.last.try_lock() else { return };
        if last.elapsed() >= self.interval {
            self.watch.progress(&self.snapshot(Stage::Running));
            *last = Instant::now();
        }
    }

    fn report(&self, stage: Stage) {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.watch.progress(&self.snapshot(stage));
        *last = Instant::now();
    }

    fn snapshot(&self, stage: Stage) -> Progress {
        Progress {
            task: self.task,
            subject: self.subject.clone(),
            stage,
            items_done: self.items_done.load(Ordering::Relaxed),
            items_total: self.items_total,
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total,
        }
    }
}

/// A reader that counts the bytes read through it on a meter.
pub struct Counted<'m, 'w, R> {
    pub inner: R,
    pub meter: &'m Meter<'w>,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Mutex<Vec<Progress>> {
        Mutex::new(Vec::new())
    }

    #[test]
    fn reports_start_and_finish_whatever_the_interval() {
        let reports = seen();
        let watch = |p: &Progress| reports.lock().unwrap().push(p.clone());
        let meter =
            Meter::with_interval(&watch, Task::Check, "store".into(), (Some(2), Some(30)), Duration::from_secs(3600));
        meter.item_of(10);
        meter.item_of(20);
        meter.finish();
        let reports = reports.into_inner().unwrap();
        let stages: Vec<Stage> = reports.iter().map(|p| p.stage).collect();
        assert_eq!(stages, [Stage::Started, Stage::Finished], "the hour-long interval holds the running reports back");
        assert_eq!((reports[0].items_done, reports[0].bytes_done), (0, 0));
        assert_eq!((reports[1].items_done, reports[1].bytes_done), (2, 30));
        assert_eq!((reports[1].items_total, reports[1].bytes_total), (Some(2), Some(30)));
    }

    #[test]
    fn reports_while_running_once_the_interval_has_passed() {
        let reports = seen();
        let watch = |p: &Progress| reports.lock().unwrap().push(p.clone());
        let meter = Meter::with_interval(&watch, Task::Import, "b.zip".into(), (Some(3), Some(3)), Duration::ZERO);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| meter.item_of(1));
            }
        });
        meter.finish();
        let reports = reports.into_inner().unwrap();
        assert!(reports.iter().any(|p| p.stage == Stage::Running), "{reports:?}");
        // Counts never go backwards, whichever thread reported.
        for pair in reports.windows(2) {
            assert!(pair[0].bytes_done <= pair[1].bytes_done, "{reports:?}");
        }
        assert_eq!(reports.last().unwrap().items_done, 3);
    }

    #[test]
    fn events_serialise_in_kebab_case() {
        let p = Progress {
            task: Task::ImportList,
            subject: "list.csv".into(),
            stage: Stage::Started,
            items_done: 0,
            items_total: None,
            bytes_done: 0,
            bytes_total: Some(10),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["task"], "import-list");
        assert!(json["items_total"].is_null());
        assert_eq!(json["stage"], "started");
    }
}
