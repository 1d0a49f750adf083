//! The bundle manifest (format 1) and the trusted comment that binds each signature to it.
//!
//! Pure values and checks. The manifest is identical in every volume of a set and describes
//! the whole set; each volume's signatures say, in their trusted comments, which volume they
//! travel in. The reference is `docs/bundle-format.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::names::{BundleId, Channel, Sha256, UpdateId};
use crate::formats::model::Update;

/// The bundle format this ferry writes, and the only one it reads.
pub const BUNDLE_FORMAT: u32 = 1;
/// The manifest's entry name in the zip.
pub const MANIFEST_ENTRY: &str = "manifest.json";
/// Largest manifest read before parsing: about 100,000 updates' metadata.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The largest sequence a bundle may carry: what the registry stores as a signed 64-bit
/// integer. Far beyond any real channel (a bundle a second for 292 billion years).
pub const MAX_SEQUENCE: u64 = i64::MAX as u64;
/// Prefix of payload entries that carry whole files.
pub const FILE_ENTRY_PREFIX: &str = "files/sha256/";
/// Prefix of payload entries that carry a piece of a file too large for one volume.
pub const CHUNK_ENTRY_PREFIX: &str = "chunks/sha256/";
/// Prefix and suffix of signature entries: `signatures/<KEY ID>.minisig`.
pub const SIGNATURE_ENTRY_PREFIX: &str = "signatures/";
pub const SIGNATURE_ENTRY_SUFFIX: &str = ".minisig";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleKind {
    /// Carries every selected file.
    Full,
    /// Carries only what the offline side lacked; lists in `relies_on` what it must hold already.
    Delta,
}

impl fmt::Display for BundleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleKind::Full => "full",
            BundleKind::Delta => "delta",
        })
    }
}

/// A file the manifest describes (an update refers to it), carried in this set or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedFile {
    pub sha256: Sha256,
    pub size: u64,
}

/// A payload entry actually carried, and the volume it travels in. A payload is either a
/// whole described file (`files/sha256/<its digest>`) or one chunk of a described file too
/// large for a volume (`chunks/sha256/<the chunk's digest>`, with `chunk_of`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub entry: String,
    pub sha256: Sha256,
    pub size: u64,
    pub volume: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_of: Option<ChunkOf>,
}

/// Where a chunk belongs: the described file it is part of, and its offset in that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOf {
    pub file: Sha256,
    pub offset: u64,
}

/// How the payloads are spread over the volumes of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// How many volumes the set has (1 for a single zip).
    pub volumes: u32,
    pub payloads: Vec<Payload>,
}

