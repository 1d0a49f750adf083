//! Writes zip files byte by byte, for hostile fixtures that the `zip` crate's writer would
//! not produce (duplicate names, names with NUL, symlinks, flags). Sizes and CRCs are honest
//! unless a test edits the bytes afterwards.

pub struct RawEntry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    pub made_by: u16,
    pub external: u32,
    /// A different name for the local header than the central directory's.
    pub local_name: Option<Vec<u8>>,
    /// Extra fields, written in both headers.
    pub extra: Vec<u8>,
    /// The entry's comment in the central directory.
    pub comment: Vec<u8>,
}

impl RawEntry {
    /// A regular file entry as a Unix zip tool writes it.
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            name: name.as_ref().to_vec(),
            data: data.into(),
            flags: 0,
            method: 0,
            made_by: 0x031e,
            external: 0o100644 << 16,
            local_name: None,
            extra: Vec::new(),
            comment: Vec::new(),
        }
    }

    /// A symbolic link entry whose target is `data`.
    pub fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry { external: 0o120777 << 16, ..RawEntry::file(name, target.as_bytes()) }
    }
}

pub fn build(entries: &[RawEntry]) -> Vec<u8> {
    build_with_prefix(&[], entries)
}

/// A zip that starts after `prefix`, with offsets that account for it (as self-extracting
/// archives are built).
pub fn build_with_prefix(prefix: &[u8], entries: &[RawEntry]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let local_name = e.local_name.as_ref().unwrap_or(&e.name);
        let crc = crc32fast::hash(&e.data);
        let size = e.data.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(e.extra.len() as u16).to_le_bytes());
        out.extend_from_slice(local_name);
        out.extend_from_slice(&e.extra);
        out.extend_from_slice(&e.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&e.made_by.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(e.extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&(e.comment.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 4]); // disk, internal attributes
        central.extend_from_slice(&e.external.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
        central.extend_from_slice(&e.extra);
        central.extend_from_slice(&e.comment);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// An Info-ZIP Unicode Path extra field (0x7075) naming an entry `name`.
pub fn unicode_path_field(header_name: &[u8], name: &str) -> Vec<u8> {
    let mut body = vec![1u8];
    body.extend_from_slice(&crc32fast::hash(header_name).to_le_bytes());
    body.extend_from_slice(name.as_bytes());
    let mut field = 0x7075u16.to_le_bytes().to_vec();
    field.extend_from_slice(&(body.len() as u16).to_le_bytes());
    field.extend_from_slice(&body);
    field
}

/// Gives the archive a comment (the end record's last field).
pub fn set_archive_comment(zip: &mut Vec<u8>, comment: &[u8]) {
    let eocd = zip.len() - 22;
    zip[eocd + 20..eocd + 22].copy_from_slice(&(comment.len() as u16).to_le_bytes());
    zip.extend_from_slice(comment);
}

/// Rewrites the entry counts of the end-of-central-directory record.
pub fn set_entry_count(zip: &mut [u8], count: u16) {
    let eocd = zip.len() - 22;
    zip[eocd + 8..eocd + 10].copy_from_slice(&count.to_le_bytes());
    zip[eocd + 10..eocd + 12].copy_from_slice(&count.to_le_bytes());
}

/// Byte offsets of the central directory records of a zip built by [`build`], in order.
pub fn central_records(zip: &[u8]) -> Vec<usize> {
    let eocd = zip.len() - 22;
    let cd_offset = u32::from_le_bytes(zip[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let mut at = cd_offset;
    let mut records = Vec::new();
    while at < eocd {
        records.push(at);
        let name = u16::from_le_bytes(zip[at + 28..at + 30].try_into().unwrap()) as usize;
        let extra = u16::from_le_bytes(zip[at + 30..at + 32].try_into().unwrap()) as usize;
        let comment = u16::from_le_bytes(zip[at + 32..at + 34].try_into().unwrap()) as usize;
        at += 46 + name + extra + comment;
    }
    records
}
