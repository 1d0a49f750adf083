//! The options `pack` and `plan` share: which updates, and how to reach the network.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ferry_core::base::clock::Date;
use ferry_core::base::names::{Channel, UpdateId};
use ferry_core::fetch::download::DownloadOptions;
use ferry_core::fetch::net::NetOptions;
use ferry_core::fetch::source::Sources;
use ferry_core::formats::catalog::Selection;
use ferry_core::formats::keys;
use ferry_core::formats::model::{Classification, Severity};
use ferry_core::formats::state::ServerState;

/// Which updates to take, and from where.
#[derive(Args)]
pub struct SelectionArgs {
    /// The catalog: a path, file:// or http(s):// URL.
    #[arg(long, value_name = "LOCATION")]
    pub catalog: Option<String>,
    /// The channel the bundle belongs to.
    #[arg(long, default_value = "default")]
    pub channel: Channel,
    /// Take updates of this product (repeatable; letter case is ignored).
    #[arg(long = "product", value_name = "NAME")]
    pub products: Vec<String>,
    /// Take updates of this classification (repeatable).
    #[arg(long = "classification", value_name = "NAME", value_parser = crate::common::classification_parser())]
    pub classifications: Vec<Classification>,
    /// Take updates of this severity (repeatable).
    #[arg(long = "severity", value_name = "NAME", value_parser = crate::common::severity_parser())]
    pub severities: Vec<Severity>,
    /// Take updates released on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<Date>,
    /// Take the update with this id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<UpdateId>,
    /// Take the updates of this KB article (repeatable; 5034122 or KB5034122).
    #[arg(long = "kb", value_name = "KB")]
    pub kbs: Vec<String>,
    /// Take the updates that fix this CVE (repeatable; with --msrc, MSRC's documents say
    /// which KBs fix it).
    #[arg(long = "cve", value_name = "CVE")]
    pub cves: Vec<String>,
    /// The offline server's state file (`ingest state export`): build a delta with only what
    /// it lacks. Its signature (FILE.minisig) is checked against --server-key.
    #[arg(long, value_name = "FILE", requires = "server_key")]
    pub state: Option<PathBuf>,
    /// The offline server's public key (`ingest server-key export`).
    #[arg(long, value_name = "FILE", requires = "state")]
    pub server_key: Option<PathBuf>,
    /// Of the selection, only the updates the state file says computers on the offline side
    /// need and the server lacks (from their judgments and offline scans, by id or KB).
    #[arg(long, requires = "state")]
    pub needed: bool,
    /// Carry the updates' metadata only, no files.
    #[arg(long)]
    pub metadata_only: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

impl SelectionArgs {
    pub fn selection(&self) -> Selection {
        Selection {
            ids: self.ids.clone(),
            products: self.products.clone(),
            classifications: self.classifications.clone(),
            severities: self.severities.clone(),
            released_since: self.since,
            kbs: self.kbs.iter().map(|k| ferry_core::formats::model::normalise_kb(k)).collect(),
            cves: self.cves.clone(),
        }
    }

    /// The verified state file, when one was given.
    pub fn state(&self) -> anyhow::Result<Option<ServerState>> {
        match (&self.state, &self.server_key) {
            (Some(state), Some(key)) => Ok(Some(ServerState::read_verified(state, &keys::read_public_key(key)?)?)),
            _ => Ok(None),
        }
    }
}

/// How fetch reaches the network.
#[derive(Args)]
pub struct NetArgs {
    /// Seconds a connection or a stalled transfer may take before it counts as failed.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Extra CA certificates (PEM) to trust, for example a corporate TLS proxy's.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

impl NetArgs {
    pub fn sources(&self) -> anyhow::Result<Sources> {
        let net = NetOptions { timeout: seconds(self.timeout, "--timeout")?, ca_cert: self.ca_cert.clone() };
        Ok(Sources::new(&net)?)
    }
}

#[derive(Args)]
pub struct DownloadArgs {
    /// How many files to download at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// How many times to retry a download after a timeout, a reset connection or a server error.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Seconds to wait before the first retry; the wait doubles with each further one.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub retry_delay: f64,
    /// A transfer slower than this many bytes a second over --speed-time counts as stalled
    /// and is resumed by a retry (as curl's option of the same name); 0 turns the rule off.
    #[arg(long, default_value_t = ferry_core::fetch::download::DEFAULT_SPEED_LIMIT, value_name = "BYTES")]
    pub speed_limit: u64,
    /// Seconds over which --speed-limit is judged.
    #[arg(long, default_value_t = ferry_core::fetch::download::DEFAULT_SPEED_TIME.as_secs_f64(), value_name = "SECONDS")]
    pub speed_time: f64,
}

impl DownloadArgs {
    pub fn options(&self) -> anyhow::Result<DownloadOptions> {
        Ok(DownloadOptions {
            parallel: usize::from(self.parallel),
            retries: self.retries,
            retry_delay: seconds(self.retry_delay, "--retry-delay")?,
            speed_limit: self.speed_limit,
            speed_time: match seconds(self.speed_time, "--speed-time")? {
                zero if zero.is_zero() && self.speed_limit > 0 => {
                    return Err(ferry_core::Error::Invalid(
                        "--speed-time 0 would judge every transfer stalled before its first byte; give seconds, or --speed-limit 0".into(),
                    )
                    .into());
                }
                t => t,
            },
        })
    }
}

pub fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| ferry_core::Error::Invalid(format!("{flag} {value} is not a number of seconds")).into())
}

