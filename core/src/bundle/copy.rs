//! Copying a bundle's payloads out on every core.
//!
//! SHA-256 is the costly step of an import, and one file's hash runs on one core, so the
//! payloads are shared among workers (one per core, at most [`MAX_WORKERS`]), each taking the
//! next payload in bundle order. A worker reads its payload block by block with positional
//! reads, checks the CRC-32 and hashes each block, then hands the block to a writer thread of
//! its own, which writes it while the worker reads and hashes the next one. The bytes hashed
//! are the bytes written, from the same memory: what is verified is what was copied, whatever
//! the medium does afterwards. A payload that needs no copy (the store holds it already) is
//! read and hashed all the same.
//!
//! Memory stays flat: each worker owns [`BLOCKS_IN_FLIGHT`] blocks of [`BLOCK`] bytes, reused
//! from payload to payload. Blocks are aligned to 4 KiB so a sink may write them with direct
//! I/O. On the first failure the workers take no new payload, and the failure of the first
//! payload in bundle order is the one reported, so a refusal names the same entry every run.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use sha2::Digest;

use crate::base::error::{Error, Result};
use crate::base::names::Sha256;
use crate::base::progress::Meter;
use crate::bundle::container::{Container, Entry};

/// Bytes read, hashed and written at a time.
pub const BLOCK: usize = 1 << 20;
/// Memory alignment of a block, and the granularity of direct I/O.
pub const ALIGN: usize = 4096;
/// Blocks a worker may have between its reads and its writer.
const BLOCKS_IN_FLIGHT: usize = 4;
/// Most workers, whatever the core count: beyond this the disk is the limit.
pub const MAX_WORKERS: usize = 4;

/// Where one payload's bytes go, on a writer thread: blocks in order, then `finish`.
pub trait BlockSink: Send {
    /// What a finished sink leaves (for the store: a synced temporary file).
    type Done: Send;
    fn write_block(&mut self, block: &[u8]) -> io::Result<()>;
    /// After the last block, before the payload's digest is judged.
    fn finish(self) -> io::Result<Self::Done>;
}

/// A sink for reads that copy nothing.
pub enum Discard {}

impl BlockSink for Discard {
    type Done = ();
    fn write_block(&mut self, _: &[u8]) -> io::Result<()> {
        match *self {}
    }
    fn finish(self) -> io::Result<()> {
        match self {}
    }
}

/// One payload to read: its entry and what its bytes must be.
pub struct Job<'a> {
    pub entry: &'a Entry,
    pub sha256: Sha256,
    pub size: u64,
}

/// A block of memory aligned to [`ALIGN`].
struct Block {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Block {
        let buf = vec![0u8; BLOCK + ALIGN];
        // Always a small offset for a byte buffer; a start past ALIGN would only cost direct I/O.
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block { buf, start, len: 0 }
    }

    fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + BLOCK]
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// How many workers to run for `jobs` payloads.
fn workers_for(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, MAX_WORKERS).min(jobs.max(1))
}

