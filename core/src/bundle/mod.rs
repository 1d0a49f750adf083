//! The signed bundle: writing it (`fetch`) and opening it as untrusted input (`ingest`,
//! `fetch inspect`).
//!
//! - [`container`] checks the zip structure and reads entries with caps and CRC checks.
//! - [`writer`] streams payloads into a new zip, hashing them on the way, then adds the
//!   manifest and its signatures; the bundle appears under its final name only when complete.
//! - [`reader`] opens a bundle, parses its manifest and signatures, checks them against
//!   trusted keys and the entry list.
//! - [`copy`] reads the payloads out on every core, hashing each block as it is written.
//!
//! [`HashingWriter`] and [`hash_range`] hash what is copied or read, for both sides.

pub mod container;
pub mod copy;
pub mod reader;
pub mod writer;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::Digest;

use crate::base::names::Sha256;

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: sha2::Sha256::new(), written: 0 }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of everything written, and the inner writer.
    pub fn finish(self) -> (Sha256, W) {
        (Sha256(self.hasher.finalize().into()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 and length of at most `len` bytes of `path` from `offset` on: a whole file, or one
/// chunk of it.
pub fn hash_range(path: &Path, offset: u64, len: u64) -> io::Result<(Sha256, u64)> {
    let mut file = File::open(path)?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    hash_reader(file.take(len))
}

/// SHA-256 and length of everything `reader` gives.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(Sha256, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Sha256(hasher.finalize().into()), total))
}
