//! The signed bundle: writing it (`fetch`) and opening it as untrusted input (`ingest`,
//! `fetch inspect`).
//!
//! - [`container`] checks the zip structure and reads entries with caps and CRC checks.
//! - [`writer`] streams payloads into a new zip, hashing them on the way, then adds the
//!   manifest and its signatures; the bundle appears under its final name only when complete.
//! - [`reader`] opens a bundle, parses its manifest and signatures, checks them against
//!   trusted keys and the entry list, and streams payloads out while hashing.

pub mod container;
pub mod reader;
pub mod writer;

use std::io::{self, Write};

use sha2::Digest;

use crate::names::Sha256;

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