impl Layout {
    /// SHA-256 of the layout's canonical JSON: part of the bundle's identity.
    pub fn digest(&self) -> Sha256 {
        Sha256::of(&serde_json::to_vec(self).expect("a layout always serialises"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub bundle_id: BundleId,
    pub channel: Channel,
    pub sequence: u64,
    pub created: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    pub kind: BundleKind,
    /// For a delta: digests of files the offline side must already hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relies_on: Vec<Sha256>,
    /// Which program wrote the bundle, for people reading it.
    #[serde(default)]
    pub generator: String,
    pub updates: Vec<Update>,
    pub files: Vec<DescribedFile>,
    pub layout: Layout,
    /// Microsoft's offline scan catalog, carried for the computers' own scans: metadata,
    /// so it needs no approval. Its file is one of the described files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_catalog: Option<ScanCatalog>,
    /// Updates the pack selected but left out because one of their files could not be had
    /// (`fetch pack --skip-failed`): the offline side still lacks them, and says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// An update a pack selected and left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub id: UpdateId,
    pub revision: u32,
    /// What failed, in a sentence (the download's error).
    pub reason: String,
}

/// The longest reason a left-out update may carry.
pub const MAX_LEFT_OUT_REASON: usize = 1024;

/// A scan catalog a bundle carries, as fetch verified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCatalog {
    pub sha256: Sha256,
    pub size: u64,
    /// The Authenticode signer fetch checked, and the root its chain ended at.
    pub signer: String,
    pub root: String,
    /// The catalog's own version and creation time (`package.xml`), where it gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Only the version field, read first so that an unknown format gets a clear refusal rather
/// than a confusing complaint about some other field.
#[derive(Deserialize)]
struct FormatProbe {
    format: u32,
}

pub fn file_entry_name(digest: &Sha256) -> String {
    format!("{FILE_ENTRY_PREFIX}{digest}")
}

pub fn chunk_entry_name(digest: &Sha256) -> String {
    format!("{CHUNK_ENTRY_PREFIX}{digest}")
}

impl Manifest {
    /// Parses manifest bytes. The caller has capped their size.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let probe: FormatProbe = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
        if probe.format != BUNDLE_FORMAT {
            return Err(format!("format {} is not supported (this ferry reads format {BUNDLE_FORMAT})", probe.format));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Every rule the types alone do not enforce, naming the field of the first problem.
    pub fn check(&self) -> Result<(), String> {
        if self.sequence == 0 || self.sequence > MAX_SEQUENCE {
            return Err(format!("sequence {} is outside 1..={MAX_SEQUENCE}", self.sequence));
        }
        let mut described: BTreeMap<Sha256, u64> = BTreeMap::new();
        for (i, f) in self.files.iter().enumerate() {
            if described.insert(f.sha256, f.size).is_some() {
                return Err(format!("files[{i}]: {} is listed twice", f.sha256));
            }
        }
        let mut ids: BTreeSet<&UpdateId> = BTreeSet::new();
        let mut referenced = BTreeSet::new();
        for (i, u) in self.updates.iter().enumerate() {
            u.check_described().map_err(|(field, reason)| format!("updates[{i}].{field}: {reason}"))?;
            if !ids.insert(&u.id) {
                return Err(format!("updates[{i}].id: {} is listed twice", u.id));
            }
            for (j, f) in u.files.iter().enumerate() {
                match described.get(&f.sha256) {
                    None => return Err(format!("updates[{i}].files[{j}]: {} is not in the described files", f.sha256)),
                    Some(size) if *size != f.size => {
                        return Err(format!(
                            "updates[{i}].files[{j}]: size {} differs from the described size {size}",
                            f.size
                        ));
                    }
                    Some(_) => {}
                }
                referenced.insert(f.sha256);
            }
        }
        if let Some(scan) = &self.scan_catalog {
            match described.get(&scan.sha256) {
                Some(size) if *size == scan.size => {}
                Some(size) => {
                    return Err(format!("scan_catalog.size: {} differs from the described size {size}", scan.size));
                }
                None => return Err(format!("scan_catalog.sha256: {} is not in the described files", scan.sha256)),
            }
            if scan.signer.len() > 1024 || scan.root.len() > 1024 {
                return Err("scan_catalog: a signer or root name longer than 1024 bytes".into());
            }
            referenced.insert(scan.sha256);
        }
        for (i, l) in self.left_out.iter().enumerate() {
            if ids.contains(&l.id) {
                return Err(format!("left_out[{i}].id: {} is both carried and left out", l.id));
            }
            if l.reason.len() > MAX_LEFT_OUT_REASON {
                return Err(format!("left_out[{i}].reason: longer than {MAX_LEFT_OUT_REASON} bytes"));
            }
        }
        let left: BTreeSet<&UpdateId> = self.left_out.iter().map(|l| &l.id).collect();
        if left.len() != self.left_out.len() {
            return Err("left_out: an update is listed twice".into());
        }
        if let Some(f) = self.files.iter().find(|f| !referenced.contains(&f.sha256)) {
            return Err(format!("files: {} is described but no update refers to it", f.sha256));
        }
        match self.kind {
            BundleKind::Full if !self.relies_on.is_empty() => {
                return Err("relies_on: a full bundle relies on nothing".into());
            }
            _ => {}
        }
        for d in &self.relies_on {
            if !described.contains_key(d) {
                return Err(format!("relies_on: {d} is not a described file"));
            }
        }
        if self.layout.volumes == 0 {
            return Err("layout.volumes: a set has at least one volume".into());
        }
        let relied: BTreeSet<&Sha256> = self.relies_on.iter().collect();
        let mut whole = BTreeSet::new();
        let mut entries: BTreeMap<&str, u64> = BTreeMap::new();
        let mut chunks: BTreeMap<Sha256, Vec<(u64, u64)>> = BTreeMap::new();
        for (i, p) in self.layout.payloads.iter().enumerate() {
            let expected_entry = match &p.chunk_of {
                None => file_entry_name(&p.sha256),
                Some(_) => chunk_entry_name(&p.sha256),
            };
            if p.entry != expected_entry {
                return Err(format!("layout.payloads[{i}].entry: {:?} is not named after its digest", p.entry));
            }
            // A chunk's bytes may recur in a file (identical regions): one entry then stands
            // at several offsets, with one size. Whole files are listed once.
            match entries.insert(p.entry.as_str(), p.size) {
                Some(size) if p.chunk_of.is_none() || size != p.size => {
                    return Err(format!("layout.payloads[{i}]: {} is carried twice", p.entry));
                }
                _ => {}
            }
            if p.volume == 0 || p.volume > self.layout.volumes {
                return Err(format!(
                    "layout.payloads[{i}].volume: {} is not between 1 and {}",
                    p.volume, self.layout.volumes
                ));
            }
            let file = p.chunk_of.as_ref().map_or(p.sha256, |c| c.file);
            let Some(size) = described.get(&file) else {
                return Err(format!("layout.payloads[{i}]: {file} is not a described file"));
            };
            match &p.chunk_of {
                None if *size != p.size => {
                    return Err(format!(
                        "layout.payloads[{i}]: size {} differs from the described size {size}",
                        p.size
                    ));
                }
                None => {
                    whole.insert(file);
                }
                Some(c) => {
                    if p.size == 0 {
                        return Err(format!("layout.payloads[{i}]: an empty chunk"));
                    }
                    chunks.entry(file).or_default().push((c.offset, p.size));
                }
            }
            if relied.contains(&file) {
                return Err(format!("layout.payloads[{i}]: {file} is both carried and relied on"));
            }
        }
        for (file, mut pieces) in chunks {
            if whole.contains(&file) {
                return Err(format!("layout.payloads: {file} is carried both whole and in chunks"));
            }
            pieces.sort_unstable();
            let mut next = 0u64;
            for (offset, size) in pieces {
                if offset != next {
                    return Err(format!("layout.payloads: the chunks of {file} leave a gap or overlap at byte {next}"));
                }
                next = offset.checked_add(size).ok_or_else(|| format!("layout.payloads: chunk of {file} overflows"))?;
            }
            if next != described[&file] {
                return Err(format!(
                    "layout.payloads: the chunks of {file} cover {next} of its {} bytes",
                    described[&file]
                ));
            }
        }
        if let Some(expires) = self.expires
            && expires <= self.created
        {
            return Err("expires: the bundle would expire before it was created".into());
        }
        Ok(())
    }

    /// The payloads that travel in `volume`.
    pub fn payloads_in(&self, volume: u32) -> impl Iterator<Item = &Payload> {
        self.layout.payloads.iter().filter(move |p| p.volume == volume)
    }

    /// The trusted comment a signature of this manifest carries in `volume`.
    pub fn trusted_comment(&self, volume: u32) -> TrustedComment {
        TrustedComment {
            bundle_id: self.bundle_id.to_string(),
            channel: self.channel.to_string(),
            sequence: self.sequence,
            volume,
            volumes: self.layout.volumes,
            layout: self.layout.digest(),
        }
    }
}

/// The fixed grammar of a ferry signature's trusted comment:
///
/// `ferry-bundle v1 id=<bundle id> channel=<channel> sequence=<n> volume=<k>/<n> layout=<sha256>`
///
/// `minisign -V` prints it, so an auditor sees which bundle a signature belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedComment {
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub volume: u32,
    pub volumes: u32,
    pub layout: Sha256,
}

impl fmt::Display for TrustedComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ferry-bundle v1 id={} channel={} sequence={} volume={}/{} layout={}",
            self.bundle_id, self.channel, self.sequence, self.volume, self.volumes, self.layout
        )
    }
}

