//! Splitting a bundle into volumes that fit the courier's media.
//!
//! Pure: sizes in, a layout out. Each volume is a complete zip of at most `capacity` bytes
//! (the medium's capacity, and no more than the largest file the target file system holds).
//! Every volume repeats the manifest and its signatures, so that part of each volume's budget
//! is reserved; the rest holds payloads. A file larger than what one volume can carry is cut
//! into chunks, each its own payload with its own SHA-256, reassembled on import.

use crate::base::error::{Error, Result};
use crate::base::names::Sha256;

/// Named capacities, in bytes. Disc sizes are the formats' data capacities; USB sizes leave
/// room for the file system on sticks sold as that many (decimal) gigabytes.
pub const MEDIA: &[(&str, u64)] = &[
    ("cd", 737_280_000),
    ("dvd", 4_700_372_992),
    ("dvd-dl", 8_543_666_176),
    ("bd25", 25_025_314_816),
    ("bd50", 50_050_629_632),
    ("usb-4g", 3_850_000_000),
    ("usb-8g", 7_700_000_000),
    ("usb-16g", 15_400_000_000),
    ("usb-32g", 30_800_000_000),
    ("usb-64g", 61_600_000_000),
];

/// Largest file of a few file systems, in bytes.
pub const FILE_SYSTEMS: &[(&str, u64)] = &[("fat32", 4_294_967_295), ("iso9660", 4_294_967_295)];

/// The largest file of FAT file systems (FAT32; FAT12 and FAT16 are smaller still, but are
/// not found on media large enough to matter).
pub const FAT_MAX_FILE: u64 = 4_294_967_295;

/// The name and largest file of the file system holding `dir`, when that limit is one a
/// bundle can reach (FAT, as on most USB sticks). `None` when unknown or unlimited.
#[cfg(target_os = "linux")]
pub fn file_system_limit(dir: &std::path::Path) -> Option<(&'static str, u64)> {
    const MSDOS_SUPER_MAGIC: u64 = 0x4d44;
    let stat = rustix::fs::statfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast)]
    let kind = stat.f_type as u64;
    (kind == MSDOS_SUPER_MAGIC).then_some(("FAT", FAT_MAX_FILE))
}

#[cfg(not(target_os = "linux"))]
pub fn file_system_limit(_dir: &std::path::Path) -> Option<(&'static str, u64)> {
    None
}

/// The volume capacity to use: the one asked for, lowered to what the target file system
/// holds. Returns whether the file system's limit lowered it (the user should be told).
pub fn effective_capacity(requested: Option<u64>, fs_limit: Option<u64>, total: u64) -> (Option<u64>, bool) {
    match (requested, fs_limit) {
        (Some(r), Some(l)) if l < r => (Some(l), true),
        (None, Some(l)) if total > l => (Some(l), true),
        (r, _) => (r, false),
    }
}

/// Bytes a payload entry costs beyond its data: local header, central-directory record,
/// an entry name of 78 bytes in both, and zip64 extra fields.
pub const ENTRY_OVERHEAD: u64 = 320;

/// The capacity of one volume from `--media` (a medium's name or bytes) and
/// `--max-file-size` (a file system's name or bytes): the smaller of the two given.
pub fn requested_capacity(media: Option<&str>, max_file_size: Option<&str>) -> Result<Option<u64>> {
    let media = media.map(|m| parse_size(m, MEDIA, "--media")).transpose()?;
    let fs = max_file_size.map(|m| parse_size(m, FILE_SYSTEMS, "--max-file-size")).transpose()?;
    Ok(match (media, fs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Parses a size given by name (from `names`) or in bytes.
pub fn parse_size(text: &str, names: &[(&str, u64)], what: &str) -> Result<u64> {
    if let Some((_, bytes)) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
        return Ok(*bytes);
    }
    match text.replace('_', "").parse::<u64>() {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            Err(Error::Invalid(format!("{what} {text:?} is neither a number of bytes nor one of {}", known.join(", "))))
        }
    }
}

/// One piece of one file in a volume: the whole file, or a chunk of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub file: Sha256,
    pub offset: u64,
    pub size: u64,
    pub whole: bool,
    pub volume: u32,
}

