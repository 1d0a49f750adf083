//! The strict reading of a bundle's zip container: transport only, never extraction.
//!
//! The `zip` crate is lenient with hostile archives (duplicate names, absolute names, names
//! cut at NUL, local headers that disagree, junk around the archive; see docs/bundle-format.md),
//! so this module walks the end record and the central directory itself and accepts only
//! what ferry writes: stored entries with safe, unique names, local headers that agree with
//! the central directory, and entries that tile the file from byte 0 to the central directory
//! with nothing before, between or after them. Every entry's data range is then known exactly
//! and is read with a length cap and a CRC-32 check. Nothing here interprets entry contents.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::base::error::{ContainerFault, Error, IoContext, Result};

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: u64 = 22;
const LOCATOR_LEN: u64 = 20;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
const MAX_COMMENT: u64 = 0xffff;

/// Most entries a bundle may hold (each payload is one entry; a million is far beyond any
/// real set but keeps a hostile central directory from costing unbounded memory).
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Largest central directory read into memory.
const MAX_CENTRAL_DIRECTORY: u64 = 256 << 20;
/// Longest entry name accepted.
const MAX_NAME: usize = 512;

const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;

/// One entry of a checked container.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub crc32: u32,
    /// Offset of the entry's local header in the file.
    pub header_start: u64,
    /// Offset of the entry's first data byte in the file.
    pub data_start: u64,
}

/// A zip file whose structure has been checked; entries are in central-directory order.
pub struct Container {
    path: PathBuf,
    file: File,
    entries: Vec<Entry>,
    by_name: BTreeMap<String, usize>,
}

fn fault(path: &Path, fault: ContainerFault) -> Error {
    Error::Container { path: path.to_path_buf(), fault }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_exact_at(file: &mut File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset)).at(path)?;
    file.read_exact(&mut buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            fault(
                path,
                ContainerFault::CentralDirectory(format!("a record at offset {offset} runs past the end of the file")),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    Ok(buf)
}

/// Refuses names that could mean anything other than one plain relative entry.
fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_NAME {
        return Err("too long");
    }
    if name.contains('\0') {
        return Err("contains NUL");
    }
    if name.contains('\\') {
        return Err("contains a backslash");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("absolute path with a drive letter");
    }
    if name.split('/').any(|c| c == "..") {
        return Err("contains a \"..\" component");
    }
    if name.split('/').any(|c| c.is_empty() || c == ".") {
        return Err("contains an empty or \".\" component");
    }
    if !name.bytes().all(|c| c.is_ascii_graphic()) {
        return Err("contains characters outside printable ASCII");
    }
    Ok(())
}

/// The Info-ZIP Unicode Path extra field: a name that tools such as `unzip -l` show instead
/// of the header's.
const UNICODE_PATH_FIELD: u16 = 0x7075;

/// Checks an entry's extra fields: well formed, and no field naming it otherwise than its
/// header does (ferry checks the header's name; another tool could extract by the other).
fn check_extra(extra: &[u8], name: &str) -> std::result::Result<(), ContainerFault> {
    let mut at = 0;
    while at < extra.len() {
        let malformed = || ContainerFault::MalformedExtra { name: name.to_string() };
        if at + 4 > extra.len() {
            return Err(malformed());
        }
        let id = u16_at(extra, at);
        let len = u16_at(extra, at + 2) as usize;
        let body = extra.get(at + 4..at + 4 + len).ok_or_else(malformed)?;
        if id == UNICODE_PATH_FIELD {
            // version (1), CRC-32 of the header's name (4), then the name in UTF-8.
            let other = body.get(5..).map(String::from_utf8_lossy).unwrap_or_default();
            if other != name {
                return Err(ContainerFault::NameFieldDisagrees { name: name.to_string(), other: other.into_owned() });
            }
        }
        at += 4 + len;
    }
    Ok(())
}

/// Values from the zip64 extended-information extra field, in the order the spec gives.
fn zip64_values(extra: &[u8], wanted: usize) -> Option<Vec<u64>> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at);
        let len = u16_at(extra, at + 2) as usize;
        let body = extra.get(at + 4..at + 4 + len)?;
        if id == 0x0001 {
            if body.len() < wanted * 8 {
                return None;
            }
            return Some((0..wanted).map(|i| u64_at(body, i * 8)).collect());
        }
        at += 4 + len;
    }
    None
}

