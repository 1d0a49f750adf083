//! The one error type of the core crate.
//!
//! Every refusal has its own variant carrying the thing it names (file, entry, key, line), so
//! that tests can assert the exact reason and the binaries can pick an exit code from
//! [`Error::class`] without parsing messages. This module formats nothing for terminals and
//! decides no exit codes: that is the binaries' job.

use std::path::PathBuf;

use crate::base::names::{KeyId, Sha1, Sha256};

/// The broad kind of a failure; the binaries map each to one documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Input that the user gave is malformed: a catalog, a key file, a name, an argument value.
    Input,
    /// A download failed (connection, HTTP status, timeout).
    Network,
    /// Bytes did not match their declared SHA-256 or size.
    Integrity,
    /// Signatures: bad, missing, untrusted, or a trusted comment that disagrees.
    Signature,
    /// The bundle's container or manifest is unsafe or malformed.
    Bundle,
    /// A replayed, older or conflicting bundle.
    Rollback,
    /// The local machine failed us: disk, file system, the operating system.
    Local,
    /// Data ferry wrote itself is damaged: a registry row or a stored report it never writes
    /// that way, a work directory's state. Restore from a backup, or repair.
    Damaged,
    /// A fault of ferry itself: a bug, never the user's input.
    Internal,
    /// Something asked for by name does not exist.
    NotFound,
    /// Another process holds the data directory.
    Busy,
}

impl ErrorClass {
    /// The class's name in JSON output (docs/json.md).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Input => "input",
            ErrorClass::Network => "network",
            ErrorClass::Integrity => "integrity",
            ErrorClass::Signature => "signature",
            ErrorClass::Bundle => "bundle",
            ErrorClass::Rollback => "rollback",
            ErrorClass::Local => "local",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Busy => "busy",
            ErrorClass::Damaged => "damaged",
            ErrorClass::Internal => "internal",
        }
    }

    /// What happened, in words a person reads (a refusal's reason file, a report).
    pub fn sentence(self) -> &'static str {
        match self {
            ErrorClass::Input => "something given as input is malformed",
            ErrorClass::Network => "a download failed",
            ErrorClass::Integrity => "its bytes do not match the digest or size they were signed with",
            ErrorClass::Signature => "its signature is bad, missing or not from a trusted key",
            ErrorClass::Bundle => "the bundle's zip container or manifest is unsafe or malformed",
            ErrorClass::Rollback => "it is a replayed, older or conflicting bundle",
            ErrorClass::Local => "this machine failed to read or write it (disk, file system)",
            ErrorClass::NotFound => "something it names does not exist",
            ErrorClass::Busy => "another process holds the data directory",
            ErrorClass::Damaged => "data ferry wrote itself is damaged",
            ErrorClass::Internal => "ferry itself failed (a bug)",
        }
    }
}