/// Places `files` (digest, size) into volumes of `payload_budget` bytes each (the capacity
/// minus what every volume reserves for its manifest and signatures). Largest pieces first,
/// each into the first volume with room; a file larger than a volume can carry is cut into
/// chunks of the most one volume can carry.
pub fn assign(files: &[(Sha256, u64)], payload_budget: u64) -> Result<Vec<Piece>> {
    let chunk = payload_budget.checked_sub(ENTRY_OVERHEAD).filter(|c| *c > 0).ok_or_else(|| {
        Error::Invalid(format!("a volume of this size leaves only {payload_budget} bytes for payloads"))
    })?;
    let mut pieces: Vec<Piece> = Vec::new();
    for (file, size) in files {
        if *size <= chunk {
            pieces.push(Piece { file: *file, offset: 0, size: *size, whole: true, volume: 0 });
        } else {
            let mut offset = 0;
            while offset < *size {
                let len = chunk.min(size - offset);
                pieces.push(Piece { file: *file, offset, size: len, whole: false, volume: 0 });
                offset += len;
            }
        }
    }
    pieces.sort_by(|a, b| b.size.cmp(&a.size).then(a.file.cmp(&b.file)).then(a.offset.cmp(&b.offset)));
    let mut free: Vec<u64> = Vec::new();
    for piece in &mut pieces {
        let cost = piece.size + ENTRY_OVERHEAD;
        match free.iter().position(|room| *room >= cost) {
            Some(v) => {
                free[v] -= cost;
                piece.volume = v as u32 + 1;
            }
            None => {
                free.push(payload_budget - cost);
                piece.volume = free.len() as u32;
            }
        }
    }
    // First fit keeps files whole but may leave room unused in every volume (six 60 MB
    // files on 100 MB media take six volumes). When filling each volume to the brim, a file
    // cut across two volumes where it does not fit, takes fewer, that layout is used.
    let filled = fill(files, payload_budget, chunk);
    let mut pieces = if volume_count(&filled) < volume_count(&pieces) { filled } else { pieces };
    pieces.sort_by(|a, b| a.volume.cmp(&b.volume).then(a.file.cmp(&b.file)).then(a.offset.cmp(&b.offset)));
    Ok(pieces)
}

/// The smallest piece a file is cut into to fill the end of a volume: below it, the file
/// starts the next volume instead.
const MIN_FILL_PIECE: u64 = 1 << 20;

/// Fills volume after volume, largest files first, cutting a file where the volume ends.
fn fill(files: &[(Sha256, u64)], payload_budget: u64, chunk: u64) -> Vec<Piece> {
    let mut order: Vec<&(Sha256, u64)> = files.iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (mut volume, mut room) = (1u32, payload_budget);
    let mut pieces = Vec::new();
    for (file, size) in order {
        let mut offset = 0;
        while offset < *size || (*size == 0 && offset == 0) {
            let rest = size - offset;
            let fits_whole = rest + ENTRY_OVERHEAD <= room;
            // A fresh volume always takes what it can; a used one only a piece worth cutting.
            let worth_cutting = room == payload_budget || room >= ENTRY_OVERHEAD + MIN_FILL_PIECE.min(chunk);
            if !fits_whole && !worth_cutting {
                volume += 1;
                room = payload_budget;
                continue;
            }
            let take = rest.min(room - ENTRY_OVERHEAD).min(chunk);
            pieces.push(Piece { file: *file, offset, size: take, whole: offset == 0 && take == *size, volume });
            room -= take + ENTRY_OVERHEAD;
            offset += take;
            if *size == 0 {
                break;
            }
        }
    }
    pieces
}