impl Container {
    /// Opens `path` and checks its whole structure. Entry data is not read yet. Only a
    /// regular file is read: a FIFO or device is refused without being waited on.
    pub fn open(path: &Path) -> Result<Container> {
        let opened = crate::base::shared_tree::open_regular(path, crate::base::shared_tree::Links::Follow)?;
        let (mut file, len) = (opened.file, opened.len);
        let (cd_offset, cd_size, declared) = Self::end_records(&mut file, path, len)?;
        if declared > MAX_ENTRIES {
            return Err(fault(path, ContainerFault::TooManyEntries(declared, MAX_ENTRIES)));
        }
        if cd_size > MAX_CENTRAL_DIRECTORY {
            return Err(fault(path, ContainerFault::CentralDirectory(format!("{cd_size} bytes is too large"))));
        }
        let cd = read_exact_at(&mut file, path, cd_offset, cd_size as usize)?;
        let mut entries = Vec::new();
        let mut at = 0usize;
        while at < cd.len() {
            if entries.len() as u64 >= declared {
                return Err(fault(path, ContainerFault::EntryCount { declared, found: declared + 1 }));
            }
            let (entry, next) = Self::central_entry(&mut file, path, &cd, at, entries.len())?;
            entries.push(entry);
            at = next;
        }
        if entries.len() as u64 != declared {
            return Err(fault(path, ContainerFault::EntryCount { declared, found: entries.len() as u64 }));
        }
        Self::check_tiling(path, &entries, cd_offset)?;
        let by_name = Self::check_names(path, &entries)?;
        Self::second_opinion(&file, path, entries.len())?;
        Ok(Container { path: path.to_path_buf(), file, entries, by_name })
    }

    /// Finds the end record at the very end of the file (and the zip64 records before it).
    /// Returns the central directory's offset and size and the declared entry count.
    fn end_records(file: &mut File, path: &Path, len: u64) -> Result<(u64, u64, u64)> {
        if len < EOCD_LEN {
            return Err(fault(path, ContainerFault::NotZip(format!("{len} bytes is too short"))));
        }
        let tail_len = len.min(EOCD_LEN + MAX_COMMENT);
        let tail = read_exact_at(file, path, len - tail_len, tail_len as usize)?;
        // The last end-record signature whose comment reaches exactly the end of the file.
        let mut found = None;
        let mut last_sig = None;
        for i in (0..=tail.len() - EOCD_LEN as usize).rev() {
            if u32_at(&tail, i) == EOCD_SIG {
                last_sig.get_or_insert(i);
                if i + EOCD_LEN as usize + u16_at(&tail, i + 20) as usize == tail.len() {
                    found = Some(i);
                    break;
                }
            }
        }
        let Some(i) = found else {
            return Err(match last_sig {
                Some(i) => {
                    let end = i as u64 + EOCD_LEN + u64::from(u16_at(&tail, i + 20));
                    fault(path, ContainerFault::TrailingJunk(tail_len.saturating_sub(end)))
                }
                None => fault(path, ContainerFault::NotZip("no end-of-central-directory record".into())),
            });
        };
        let eocd_at = len - tail_len + i as u64;
        let e = &tail[i..i + EOCD_LEN as usize];
        if u16_at(e, 20) != 0 {
            return Err(fault(path, ContainerFault::Comment("the archive".into())));
        }
        if u16_at(e, 4) != 0 || u16_at(e, 6) != 0 || u16_at(e, 8) != u16_at(e, 10) {
            return Err(fault(path, ContainerFault::MultiDisk));
        }
        let mut declared = u64::from(u16_at(e, 10));
        let mut cd_size = u64::from(u32_at(e, 12));
        let mut cd_offset = u64::from(u32_at(e, 16));
        let mut cd_end = eocd_at;
        let needs_zip64 = declared == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff;
        let has_locator = eocd_at >= LOCATOR_LEN
            && u32_at(&read_exact_at(file, path, eocd_at - LOCATOR_LEN, 4)?, 0) == ZIP64_LOCATOR_SIG;
        if needs_zip64 || has_locator {
            if !has_locator {
                return Err(fault(
                    path,
                    ContainerFault::CentralDirectory("zip64 values without a zip64 locator".into()),
                ));
            }
            let loc = read_exact_at(file, path, eocd_at - LOCATOR_LEN, LOCATOR_LEN as usize)?;
            if u32_at(&loc, 4) != 0 || u32_at(&loc, 16) > 1 {
                return Err(fault(path, ContainerFault::MultiDisk));
            }
            let z_at = u64_at(&loc, 8);
            let z = read_exact_at(file, path, z_at, 56)?;
            if u32_at(&z, 0) != ZIP64_EOCD_SIG {
                return Err(fault(
                    path,
                    ContainerFault::CentralDirectory("the zip64 locator points at no zip64 end record".into()),
                ));
            }
            let record_end = z_at.checked_add(12).and_then(|v| v.checked_add(u64_at(&z, 4)));
            if record_end != Some(eocd_at - LOCATOR_LEN) {
                return Err(fault(
                    path,
                    ContainerFault::CentralDirectory("data between the zip64 end record and its locator".into()),
                ));
            }
            if u32_at(&z, 16) != 0 || u32_at(&z, 20) != 0 || u64_at(&z, 24) != u64_at(&z, 32) {
                return Err(fault(path, ContainerFault::MultiDisk));
            }
            declared = u64_at(&z, 32);
            cd_size = u64_at(&z, 40);
            cd_offset = u64_at(&z, 48);
            cd_end = z_at;
        }
        match cd_offset.checked_add(cd_size) {
            Some(end) if end == cd_end => {}
            Some(end) if end < cd_end => {
                // Either bytes were put before the archive without adjusting its offsets (the
                // central directory then sits exactly `shift` bytes later than recorded), or
                // something sits between the central directory and the end record.
                let shift = cd_end - end;
                let moved = cd_size >= 4 && u32_at(&read_exact_at(file, path, cd_offset + shift, 4)?, 0) == CENTRAL_SIG;
                let why = if moved {
                    ContainerFault::LeadingJunk(shift)
                } else {
                    ContainerFault::CentralDirectory(format!(
                        "{shift} bytes of unexpected data between the central directory and the end record"
                    ))
                };
                return Err(fault(path, why));
            }
            _ => {
                let why = ContainerFault::CentralDirectory("the central directory runs past its end record".into());
                return Err(fault(path, why));
            }
        }
        Ok((cd_offset, cd_size, declared))
    }