/// A winget manifest tree to read instead of a catalog, and which of it to take
/// (docs/feeds.md).
#[derive(Args)]
pub struct WingetArgs {
    /// A winget manifest tree: winget-pkgs's `manifests/` folder, or any part of it.
    #[arg(long, value_name = "DIR", conflicts_with = "catalog")]
    pub winget: Option<PathBuf>,
    /// Only this package (repeatable; `*` and `?` as wildcards; letter case is ignored).
    #[arg(long = "package", value_name = "ID", requires = "winget")]
    pub packages: Vec<String>,
    /// Only the newest N versions of each package.
    #[arg(long, value_name = "N", requires = "winget")]
    pub latest: Option<usize>,
    /// Only installers for this architecture (repeatable: x64, x86, arm64, arm, neutral).
    #[arg(long = "architecture", value_name = "ARCH", requires = "winget")]
    pub architectures: Vec<String>,
    /// Only installers of this type (repeatable: msi, wix, exe, nullsoft, inno, burn, msix, zip).
    #[arg(long = "installer-type", value_name = "TYPE", requires = "winget")]
    pub installer_types: Vec<String>,
    /// machine or user: installers of that scope (and those that declare none).
    #[arg(long, value_name = "SCOPE", value_parser = ["machine", "user"], requires = "winget")]
    pub scope: Option<String>,
    /// Prefer installers for this locale (en-US).
    #[arg(long, value_name = "LOCALE", requires = "winget")]
    pub locale: Option<String>,
}

/// The scan catalog as a local file, and, for one given by URL, where its copy is kept.
pub struct ScanSource {
    pub path: PathBuf,
    copy_of: Option<(ferry_core::fetch::source::Location, PathBuf)>,
}

impl ScanArgs {
    /// The scan catalog given, as a local file: the path itself, or the copy of the URL kept
    /// up to date in `work_dir`'s cache (asked for only then).
    pub fn source(
        &self,
        work_dir: impl FnOnce() -> anyhow::Result<PathBuf>,
        net: &NetArgs,
        download: &DownloadOptions,
    ) -> anyhow::Result<Option<ScanSource>> {
        let Some(given) = &self.wsusscn2 else { return Ok(None) };
        match ferry_core::fetch::source::Location::parse(given)? {
            ferry_core::fetch::source::Location::File(path) => Ok(Some(ScanSource { path, copy_of: None })),
            ferry_core::fetch::source::Location::Http(url) => {
                let dir = work_dir()?.join("cache").join("scan-catalog");
                let note = |line: String| eprintln!("fetch: {}", crate::common::safe(&line));
                let path = ferry_core::fetch::wsusscn2::obtain(&url, &dir, &net.sources()?, download, &note)?;
                Ok(Some(ScanSource { path, copy_of: Some((ferry_core::fetch::source::Location::Http(url), dir)) }))
            }
        }
    }
}

impl ScanSource {
    /// Passes `result` on; a copy whose signature was refused is forgotten first, so that
    /// the next run fetches it whole.
    pub fn checked<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        if let (Err(e), Some((ferry_core::fetch::source::Location::Http(url), dir))) = (&result, &self.copy_of)
            && matches!(e.downcast_ref::<ferry_core::Error>(), Some(ferry_core::Error::FeedSignature { .. }))
        {
            ferry_core::fetch::wsusscn2::forget(url, dir);
        }
        result
    }
}

impl WingetArgs {
    pub fn selection(&self) -> ferry_core::formats::winget::Selection {
        ferry_core::formats::winget::Selection {
            packages: self.packages.clone(),
            latest: self.latest,
            architectures: self.architectures.clone(),
            installer_types: self.installer_types.clone(),
            scope: self.scope.clone(),
            locale: self.locale.clone(),
        }
    }
}

/// Microsoft's offline scan catalog to read instead of a catalog (docs/feeds.md).
#[derive(Args)]
pub struct ScanArgs {
    /// Microsoft's offline scan catalog (wsusscn2.cab; a path, or an http(s) URL whose copy
    /// is kept in the work directory and revalidated on each run): its Authenticode
    /// signature is checked against Microsoft's root certificates before anything in it is
    /// read.
    #[arg(long, value_name = "LOCATION", conflicts_with_all = ["catalog", "winget"])]
    pub wsusscn2: Option<String>,
    /// Trust this root certificate (DER or PEM) for the scan catalog's signature too, beside
    /// Microsoft's pinned ones (repeatable).
    #[arg(long = "wsusscn2-root", value_name = "CERT", requires = "wsusscn2")]
    pub roots: Vec<PathBuf>,
    /// Whether an update that another selected update supersedes is carried too.
    #[arg(long, value_name = "WHICH", default_value = "exclude", value_parser = ["include", "exclude"])]
    pub superseded: String,
}
