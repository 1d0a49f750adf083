//! Downloads update files into fetch's cache: several at once, each streamed to disk with its
//! size and SHA-256 checked on the way, resumed with HTTP ranges after an interruption, and
//! retried with backoff after timeouts, resets and server errors.
//!
//! Workers run on their own threads and hand each verified file to the caller's `ready`
//! callback on the calling thread, in the order they complete, so the bundle is written
//! while other files are still downloading and both cores stay busy. Memory is one copy
//! buffer per worker, whatever the file sizes.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use sha2::Digest;

use crate::base::error::{Error, ErrorClass, IoContext, Result};
use crate::base::names::{Sha1, Sha256};
use crate::fetch::cache::Cache;
use crate::fetch::source::{Location, Sources};
use crate::fetch::transfer::{Body, Failure};

const COPY_BUFFER: usize = 256 * 1024;
/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// A file ready to be packed.
#[derive(Debug, Clone)]
pub struct Ready {
    pub path: PathBuf,
    /// Its size and SHA-256 were checked. A local source named by SHA-256 is not: it is
    /// read once, and hashed while it is copied into the bundle, so that the bytes checked
    /// are the bytes packed.
    pub verified: bool,
    /// Its SHA-256: the one the metadata gives, or, for a file named by SHA-1, the one
    /// computed once the SHA-1 matched.
    pub sha256: Sha256,
}

pub use crate::fetch::cache::Vouched;

/// One file to have in the cache.
#[derive(Debug, Clone)]
pub struct Job {
    pub vouched: Vouched,
    /// The file's size; when not `exact`, the most bytes accepted (a winget manifest gives
    /// no sizes: the file is fetched to learn it, its digest still checked).
    pub size: u64,
    pub exact: bool,
    pub location: Location,
}

impl Job {
    /// A file whose size and SHA-256 the metadata gives.
    pub fn sized(digest: Sha256, size: u64, location: Location) -> Job {
        Job { vouched: Vouched::Sha256(digest), size, exact: true, location }
    }

    /// A file whose size is learnt by fetching it, up to `at_most` bytes.
    pub fn size_unknown(digest: Sha256, at_most: u64, location: Location) -> Job {
        Job { vouched: Vouched::Sha256(digest), size: at_most, exact: false, location }
    }

    /// A file the metadata names by SHA-1 only, of unknown size up to `at_most` bytes.
    pub fn by_sha1(sha1: Sha1, at_most: u64, location: Location) -> Job {
        Job { vouched: Vouched::Sha1(sha1), size: at_most, exact: false, location }
    }