    /// Parses one central-directory record at `at` and checks it against its local header.
    fn central_entry(file: &mut File, path: &Path, cd: &[u8], at: usize, index: usize) -> Result<(Entry, usize)> {
        let bad = |what: String| fault(path, ContainerFault::CentralDirectory(what));
        let h = cd.get(at..at + CENTRAL_LEN).ok_or_else(|| bad(format!("entry {index} is truncated")))?;
        if u32_at(h, 0) != CENTRAL_SIG {
            return Err(bad(format!("entry {index} has no central header signature")));
        }
        let made_by = u16_at(h, 4);
        let flags = u16_at(h, 8);
        let method = u16_at(h, 10);
        let crc32 = u32_at(h, 16);
        let (name_len, extra_len, comment_len) =
            (u16_at(h, 28) as usize, u16_at(h, 30) as usize, u16_at(h, 32) as usize);
        let disk = u16_at(h, 34);
        let external = u32_at(h, 38);
        let next = at + CENTRAL_LEN + name_len + extra_len + comment_len;
        let name_raw = cd
            .get(at + CENTRAL_LEN..at + CENTRAL_LEN + name_len)
            .ok_or_else(|| bad(format!("entry {index} is truncated")))?;
        let extra = cd
            .get(at + CENTRAL_LEN + name_len..at + CENTRAL_LEN + name_len + extra_len)
            .ok_or_else(|| bad(format!("entry {index} is truncated")))?;
        if next > cd.len() {
            return Err(bad(format!("entry {index} is truncated")));
        }
        let name = match std::str::from_utf8(name_raw) {
            Ok(n) => n.to_string(),
            Err(_) => return Err(fault(path, ContainerFault::NameNotUtf8 { index })),
        };
        check_name(&name).map_err(|reason| fault(path, ContainerFault::UnsafeName { name: name.clone(), reason }))?;
        check_extra(extra, &name).map_err(|f| fault(path, f))?;
        if comment_len != 0 {
            return Err(fault(path, ContainerFault::Comment(format!("entry {name:?}"))));
        }

        // Zip64: the fields at their maximum are in the extra field, in a fixed order.
        let mut size = u64::from(u32_at(h, 24));
        let mut compressed = u64::from(u32_at(h, 20));
        let mut offset = u64::from(u32_at(h, 42));
        let wanted = [size, compressed, offset].iter().filter(|v| **v == 0xffff_ffff).count();
        if wanted > 0 {
            let values =
                zip64_values(extra, wanted).ok_or_else(|| bad(format!("entry {name:?} lacks its zip64 sizes")))?;
            let mut values = values.into_iter();
            for field in [&mut size, &mut compressed, &mut offset] {
                if *field == 0xffff_ffff {
                    *field = values.next().expect("counted");
                }
            }
        }

        if disk != 0 && disk != 0xffff {
            return Err(fault(path, ContainerFault::MultiDisk));
        }
        if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
            return Err(fault(path, ContainerFault::Encrypted { name }));
        }
        if flags & FLAG_DATA_DESCRIPTOR != 0 {
            return Err(fault(path, ContainerFault::DataDescriptor { name }));
        }
        // Unix "made by" with a symlink file type in the upper bits of the external attributes.
        let unix_mode = (made_by >> 8 == 3).then_some(external >> 16);
        if unix_mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            return Err(fault(path, ContainerFault::Symlink { name }));
        }
        if name.ends_with('/') || unix_mode.is_some_and(|m| m & 0o170000 == 0o040000) || external & 0x10 != 0 {
            return Err(fault(path, ContainerFault::Directory { name }));
        }
        if method != 0 {
            return Err(fault(path, ContainerFault::Compressed { name, method }));
        }
        if compressed != size {
            return Err(fault(path, ContainerFault::SizeMismatch { name, stored: compressed, uncompressed: size }));
        }

        let local = read_exact_at(file, path, offset, LOCAL_LEN)?;
        let mismatch = |field: &'static str| fault(path, ContainerFault::HeaderMismatch { name: name.clone(), field });
        if u32_at(&local, 0) != LOCAL_SIG {
            return Err(mismatch("no local header at the recorded offset"));
        }
        let local_name_len = u16_at(&local, 26) as usize;
        let local_extra_len = u16_at(&local, 28) as usize;
        let local_tail = read_exact_at(file, path, offset + LOCAL_LEN as u64, local_name_len + local_extra_len)?;
        if &local_tail[..local_name_len] != name_raw {
            return Err(mismatch("name"));
        }
        check_extra(&local_tail[local_name_len..], &name).map_err(|f| fault(path, f))?;
        if u16_at(&local, 6) != flags {
            return Err(mismatch("flags"));
        }
        if u16_at(&local, 8) != method {
            return Err(mismatch("compression method"));
        }
        if u32_at(&local, 14) != crc32 {
            return Err(mismatch("CRC-32"));
        }
        let (mut local_compressed, mut local_size) = (u64::from(u32_at(&local, 18)), u64::from(u32_at(&local, 22)));
        if local_compressed == 0xffff_ffff || local_size == 0xffff_ffff {
            let values = zip64_values(&local_tail[local_name_len..], 2).ok_or_else(|| mismatch("zip64 sizes"))?;
            (local_size, local_compressed) = (values[0], values[1]);
        }
        if local_size != size || local_compressed != compressed {
            return Err(mismatch("size"));
        }
        let data_start = offset + (LOCAL_LEN + local_name_len + local_extra_len) as u64;
        Ok((Entry { name, size, crc32, header_start: offset, data_start }, next))
    }

    /// Entries must cover the file from byte 0 up to the central directory, each ending where
    /// the next begins: no junk before the archive, none hidden between entries, no overlaps.
    fn check_tiling(path: &Path, entries: &[Entry], cd_offset: u64) -> Result<()> {
        let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(entries.len());
        for e in entries {
            let end = e
                .data_start
                .checked_add(e.size)
                .ok_or_else(|| fault(path, ContainerFault::Overlap { name: e.name.clone() }))?;
            spans.push((e.header_start, end, &e.name));
        }
        spans.sort_unstable();
        let mut expected = 0u64;
        for (start, end, name) in spans {
            if start > expected {
                return Err(fault(
                    path,
                    if expected == 0 {
                        ContainerFault::LeadingJunk(start)
                    } else {
                        ContainerFault::CentralDirectory(format!(
                            "{} bytes of unexpected data before entry {name:?}",
                            start - expected
                        ))
                    },
                ));
            }
            if start < expected {
                return Err(fault(path, ContainerFault::Overlap { name: name.to_string() }));
            }
            expected = end;
        }
        if expected > cd_offset {
            let last = entries.iter().max_by_key(|e| e.data_start).map(|e| e.name.clone()).unwrap_or_default();
            return Err(fault(path, ContainerFault::Overlap { name: last }));
        }
        if expected < cd_offset {
            return Err(fault(
                path,
                ContainerFault::CentralDirectory(format!(
                    "{} bytes of unexpected data before the central directory",
                    cd_offset - expected
                )),
            ));
        }
        Ok(())
    }

    fn check_names(path: &Path, entries: &[Entry]) -> Result<BTreeMap<String, usize>> {
        let mut by_name = BTreeMap::new();
        let mut folded: BTreeMap<String, &str> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            if by_name.insert(e.name.clone(), i).is_some() {
                return Err(fault(path, ContainerFault::DuplicateName { name: e.name.clone() }));
            }
            if let Some(first) = folded.insert(e.name.to_ascii_lowercase(), &e.name) {
                return Err(fault(
                    path,
                    ContainerFault::CaseTwins { first: first.to_string(), second: e.name.clone() },
                ));
            }
        }
        Ok(by_name)
    }

    /// The `zip` crate must read the same archive with the same number of entries.
    fn second_opinion(file: &File, path: &Path, count: usize) -> Result<()> {
        // The same open file, not the path again: what was checked is what is read.
        let mut file = file.try_clone().at(path)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(0)).at(path)?;
        let archive = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|e| fault(path, ContainerFault::NotZip(format!("the zip reader refuses it: {e}"))))?;
        if archive.len() != count {
            return Err(fault(
                path,
                ContainerFault::EntryCount { declared: count as u64, found: archive.len() as u64 },
            ));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }

    /// Reads a small entry whole, refusing it if it is larger than `cap`.
    pub fn read_small(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.entry(name) else { return Ok(None) };
        if entry.size > cap {
            return Err(Error::Manifest {
                path: self.path.clone(),
                reason: format!("entry {name:?} is {} bytes; at most {cap} are read", entry.size),
            });
        }
        let mut bytes = vec![0u8; entry.size as usize];
        let mut reader = self.reader(entry);
        reader.fill(&mut bytes)?;
        reader.finish()?;
        Ok(Some(bytes))
    }

    /// Reads one entry's data from its start. Several readers may run at once on different
    /// threads: each reads at its own offsets and leaves the file position alone.
    pub fn reader<'a>(&'a self, entry: &'a Entry) -> EntryReader<'a> {
        EntryReader { container: self, entry, done: 0, crc: crc32fast::Hasher::new() }
    }
}