/// How many volumes a layout uses (at least one, for a bundle of metadata only).
pub fn volume_count(pieces: &[Piece]) -> u32 {
    pieces.iter().map(|p| p.volume).max().unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Sha256 {
        Sha256([n; 32])
    }

    #[test]
    fn sizes_by_name_or_bytes() {
        assert_eq!(parse_size("dvd", MEDIA, "medium").unwrap(), 4_700_372_992);
        assert_eq!(parse_size("FAT32", FILE_SYSTEMS, "file system").unwrap(), 4_294_967_295);
        assert_eq!(parse_size("1_000_000", MEDIA, "medium").unwrap(), 1_000_000);
        for bad in ["floppy", "0"] {
            let err = parse_size(bad, MEDIA, "medium").unwrap_err().to_string();
            assert!(err.contains("is neither a number of bytes nor one of cd, dvd"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_small_file_system_lowers_the_capacity() {
        assert_eq!(effective_capacity(None, None, 10 << 30), (None, false));
        assert_eq!(effective_capacity(None, Some(FAT_MAX_FILE), 1 << 30), (None, false));
        assert_eq!(effective_capacity(None, Some(FAT_MAX_FILE), 5 << 30), (Some(FAT_MAX_FILE), true));
        assert_eq!(effective_capacity(Some(8 << 30), Some(FAT_MAX_FILE), 1), (Some(FAT_MAX_FILE), true));
        assert_eq!(effective_capacity(Some(1 << 30), Some(FAT_MAX_FILE), 9 << 30), (Some(1 << 30), false));
    }

    #[test]
    fn the_test_machine_file_system_is_not_mistaken_for_fat() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(file_system_limit(dir.path()), None);
    }

    #[test]
    fn everything_fits_in_one_volume() {
        let pieces = assign(&[(d(1), 10), (d(2), 20)], 10_000).unwrap();
        assert_eq!(volume_count(&pieces), 1);
        assert!(pieces.iter().all(|p| p.whole));
    }

    #[test]
    fn large_files_are_chunked_and_pieces_fill_volumes() {
        let budget = 1000 + ENTRY_OVERHEAD;
        let pieces = assign(&[(d(1), 2500), (d(2), 400), (d(3), 500)], budget).unwrap();
        let chunks: Vec<&Piece> = pieces.iter().filter(|p| p.file == d(1)).collect();
        assert_eq!(
            chunks.iter().map(|p| (p.offset, p.size)).collect::<Vec<_>>(),
            [(0, 1000), (1000, 1000), (2000, 500)]
        );
        assert!(chunks.iter().all(|p| !p.whole));
        // Every volume stays within its budget.
        for v in 1..=volume_count(&pieces) {
            let used: u64 = pieces.iter().filter(|p| p.volume == v).map(|p| p.size + ENTRY_OVERHEAD).sum();
            assert!(used <= budget, "volume {v} holds {used} bytes");
        }
        assert_eq!(volume_count(&pieces), 5);
    }

    #[test]
    fn files_that_leave_room_are_cut_to_fill_volumes() {
        // Six 60 MiB files on 100 MiB volumes: kept whole they take six volumes; cut where a
        // volume ends they take four.
        let mib = 1u64 << 20;
        let files: Vec<(Sha256, u64)> = (1..=6).map(|n| (d(n), 60 * mib)).collect();
        let budget = 100 * mib;
        let pieces = assign(&files, budget).unwrap();
        assert_eq!(volume_count(&pieces), 4);
        for v in 1..=4 {
            let used: u64 = pieces.iter().filter(|p| p.volume == v).map(|p| p.size + ENTRY_OVERHEAD).sum();
            assert!(used <= budget, "volume {v} holds {used} bytes");
        }
        for (file, size) in &files {
            let mut mine: Vec<&Piece> = pieces.iter().filter(|p| p.file == *file).collect();
            mine.sort_by_key(|p| p.offset);
            let mut next = 0;
            for p in mine {
                assert_eq!(p.offset, next, "the pieces of a file tile it");
                next += p.size;
            }
            assert_eq!(next, *size);
        }
    }

    #[test]
    fn a_budget_below_one_entry_is_refused() {
        let err = assign(&[(d(1), 1)], ENTRY_OVERHEAD).unwrap_err().to_string();
        assert!(err.contains("leaves only"), "{err}");
    }
}