impl TrustedComment {
    pub fn parse(text: &str) -> Result<TrustedComment, String> {
        let bad = || {
            format!(
                "{text:?} is not a ferry trusted comment (ferry-bundle v1 id=… channel=… sequence=… volume=k/n layout=…)"
            )
        };
        let fields: Vec<&str> = text.split(' ').collect();
        let [magic, version, id, channel, sequence, volume, layout] = fields.as_slice() else {
            return Err(bad());
        };
        if *magic != "ferry-bundle" || *version != "v1" {
            return Err(bad());
        }
        let value = |field: &str, key: &str| field.strip_prefix(key).map(str::to_string).ok_or_else(bad);
        let (k, n) =
            value(volume, "volume=")?.split_once('/').map(|(k, n)| (k.to_string(), n.to_string())).ok_or_else(bad)?;
        Ok(TrustedComment {
            bundle_id: value(id, "id=")?,
            channel: value(channel, "channel=")?,
            sequence: value(sequence, "sequence=")?.parse().map_err(|_| bad())?,
            volume: k.parse().map_err(|_| bad())?,
            volumes: n.parse().map_err(|_| bad())?,
            layout: value(layout, "layout=")?.parse().map_err(|_| bad())?,
        })
    }

    /// The first field on which this comment and the manifest's own disagree:
    /// (field, value in the comment, value in the manifest).
    pub fn disagreement(&self, manifest: &TrustedComment) -> Option<(&'static str, String, String)> {
        let pairs = [
            ("bundle id", self.bundle_id.clone(), manifest.bundle_id.clone()),
            ("channel", self.channel.clone(), manifest.channel.clone()),
            ("sequence", self.sequence.to_string(), manifest.sequence.to_string()),
            ("volume count", self.volumes.to_string(), manifest.volumes.to_string()),
            ("layout", self.layout.to_string(), manifest.layout.to_string()),
        ];
        pairs.into_iter().find(|(_, a, b)| a != b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_comment_round_trip() {
        let tc = TrustedComment {
            bundle_id: "0123456789abcdef0123456789abcdef".into(),
            channel: "default".into(),
            sequence: 7,
            volume: 2,
            volumes: 3,
            layout: Sha256([7; 32]),
        };
        assert_eq!(TrustedComment::parse(&tc.to_string()).unwrap(), tc);
        assert!(TrustedComment::parse("ferry-bundle v1 id=x").is_err());
        assert!(TrustedComment::parse("timestamp:1700000000\tfile:manifest.json").is_err());
        let mut other = tc.clone();
        other.sequence = 8;
        assert_eq!(other.disagreement(&tc).unwrap().0, "sequence");
        other.sequence = 7;
        other.volume = 1;
        assert!(other.disagreement(&tc).is_none(), "the volume is checked against the entries, not here");
    }

    #[test]
    fn unknown_format_is_named() {
        let err = Manifest::parse(br#"{"format": 2}"#).unwrap_err();
        assert!(err.contains("format 2 is not supported"), "{err}");
    }
}