/// Reads every job's payload from `container`, checking CRC-32, size and SHA-256, and writes
/// it into the sink `open` gives for it, if any (called on the worker when the payload's turn
/// comes, so no more sinks are open at once than workers). Returns, in job order, what each
/// sink left (None for a payload only checked), or the error of the first job, in job order,
/// that failed. `what` names a job in errors. Each block read and each payload done is
/// counted on `meter`.
pub fn copy_all<S: BlockSink>(
    container: &Container,
    jobs: &[Job<'_>],
    meter: &Meter<'_>,
    open: impl Fn(usize) -> Result<Option<S>> + Sync,
    what: impl Fn(usize) -> String + Sync,
) -> Result<Vec<Option<S::Done>>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Each job's outcome, by job; None until a worker has taken the job.
    type Outcome<D> = Option<Result<Option<D>>>;
    let results: Mutex<Vec<Outcome<S::Done>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers_for(jobs.len()) {
            scope.spawn(|| {
                let mut spare: Vec<Block> = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = copy_one(container, job, &mut spare, || open(i), &what(i), meter);
                    meter.item();
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut done = Vec::with_capacity(jobs.len());
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Some(r) => done.push(r?),
            // Not reached: a later job failed first and the workers stopped.
            None => {
                return Err(Error::Internal(format!("{} was not read: an earlier failure stopped the copy", what(i))));
            }
        }
    }
    Ok(done)
}

/// One payload: read, CRC-checked and hashed on this thread, written on a writer thread.
fn copy_one<S: BlockSink>(
    container: &Container,
    job: &Job<'_>,
    spare: &mut Vec<Block>,
    open: impl FnOnce() -> Result<Option<S>>,
    what: &str,
    meter: &Meter<'_>,
) -> Result<Option<S::Done>> {
    while spare.len() < BLOCKS_IN_FLIGHT {
        spare.push(Block::new());
    }
    let mut reader = container.reader(job.entry);
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let done = match open()? {
        None => {
            let block = &mut spare[0];
            loop {
                let n = reader.fill(block.space())?;
                if n == 0 {
                    break;
                }
                hasher.update(&block.space()[..n]);
                size += n as u64;
                meter.bytes(n as u64);
            }
            None
        }
        Some(sink) => {
            // Blocks go to the writer full and come back empty. Only the writer holds the way
            // back, so if it stops (a full disk) the reads stop too instead of waiting forever.
            let (full_tx, full_rx) = mpsc::sync_channel::<Block>(BLOCKS_IN_FLIGHT);
            let (empty_tx, empty_rx) = mpsc::channel::<Block>();
            for block in spare.drain(..) {
                empty_tx.send(block).expect("the receiver is held here");
            }
            let written = std::thread::scope(|scope| {
                let writer = scope.spawn(move || -> io::Result<S::Done> {
                    let mut sink = sink;
                    for block in full_rx {
                        sink.write_block(block.bytes())?;
                        // The reader may have stopped: then the block is simply dropped.
                        let _ = empty_tx.send(block);
                    }
                    sink.finish()
                });
                let read = (|| -> Result<()> {
                    loop {
                        let Ok(mut block) = empty_rx.recv() else { return Ok(()) };
                        let n = reader.fill(block.space())?;
                        if n == 0 {
                            spare.push(block);
                            return Ok(());
                        }
                        block.len = n;
                        hasher.update(block.bytes());
                        size += n as u64;
                        meter.bytes(n as u64);
                        if full_tx.send(block).is_err() {
                            return Ok(()); // the writer failed; its error is reported below
                        }
                    }
                })();
                drop(full_tx);
                let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                read.map(|()| written)
            })?;
            spare.extend(empty_rx.try_iter());
            // A failed write is the destination's fault (a full disk), not the bundle's.
            Some(written.map_err(|e| Error::io(format!("the copy of entry {:?}", job.entry.name), e))?)
        }
    };
    reader.finish()?;
    if size != job.size {
        return Err(Error::SizeMismatch { what: what.to_string(), expected: job.size, actual: size });
    }
    let actual = Sha256(hasher.finalize().into());
    if actual != job.sha256 {
        return Err(Error::DigestMismatch { what: what.to_string(), expected: job.sha256, actual });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::base::progress::{Progress, Task, Unwatched};
    use crate::bundle::writer::BundleWriter;
    use crate::server::store::Store;

    /// Sizes around every boundary the copy has: empty, below, at and past one 4 KiB page
    /// (direct I/O writes whole pages, the rest goes through the page cache), and past one
    /// and several blocks.
    const SIZES: [usize; 8] = [0, 1, 4095, 4096, 4097, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345];

    fn body(i: usize, size: usize) -> Vec<u8> {
        (0..size).map(|j| (j * 31 + i * 7 + j / 4093) as u8).collect()
    }

    /// A zip of one stored entry per size, with the bodies' digests.
    fn bundle(dir: &Path) -> (PathBuf, Vec<(String, Sha256, u64)>) {
        let path = dir.join("b.zip");
        let mut writer = BundleWriter::create(&path).unwrap();
        let mut expected = Vec::new();
        for (i, size) in SIZES.iter().enumerate() {
            let bytes = body(i, *size);
            let source = dir.join(format!("f{i}"));
            std::fs::write(&source, &bytes).unwrap();
            let name = format!("p{i}");
            writer.add_entry(&name, &source, 0, *size as u64, None).unwrap();
            expected.push((name, Sha256::of(&bytes), *size as u64));
        }
        writer.finish(b"{}", &[]).unwrap();
        (path, expected)
    }

    fn silent() -> Meter<'static> {
        Meter::start(&Unwatched, Task::Import, String::new(), 0, 0)
    }

    fn jobs<'a>(container: &'a Container, expected: &[(String, Sha256, u64)]) -> Vec<Job<'a>> {
        expected
            .iter()
            .map(|(name, sha256, size)| Job { entry: container.entry(name).unwrap(), sha256: *sha256, size: *size })
            .collect()
    }

    #[test]
    fn copies_are_the_bytes_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let (path, expected) = bundle(dir.path());
        let container = Container::open(&path).unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let jobs = jobs(&container, &expected);
        // Every other payload is only checked, as one the store holds already.
        let last = Mutex::new(None);
        let watch = |p: &Progress| *last.lock().unwrap() = Some(p.clone());
        let meter = Meter::start(&watch, Task::Import, "b.zip".into(), jobs.len() as u64, 0);
        let done = copy_all(
            &container,
            &jobs,
            &meter,
            |i| if i % 2 == 0 { store.incoming().map(Some) } else { Ok(None) },
            |i| format!("p{i}"),
        )
        .unwrap();
        meter.finish();
        assert_eq!(done.len(), SIZES.len());
        // Every byte and payload was counted, copied or only checked.
        let last = last.into_inner().unwrap().unwrap();
        assert_eq!(last.items_done, SIZES.len() as u64);
        assert_eq!(last.bytes_done, SIZES.iter().sum::<usize>() as u64);
        for (i, temp) in done.into_iter().enumerate() {
            match temp {
                None => assert_eq!(i % 2, 1),
                Some(temp) => {
                    assert_eq!(std::fs::read(&temp).unwrap(), body(i, SIZES[i]), "payload {i}");
                    if cfg!(unix) {
                        // On Windows the flag is set once the file is named in the store.
                        assert!(std::fs::metadata(&temp).unwrap().permissions().readonly(), "payload {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_first_damaged_payload_in_order_is_named_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let (path, expected) = bundle(dir.path());
        // Damage the last byte of the largest payload and of a small one, and put the large
        // one first: the small one's damage shows first on the other worker, but the refusal
        // must name the large one, the first in order.
        let mut bytes = std::fs::read(&path).unwrap();
        let container = Container::open(&path).unwrap();
        for i in [7, 2] {
            let entry = container.entry(&expected[i].0).unwrap();
            bytes[(entry.data_start + entry.size - 1) as usize] ^= 0x40;
        }
        drop(container);
        std::fs::write(&path, &bytes).unwrap();
        let container = Container::open(&path).unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let order = [7, 2, 0, 1, 3, 4, 5, 6];
        let reordered: Vec<_> = order.iter().map(|i| expected[*i].clone()).collect();
        let jobs = jobs(&container, &reordered);
        for _ in 0..10 {
            let err =
                copy_all(&container, &jobs, &silent(), |_| store.incoming().map(Some), |i| format!("p{}", order[i]))
                    .unwrap_err();
            assert!(err.to_string().contains("\"p7\""), "{err}");
        }
        // Nothing of the refused copies stays in the store's temporary area.
        assert_eq!(std::fs::read_dir(dir.path().join("store/tmp")).unwrap().count(), 0);
    }
}