/// Why a bundle's zip container was refused before anything in it was trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerFault {
    #[error("not a zip file: {0}")]
    NotZip(String),
    #[error("{0} bytes of unexpected data before the first entry")]
    LeadingJunk(u64),
    #[error("{0} bytes of unexpected data after the end-of-central-directory record")]
    TrailingJunk(u64),
    #[error("multi-disk archives are not supported")]
    MultiDisk,
    #[error("the end record counts {declared} entries but the central directory holds {found}")]
    EntryCount { declared: u64, found: u64 },
    #[error("malformed central directory: {0}")]
    CentralDirectory(String),
    #[error("entry {index}: name is not UTF-8")]
    NameNotUtf8 { index: usize },
    #[error("entry {name:?}: unsafe name ({reason})")]
    UnsafeName { name: String, reason: &'static str },
    #[error("entry {name:?} appears twice")]
    DuplicateName { name: String },
    #[error("entries {first:?} and {second:?} differ only in letter case")]
    CaseTwins { first: String, second: String },
    #[error("entry {name:?} is a symbolic link")]
    Symlink { name: String },
    #[error("entry {name:?} is a directory")]
    Directory { name: String },
    #[error("entry {name:?} is encrypted")]
    Encrypted { name: String },
    #[error("entry {name:?} uses a data descriptor")]
    DataDescriptor { name: String },
    #[error("entry {name:?} is compressed (method {method}); bundles hold stored entries only")]
    Compressed { name: String, method: u16 },
    #[error("entry {name:?}: local header disagrees with the central directory ({field})")]
    HeaderMismatch { name: String, field: &'static str },
    #[error("entry {name:?} overlaps another entry or the central directory")]
    Overlap { name: String },
    #[error("entry {name:?}: stored size {stored} differs from its uncompressed size {uncompressed}")]
    SizeMismatch { name: String, stored: u64, uncompressed: u64 },
    #[error("entry {name:?}: CRC-32 does not match its data")]
    BadCrc { name: String },
    #[error("entry {name:?}: a Unicode path field names it {other:?}; other zip tools would show that name")]
    NameFieldDisagrees { name: String, other: String },
    #[error("{0} carries a comment; bundles have none (other zip tools would show it)")]
    Comment(String),
    #[error("entry {name:?}: malformed extra field")]
    MalformedExtra { name: String },
    #[error("too many entries ({0}; at most {1})")]
    TooManyEntries(u64, u64),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{kind} {value:?} is not valid: {reason}")]
    InvalidName { kind: &'static str, value: String, reason: String },

    #[error("catalog {origin}: {location}: {message}")]
    Catalog { origin: String, location: String, message: String },

    /// A feed's file (a winget manifest, a scan catalog, an MSRC document) refused: the
    /// file, the line where known, the field and why.
    #[error("{}{}: {}{reason}", file.display(), line.map(|l| format!(": line {l}")).unwrap_or_default(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Feed { file: PathBuf, line: Option<usize>, field: String, reason: String },

    /// A feed whose vendor signs it (Microsoft's offline scan catalog) is not signed as it
    /// must be: nothing it lists is trusted.
    #[error("{}: its signature is refused: {reason}", file.display())]
    FeedSignature { file: PathBuf, reason: String },

    #[error("selection matches no update in catalog {origin}")]
    EmptySelection { origin: String },

    #[error("key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },

    #[error("secret key {}: wrong passphrase (the key checksum does not match)", path.display())]
    WrongPassphrase { path: PathBuf },

    #[error("{what} exists already (use --force to overwrite)")]
    AlreadyExists { what: String },

    #[error(
        "key {key_id} is the public demo key shipped with ferry; anyone can sign with it (use --allow-demo-key only for demonstrations)"
    )]
    DemoKey { key_id: KeyId },

    #[error("download {url}: {cause}")]
    Download { url: String, cause: String },

    /// A notification could not be delivered (mail server, notification command).
    #[error("{what}: {cause}")]
    Notification { what: String, cause: String },

    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },

    #[error("{what}: SHA-256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Sha256, actual: Sha256 },

    /// A file the vendor names by SHA-1 only (Microsoft's) is not the one named.
    #[error("{what}: SHA-1 mismatch: the vendor's metadata names {expected}, got {actual}")]
    Sha1Mismatch { what: String, expected: Sha1, actual: Sha1 },

    #[error("bundle {}: {fault}", path.display())]
    Container { path: PathBuf, fault: ContainerFault },

    #[error("bundle {}: manifest: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },

    #[error("bundle {}: entries do not match the manifest: {reason}", path.display())]
    Entries { path: PathBuf, reason: String },

    #[error("bundle {}: signature {entry}: {reason}", path.display())]
    SignatureFile { path: PathBuf, entry: String, reason: String },

    #[error("bundle {}: signature by key {key_id} does not verify: the manifest was altered after signing", path.display())]
    ManifestAltered { path: PathBuf, key_id: KeyId },

    #[error("bundle {}: signature by key {key_id}: the trusted comment was altered after signing", path.display())]
    TrustedCommentAltered { path: PathBuf, key_id: KeyId },

    #[error("bundle {}: signature by key {key_id}: trusted comment says {field} {comment_value:?} but the manifest says {manifest_value:?}", path.display())]
    TrustedCommentMismatch {
        path: PathBuf,
        key_id: KeyId,
        field: &'static str,
        comment_value: String,
        manifest_value: String,
    },

    #[error("bundle {}: signature by key {key_id} is in minisign's legacy form (\"Ed\", over the whole manifest); ferry and minisign since 0.8 sign prehashed (\"ED\"): --allow-legacy-signature accepts it", path.display())]
    LegacySignature { path: PathBuf, key_id: KeyId },

    /// An update list or groups file whose signature is missing, not by a trusted peer key,
    /// or does not match its bytes.
    #[error("{what}: {reason}")]
    ListSignature { what: String, reason: String },

    #[error("bundle {}: key rotation statement refused: {reason}", path.display())]
    Rotation { path: PathBuf, reason: String },
    #[error("bundle {}: not signed by enough trusted keys for channel {channel:?}: {valid} valid of {threshold} required (signed by: {signers}; trusted: {trusted})", path.display())]
    Untrusted { path: PathBuf, channel: String, valid: usize, threshold: usize, signers: String, trusted: String },

    #[error("bundle {}: sequence {sequence} of channel {channel:?} is older than the highest accepted, {highest}: refused as a replay or rollback", path.display())]
    Rollback { path: PathBuf, channel: String, sequence: u64, highest: u64 },

    #[error("distribution point {}: generation {generation} of {point} is older than generation {accepted}, accepted {accepted_at}: refused as a replay or rollback", dir.display())]
    PointRollback { dir: PathBuf, point: String, generation: u64, accepted: u64, accepted_at: String },

    #[error("bundle {}: sequence {sequence} of channel {channel:?} was already accepted with other content (layout {accepted_layout}, this bundle {layout}); if two online machines, or a lost work directory, used the number, pack again with `fetch pack … --min-sequence {next}` (or export this server's state with `ingest state export` and pack against it)", path.display())]
    SequenceReused {
        path: PathBuf,
        channel: String,
        sequence: u64,
        accepted_layout: Box<Sha256>,
        layout: Box<Sha256>,
        next: u64,
    },

    #[error("bundle {}: delta relies on file {digest} which this server does not hold", path.display())]
    MissingBase { path: PathBuf, digest: Sha256 },

    #[error("bundle {}: expired at {expires} (judged against {now}, the later of the system clock and the latest accepted bundle; `ingest trust clock-reset` if that bundle was dated in the future, --allow-expired to accept it anyway, logged)", path.display())]
    Expired { path: PathBuf, expires: String, now: String },

    #[error("state file {}: {reason}", path.display())]
    StateFile { path: PathBuf, reason: String },

    #[error("registry {}: {source}", path.display())]
    Registry { path: PathBuf, source: rusqlite::Error },

    #[error("registry {}: schema version {found} is newer than this ferry understands ({supported})", path.display())]
    SchemaTooNew { path: PathBuf, found: i64, supported: i64 },

    #[error("registry {}: upgrading to schema version {version} found rows of table {table} that refer to rows that do not exist; nothing was changed (restore the registry from a backup)", path.display())]
    UpgradeRefused { path: PathBuf, version: i64, table: String },

    /// The registry holds something its own code never writes: a damaged file or a bug, not
    /// bad input.
    #[error("registry {}: {reason}", path.display())]
    RegistryDamaged { path: PathBuf, reason: String },

    /// Other data ferry wrote itself is damaged: a stored change report, a work directory's
    /// state.
    #[error("{what} is damaged: {reason}")]
    Damaged { what: String, reason: String },

    /// The operating system could not give what was needed (random bytes, an HTTP client's
    /// TLS set-up, an output stream).
    #[error("{what}: {cause}")]
    Environment { what: String, cause: String },

    /// A fault of ferry itself: something its own code should never produce.
    #[error("internal error (a bug in ferry): {0}")]
    Internal(String),

    #[error("data directory {} holds no registry yet (trust a key with `ingest trust add` first, or check --data-dir)", dir.display())]
    NoRegistry { dir: PathBuf },

    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },

    #[error("data directory {} is in use by another ingest (lock file {})", dir.display(), lock.display())]
    Busy { dir: PathBuf, lock: PathBuf },

    #[error("another ingest watch{} is running on data directory {}; this one stops (one watcher at a time)", pid.map(|p| format!(" (process {p})")).unwrap_or_default(), dir.display())]
    WatchRunning { dir: PathBuf, pid: Option<u32> },

    #[error("audit log in {}: entry {seq}: {reason}", path.display())]
    AuditBroken { path: PathBuf, seq: i64, reason: String },
    #[error("channel {channel:?}: {reason}")]
    TrustPolicy { channel: String, reason: String },
    /// A distribution point's index or its signature is missing, damaged or not signed by
    /// the expected server key.
    #[error("distribution point {}: {reason}", dir.display())]
    DpIndex { dir: PathBuf, reason: String },

    /// Something other than a regular file where only one is read or written: a link, a
    /// directory, a FIFO or a device (opened without waiting on it).
    #[error("{}: is {found}, not a plain file", path.display())]
    NotAPlainFile { path: PathBuf, found: &'static str },

    /// Something other than a real directory where ferry keeps one inside a tree others
    /// write to: neither followed nor removed.
    #[error("{}: is {found}, not a directory", path.display())]
    NotADirectory { path: PathBuf, found: &'static str },

    #[error("{}: is a symbolic link to {}; only plain files are read (--follow-symlinks to read what it points to)", path.display(), target.display())]
    SymlinkRefused { path: PathBuf, target: PathBuf },

    #[error("{}: is a symbolic link to {}; an output never replaces a link (name the file itself, or - for standard output)", path.display(), target.display())]
    OutputIsLink { path: PathBuf, target: PathBuf },

    #[error("{}: inside the data directory {}; outputs are written elsewhere, so that nothing can overwrite the registry or the store", path.display(), dir.display())]
    OutputInDataDir { path: PathBuf, dir: PathBuf },

    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    /// Input the user gave is refused, for the reason given.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            Io { .. } | Registry { .. } | SchemaTooNew { .. } | Environment { .. } => ErrorClass::Local,
            RegistryDamaged { .. } | UpgradeRefused { .. } | Damaged { .. } => ErrorClass::Damaged,
            Internal(_) => ErrorClass::Internal,
            InvalidName { .. }
            | Catalog { .. }
            | Feed { .. }
            | EmptySelection { .. }
            | KeyFile { .. }
            | WrongPassphrase { .. }
            | AlreadyExists { .. }
            | DemoKey { .. }
            | TrustPolicy { .. }
            | NotAPlainFile { .. }
            | NotADirectory { .. }
            | OutputIsLink { .. }
            | OutputInDataDir { .. }
            | SymlinkRefused { .. }
            | TooLarge { .. }
            | Invalid(_) => ErrorClass::Input,
            Download { .. } | Notification { .. } => ErrorClass::Network,
            SizeMismatch { .. } | DigestMismatch { .. } | Sha1Mismatch { .. } | AuditBroken { .. } => {
                ErrorClass::Integrity
            }
            Container { .. } | Manifest { .. } | Entries { .. } => ErrorClass::Bundle,
            SignatureFile { .. }
            | ManifestAltered { .. }
            | TrustedCommentAltered { .. }
            | TrustedCommentMismatch { .. }
            | LegacySignature { .. }
            | ListSignature { .. }
            | Untrusted { .. }
            | Rotation { .. }
            | StateFile { .. }
            | DpIndex { .. }
            | FeedSignature { .. } => ErrorClass::Signature,
            Rollback { .. } | PointRollback { .. } | SequenceReused { .. } | MissingBase { .. } | Expired { .. } => {
                ErrorClass::Rollback
            }
            NotFound { .. } | NoRegistry { .. } => ErrorClass::NotFound,
            Busy { .. } | WatchRunning { .. } => ErrorClass::Busy,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source: plain_io(source) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

/// `e` without a path of its own: tempfile's errors say "… at path …" after the operating
/// system's message, and ferry names the path itself, once.
fn plain_io(e: std::io::Error) -> std::io::Error {
    let text = e.get_ref().map(|inner| inner.to_string());
    match text.as_deref().and_then(|t| t.rsplit_once(" at path ")) {
        Some((message, _)) => std::io::Error::new(e.kind(), message.to_string()),
        None => e,
    }
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