/// One entry's data, read in order with positional reads and checked against its CRC-32.
pub struct EntryReader<'a> {
    container: &'a Container,
    entry: &'a Entry,
    done: u64,
    crc: crc32fast::Hasher,
}

impl EntryReader<'_> {
    /// Fills `buf` with the entry's next bytes: all of it, unless the entry ends first.
    /// Returns how many bytes it holds, 0 once the entry is read whole.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let path = &self.container.path;
        let want = (self.entry.size - self.done).min(buf.len() as u64) as usize;
        let mut got = 0;
        while got < want {
            let at = self.entry.data_start + self.done + got as u64;
            let n = read_some_at(&self.container.file, &mut buf[got..want], at).at(path)?;
            if n == 0 {
                let cut = format!("entry {:?} is cut short", self.entry.name);
                return Err(Error::io(path, io::Error::new(io::ErrorKind::UnexpectedEof, cut)));
            }
            got += n;
        }
        self.crc.update(&buf[..got]);
        self.done += got as u64;
        Ok(got)
    }

    /// After the last [`EntryReader::fill`]: refuses the entry unless it was read whole and
    /// its CRC-32 matches. Bytes already handed out must then be discarded.
    pub fn finish(self) -> Result<()> {
        if self.done != self.entry.size {
            return Err(Error::Internal(format!("entry {:?} was not read to its end", self.entry.name)));
        }
        if self.crc.finalize() != self.entry.crc32 {
            return Err(fault(&self.container.path, ContainerFault::BadCrc { name: self.entry.name.clone() }));
        }
        Ok(())
    }
}

/// One positional read from the bundle (where the fault-injection tests pull the medium out).
fn read_some_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        crate::failpoint_io!("bundle.read");
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, buf, offset);
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, buf, offset);
        match read {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn unsafe_names() {
        for (name, reason) in [
            ("../x", "contains a \"..\" component"),
            ("a/../../x", "contains a \"..\" component"),
            ("..\\x", "contains a backslash"),
            ("/x", "absolute path"),
            ("C:x", "absolute path with a drive letter"),
            ("a\0b", "contains NUL"),
            ("a//b", "contains an empty or \".\" component"),
            ("a b", "contains characters outside printable ASCII"),
        ] {
            assert_eq!(check_name(name), Err(reason), "{name:?}");
        }
        assert_eq!(check_name("files/sha256/00ff"), Ok(()));
    }
}