    /// The SHA-256 the metadata gives, when it gives one.
    pub fn sha256(&self) -> Option<Sha256> {
        match self.vouched {
            Vouched::Sha256(d) => Some(d),
            Vouched::Sha1(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// How many files are downloaded at once.
    pub parallel: usize,
    /// How many times a failed download is tried again.
    pub retries: u32,
    /// The pause before the first retry; it doubles with each further one.
    pub retry_delay: Duration,
    /// The stall rule, as curl's `--speed-limit` and `--speed-time`: a transfer slower than
    /// `speed_limit` bytes a second over `speed_time` counts as broken (and is resumed by the
    /// next attempt). A per-read timeout alone lets a server that sends a byte a second hold
    /// a pack for a day.
    pub speed_limit: u64,
    pub speed_time: Duration,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            parallel: 4,
            retries: 5,
            retry_delay: Duration::from_secs(1),
            speed_limit: DEFAULT_SPEED_LIMIT,
            speed_time: DEFAULT_SPEED_TIME,
        }
    }
}

/// 1 KiB/s: far below any link that carries updates (a 64 kbit/s line makes 8 KiB/s).
pub const DEFAULT_SPEED_LIMIT: u64 = 1024;
/// Over a minute, so that a pause of the server or the network is not a stall.
pub const DEFAULT_SPEED_TIME: Duration = Duration::from_secs(60);

/// What the downloader reports as it goes. Sent from worker threads.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// The cache held the file and its digest still matched.
    Cached { job: &'a Job },
    /// A transfer started, from byte `from` (above 0 when resuming).
    Started { job: &'a Job, from: u64 },
    /// `bytes` more bytes arrived.
    Bytes { job: &'a Job, bytes: u64 },
    /// An attempt failed; another follows after `delay`.
    Retrying { job: &'a Job, attempt: u32, of: u32, delay: Duration, cause: &'a str },
    /// The file is complete and verified.
    Done { job: &'a Job },
}

/// The outcome of one attempt.
enum Attempt {
    /// The file is in the cache at this path, with this SHA-256.
    Done(PathBuf, Sha256),
    /// Try again (after a pause), keeping or dropping the partial bytes.
    Again { cause: String, restart: bool },
}

struct Worker<'a> {
    sources: &'a Sources,
    options: &'a DownloadOptions,
    cache: &'a Cache,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
}

/// Brings every job's file into the cache (local files stay where they are) and calls
/// `ready` with each one as it completes. Stops at the first failure (of a download or of
/// `ready`) and returns it; files finished until then stay in the cache.
pub fn run(
    jobs: &[Job],
    sources: &Sources,
    cache: &Cache,
    options: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
    ready: impl FnMut(&Job, &Ready) -> Result<()>,
) -> Result<()> {
    run_with(jobs, sources, cache, options, progress, false, ready).map(|_| ())
}

/// Whether a file that could not be had may be left out (`fetch pack --skip-failed`): the
/// source's fault (the network, a server's error, bytes that are not the ones named), not
/// this machine's (a full disk stops the pack whatever is asked).
pub fn is_source_failure(e: &Error) -> bool {
    matches!(e.class(), ErrorClass::Network | ErrorClass::Integrity)
}

/// Brings every job's file into the cache as [`run`] does, going on past files whose
/// source failed ([`is_source_failure`]); returns those, by job index, with their error.
/// Any other failure stops it and is returned.
pub fn fetch_all(
    jobs: &[Job],
    sources: &Sources,
    cache: &Cache,
    options: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Vec<(usize, Error)>> {
    run_with(jobs, sources, cache, options, progress, true, |_, _| Ok(()))
}

fn run_with(
    jobs: &[Job],
    sources: &Sources,
    cache: &Cache,
    options: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
    keep_going: bool,
    mut ready: impl FnMut(&Job, &Ready) -> Result<()>,
) -> Result<Vec<(usize, Error)>> {
    let queue = Mutex::new((0..jobs.len()).collect::<VecDeque<usize>>());
    let stop = AtomicBool::new(false);
    let workers = options.parallel.clamp(1, jobs.len().max(1));
    let worker = Worker { sources, options, cache, progress };
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<(usize, Result<Ready>)>();
        for _ in 0..workers {
            let sender = sender.clone();
            let (queue, stop, worker) = (&queue, &stop, &worker);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Some(i) = queue.lock().expect("queue lock").pop_front() else { break };
                    let result = worker.fetch(&jobs[i], options, stop);
                    if sender.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut first_error = None;
        let mut failed = Vec::new();
        for (i, result) in receiver {
            if first_error.is_some() {
                continue;
            }
            match result {
                Err(e) if keep_going && is_source_failure(&e) => failed.push((i, e)),
                result => {
                    if let Err(e) = result.and_then(|r| ready(&jobs[i], &r)) {
                        stop.store(true, Ordering::SeqCst);
                        first_error = Some(e);
                    }
                }
            }
        }
        failed.sort_by_key(|(i, _)| *i);
        first_error.map_or(Ok(failed), Err)
    })
}

/// The SHA-256, SHA-1 and size of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(Sha256, Sha1, u64)> {
    let mut file = File::open(path)?;
    let mut hashers = Hashers::default();
    let size = io::copy(&mut file, &mut hashers)?;
    let (sha256, sha1) = hashers.finish();
    Ok((sha256, sha1, size))
}

/// SHA-256 and SHA-1 at once: a file named by SHA-1 is checked by it and carried by its
/// SHA-256, in one read.
#[derive(Default)]
struct Hashers {
    sha256: sha2::Sha256,
    sha1: sha1::Sha1,
}

impl Hashers {
    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.sha1.update(bytes);
    }

    fn finish(self) -> (Sha256, Sha1) {
        (Sha256(self.sha256.finalize().into()), Sha1(self.sha1.finalize().into()))
    }
}

impl Write for Hashers {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a file of `sha256`, `sha1` and `size` is the one `job` asks for.
fn matches(job: &Job, sha256: Sha256, sha1: Sha1, size: u64) -> bool {
    let size_ok = size == job.size || !job.exact && size <= job.size;
    size_ok
        && match job.vouched {
            Vouched::Sha256(d) => d == sha256,
            Vouched::Sha1(d) => d == sha1,
        }
}

impl Worker<'_> {
    fn fetch(&self, job: &Job, options: &DownloadOptions, stop: &AtomicBool) -> Result<Ready> {
        if let Location::File(path) = &job.location {
            // Already on a local disk: copying it into the cache first would only write it
            // twice. The bundle writer hashes it as it copies it. Only a regular file: a
            // device (/dev/zero) or FIFO is refused before a byte is read.
            crate::base::shared_tree::open_regular(path, crate::base::shared_tree::Links::Follow)?;
            (self.progress)(Progress::Started { job, from: 0 });
            return match job.vouched {
                Vouched::Sha256(sha256) => Ok(Ready { path: path.clone(), verified: false, sha256 }),
                Vouched::Sha1(expected) => {
                    // Named by SHA-1 only: its SHA-256 is learnt here, in one read.
                    let (sha256, sha1, size) = hash_file(path).at(path)?;
                    if !matches(job, sha256, sha1, size) {
                        return Err(Error::Sha1Mismatch { what: path.display().to_string(), expected, actual: sha1 });
                    }
                    Ok(Ready { path: path.clone(), verified: true, sha256 })
                }
            };
        }
        if let Some(cached) = self.cache.find(&job.vouched, job.exact.then_some(job.size)) {
            // Re-hash what an earlier run left: the disk may have changed since.
            match hash_file(&cached) {
                Ok((sha256, sha1, size))
                    if matches(job, sha256, sha1, size) && cached == self.cache.path_of(&sha256) =>
                {
                    (self.progress)(Progress::Cached { job });
                    return Ok(Ready { path: cached, verified: true, sha256 });
                }
                _ => self.cache.discard(&cached)?,
            }
        }
        let url = job.location.to_string();
        let mut attempt = 0;
        loop {
            match self.attempt(job, stop)? {
                Attempt::Done(path, sha256) => {
                    (self.progress)(Progress::Done { job });
                    return Ok(Ready { path, verified: true, sha256 });
                }
                Attempt::Again { cause, restart } => {
                    if restart {
                        self.cache.discard(&self.cache.partial_path(&job.vouched))?;
                    }
                    if attempt >= options.retries || stop.load(Ordering::SeqCst) {
                        let tries = attempt + 1;
                        return Err(Error::Download {
                            url,
                            cause: format!(
                                "{cause} (gave up after {tries} attempt{})",
                                if tries == 1 { "" } else { "s" }
                            ),
                        });
                    }
                    let delay = options.retry_delay.saturating_mul(1 << attempt.min(16)).min(MAX_DELAY);
                    attempt += 1;
                    (self.progress)(Progress::Retrying { job, attempt, of: options.retries, delay, cause: &cause });
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// One transfer: resume the partial file if the source allows it, stream the rest while
    /// hashing, and check size and digest. Errors are final; `Again` is worth a retry.
    fn attempt(&self, job: &Job, stop: &AtomicBool) -> Result<Attempt> {
        let url = job.location.to_string();
        let partial = self.cache.partial_path(&job.vouched);
        let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let from = if have < job.size { have } else { 0 };
        let of_size = if job.exact { format!("{} bytes", job.size) } else { "a size not known beforehand".to_string() };
        let body = match self.sources.open_at(&job.location, from) {
            Ok(body) => body,
            Err(Failure { cause, retryable: true, restart }) => return Ok(Attempt::Again { cause, restart }),
            Err(Failure { cause, .. }) => return Err(Error::Download { url, cause }),
        };
        let (mut reader, mut file, mut hasher, mut written) = match body {
            Body::FromOffset(reader) if from > 0 => {
                // Hash the bytes kept from before, then append.
                let mut hasher = Hashers::default();
                let mut kept = File::open(&partial).at(&partial)?.take(from);
                io::copy(&mut kept, &mut hasher).at(&partial)?;
                let file = OpenOptions::new().append(true).open(&partial).at(&partial)?;
                (reader, file, hasher, from)
            }
            Body::FromOffset(reader) | Body::FromStart(reader) => {
                let file = File::create(&partial).at(&partial)?;
                (reader, file, Hashers::default(), 0)
            }
        };
        (self.progress)(Progress::Started { job, from: written });
        let mut buf = vec![0u8; COPY_BUFFER];
        let (speed_limit, speed_time) = (self.options.speed_limit, self.options.speed_time);
        let mut window = (std::time::Instant::now(), 0u64);
        loop {
            let elapsed = window.0.elapsed();
            if speed_limit > 0 && elapsed >= speed_time {
                if (window.1 as f64) < speed_limit as f64 * elapsed.as_secs_f64() {
                    file.flush().at(&partial)?;
                    return Ok(Attempt::Again {
                        cause: format!(
                            "stalled: {} bytes in the last {:.0} s, below {speed_limit} bytes a second (--speed-limit, --speed-time), after {written} bytes of {of_size}",
                            window.1,
                            elapsed.as_secs_f64(),
                        ),
                        restart: false,
                    });
                }
                window = (std::time::Instant::now(), 0);
            }
            if stop.load(Ordering::SeqCst) {
                // Another file failed and the pack is over; keep the partial bytes for next time.
                file.flush().at(&partial)?;
                return Err(Error::Internal("stopped because another file failed".into()));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush().at(&partial)?;
                    return Ok(Attempt::Again {
                        cause: format!("transfer broke off after {written} bytes of {of_size}: {e}"),
                        restart: false,
                    });
                }
            };
            if written + n as u64 > job.size {
                drop(file);
                self.cache.discard(&partial)?;
                if !job.exact {
                    return Err(Error::Download {
                        url,
                        cause: format!("more than {} bytes, the most accepted for a file of unknown size", job.size),
                    });
                }
                return Err(Error::SizeMismatch { what: url, expected: job.size, actual: written + n as u64 });
            }
            file.write_all(&buf[..n]).at(&partial)?;
            hasher.update(&buf[..n]);
            written += n as u64;
            window.1 += n as u64;
            (self.progress)(Progress::Bytes { job, bytes: n as u64 });
        }
        drop(file);
        if job.exact && written < job.size {
            return Ok(Attempt::Again {
                cause: format!("the connection closed after {written} of {} bytes", job.size),
                restart: false,
            });
        }
        let (sha256, sha1) = hasher.finish();
        if !matches(job, sha256, sha1, written) {
            self.cache.discard(&partial)?;
            if from > 0 {
                // The bytes kept from before may be what is wrong: fetch the whole file again.
                return Ok(Attempt::Again {
                    cause: format!("resumed file has SHA-256 {sha256}; starting over"),
                    restart: true,
                });
            }
            return Err(match job.vouched {
                Vouched::Sha256(expected) => Error::DigestMismatch { what: url, expected, actual: sha256 },
                Vouched::Sha1(expected) => Error::Sha1Mismatch { what: url, expected, actual: sha1 },
            });
        }
        Ok(Attempt::Done(self.cache.commit(&job.vouched, &sha256)?, sha256))
    }
}
