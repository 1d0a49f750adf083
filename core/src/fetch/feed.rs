//! The one seam through which `fetch` reads update metadata: a feed offers updates in
//! ferry's model, whatever its format, and says what it had but does not offer. Planning,
//! downloading and packing then know nothing of the format.

use std::path::Path;

use crate::base::error::Result;
use crate::fetch::cache::Cache;
use crate::fetch::download::{DownloadOptions, Progress};
use crate::fetch::source::{Location, Sources};
use crate::formats::catalog::{Catalog, MAX_CATALOG_BYTES, Selection};
use crate::formats::winget::{self, Skipped};
use crate::formats::wsusscn2::ScanSkipped;

/// Where `fetch pack` reads its updates.
#[derive(Debug, Clone, Copy)]
pub enum Feed<'a> {
    /// ferry's own JSON catalog, at a path or URL.
    Catalog(&'a Location),
    /// A winget manifest tree, with what to choose from it.
    Winget { tree: &'a Path, selection: &'a winget::Selection },
    /// Microsoft's offline scan catalog, the roots its signature must chain to, what to
    /// choose from it and whether what a chosen update supersedes is carried too.
    /// MSRC's documents, when given, add CVEs and severities to the updates of their KBs.
    Wsusscn2 {
        cab: &'a Path,
        roots: &'a [Vec<u8>],
        security: Option<&'a crate::fetch::msrc::Security>,
        selection: &'a Selection,
        include_superseded: bool,
        /// Carry the catalog itself too, for the computers' own scans.
        carry: bool,
    },
}

/// Something a feed had but does not offer, in the feed's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Winget(Skipped),
    Scan(ScanSkipped),
}

/// What a feed offers.
#[derive(Debug)]
pub struct Offered {
    /// The updates, checked as any catalog's.
    pub catalog: Catalog,
    /// Where a file reference relative to the feed resolves.
    pub base: Location,
    /// What the feed had but does not offer, and why.
    pub skipped: Vec<Skip>,
    /// A scan catalog to carry beside the updates, and where its file is.
    pub scan_catalog: Option<(std::path::PathBuf, crate::formats::manifest::ScanCatalog)>,
}

impl Feed<'_> {
    /// Reads the feed. A feed that gives no file sizes (winget) has its files fetched into
    /// `cache` to learn them; `progress` reports those transfers.
    pub fn offer(
        &self,
        sources: &Sources,
        cache: &Cache,
        download: &DownloadOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Offered> {
        match self {
            Feed::Catalog(location) => Ok(Offered {
                catalog: load_catalog(sources, location)?,
                base: (*location).clone(),
                skipped: Vec::new(),
                scan_catalog: None,
            }),
            Feed::Winget { tree, selection } => {
                let (catalog, skipped) =
                    crate::fetch::winget::offer(tree, selection, sources, cache, download, progress)?;
                let skipped = skipped.into_iter().map(Skip::Winget).collect();
                Ok(Offered { catalog, base: Location::File(tree.to_path_buf()), skipped, scan_catalog: None })
            }
            Feed::Wsusscn2 { cab, roots, security, selection, include_superseded, carry } => {
                let (catalog, skipped, carried) = crate::fetch::wsusscn2::offer(
                    cab,
                    roots,
                    *security,
                    selection,
                    *include_superseded,
                    *carry,
                    sources,
                    cache,
                    download,
                    progress,
                )?;
                let skipped = skipped.into_iter().map(Skip::Scan).collect();
                let scan_catalog = carried.map(|c| (cab.to_path_buf(), c));
                Ok(Offered { catalog, base: Location::File(cab.to_path_buf()), skipped, scan_catalog })
            }
        }
    }

    /// The feed as messages name it.
    pub fn origin(&self) -> String {
        match self {
            Feed::Catalog(location) => location.to_string(),
            Feed::Winget { tree, .. } => tree.display().to_string(),
            Feed::Wsusscn2 { cab, .. } => cab.display().to_string(),
        }
    }
}

/// Reads and checks the native catalog at `location`.
pub fn load_catalog(sources: &Sources, location: &Location) -> Result<Catalog> {
    let bytes = sources.read_capped(location, MAX_CATALOG_BYTES)?;
    Catalog::parse(&bytes, &location.to_string())
}
