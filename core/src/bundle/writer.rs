//! Writes a bundle zip: stored entries only, streamed, memory flat whatever the file sizes.
//!
//! The zip grows in a temporary file beside its final name and is renamed into place only
//! after the last byte is written and synced, so a failed pack leaves no bundle behind.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::Sha256;
use crate::formats::manifest::{MANIFEST_ENTRY, SIGNATURE_ENTRY_PREFIX, SIGNATURE_ENTRY_SUFFIX};
use crate::formats::minisign::SignatureFile;

const COPY_BUFFER: usize = 256 * 1024;

pub struct BundleWriter {
    zip: ZipWriter<File>,
    temp: TempPath,
    final_path: PathBuf,
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> Error {
    Error::io(path, io::Error::other(e))
}

fn options(size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(0o644)
        .large_file(size >= 0xffff_ffff)
}

impl BundleWriter {
    /// Starts a bundle that will be named `final_path` when finished. Refuses to replace an
    /// existing file.
    pub fn create(final_path: &Path) -> Result<BundleWriter> {
        if final_path.exists() {
            return Err(Error::AlreadyExists { what: format!("bundle {}", final_path.display()) });
        }
        let dir = final_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new().prefix(".ferry-partial-").suffix(".zip").tempfile_in(dir).at(dir)?;
        let (file, temp) = temp.into_parts();
        Ok(BundleWriter { zip: ZipWriter::new(file), temp, final_path: final_path.to_path_buf() })
    }

    /// Copies `size` bytes at `offset` of `source` into the entry `name`: a whole file, or
    /// one chunk of it. With `expected` (for whole files that were not verified before), the
    /// source must be exactly `size` bytes long and the bytes, hashed as they are copied,
    /// must have that SHA-256.
    pub fn add_entry(
        &mut self,
        name: &str,
        source: &Path,
        offset: u64,
        size: u64,
        expected: Option<&Sha256>,
    ) -> Result<()> {
        let path = self.temp.to_path_buf();
        let mut file = File::open(source).at(source)?;
        file.seek(SeekFrom::Start(offset)).at(source)?;
        self.zip.start_file(name, options(size)).map_err(|e| zip_error(&path, e))?;
        let mut hasher = expected.map(|_| <sha2::Sha256 as sha2::Digest>::new());
        let whole_length = file.metadata().at(source)?.len();
        let mut limited = file.take(size);
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut copied = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(source, e)),
            };
            self.zip.write_all(&buf[..n]).at(&path)?;
            if let Some(h) = hasher.as_mut() {
                sha2::Digest::update(h, &buf[..n]);
            }
            copied += n as u64;
        }
        if copied != size {
            return Err(Error::SizeMismatch { what: source.display().to_string(), expected: size, actual: copied });
        }
        if offset == 0 && expected.is_some() && whole_length != size {
            // An unverified whole file must be exactly as long as declared, not longer.
            return Err(Error::SizeMismatch {
                what: source.display().to_string(),
                expected: size,
                actual: whole_length,
            });
        }
        if let (Some(h), Some(expected)) = (hasher, expected) {
            let actual = Sha256(sha2::Digest::finalize(h).into());
            if actual != *expected {
                return Err(Error::DigestMismatch { what: source.display().to_string(), expected: *expected, actual });
            }
        }
        Ok(())
    }

    /// Adds the manifest and its signatures and syncs the bundle, still under its temporary
    /// name; refuses it if it grew past `max_size`. [`Sealed::persist`] gives it its name, so
    /// that all volumes of a set can be sealed before any of them appears.
    /// Adds a small entry from memory (a rotation statement and its signatures).
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.temp.to_path_buf();
        self.zip.start_file(name, options(bytes.len() as u64)).map_err(|e| zip_error(&path, e))?;
        self.zip.write_all(bytes).at(&path)
    }

    pub fn seal(mut self, manifest: &[u8], signatures: &[SignatureFile], max_size: Option<u64>) -> Result<Sealed> {
        let path = self.temp.to_path_buf();
        self.zip.start_file(MANIFEST_ENTRY, options(manifest.len() as u64)).map_err(|e| zip_error(&path, e))?;
        self.zip.write_all(manifest).at(&path)?;
        for sig in signatures {
            let name = format!("{SIGNATURE_ENTRY_PREFIX}{}{SIGNATURE_ENTRY_SUFFIX}", sig.key_id);
            let text = sig.to_file_string();
            self.zip.start_file(name, options(text.len() as u64)).map_err(|e| zip_error(&path, e))?;
            self.zip.write_all(text.as_bytes()).at(&path)?;
        }
        let file = self.zip.finish().map_err(|e| zip_error(&path, e))?;
        // Temporary files are created owner-only; a bundle is meant to be read by others.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644)).at(&path)?;
        }
        file.sync_all().at(&path)?;
        let size = file.metadata().at(&path)?.len();
        if let Some(max) = max_size
            && size > max
        {
            return Err(Error::Internal(format!(
                "volume {} came to {size} bytes, over its {max}-byte capacity",
                self.final_path.display()
            )));
        }
        Ok(Sealed { temp: self.temp, final_path: self.final_path, size })
    }

    /// Seals and persists a single bundle. Returns its path and size.
    pub fn finish(self, manifest: &[u8], signatures: &[SignatureFile]) -> Result<(PathBuf, u64)> {
        self.seal(manifest, signatures, None)?.persist()
    }
}

/// A complete, synced bundle waiting for its final name.
pub struct Sealed {
    temp: TempPath,
    final_path: PathBuf,
    size: u64,
}

impl Sealed {
    pub fn persist(self) -> Result<(PathBuf, u64)> {
        self.temp.persist_noclobber(&self.final_path).map_err(|e| Error::io(&self.final_path, e.error))?;
        crate::base::durable::sync_parent(&self.final_path)?;
        Ok((self.final_path, self.size))
    }
}
