//! Which updates a command concerns: the filter options `list`, `approve`, `group add` and
//! the rules share, and the selection by ids, filter or --all.

use clap::Args;
use ferry_core::base::clock::Date;
use ferry_core::base::names::{GroupName, UpdateId};
use ferry_core::formats::model::{Classification, Severity};
use ferry_core::server::registry::ListFilter;

/// What an update is: the options a filter and a rule share.
#[derive(Args, Clone)]
pub struct KindArgs {
    /// Only this product (repeatable; letter case is ignored).
    #[arg(long = "product", value_name = "NAME")]
    pub products: Vec<String>,
    /// Only this classification (repeatable).
    #[arg(long = "classification", value_name = "NAME", value_parser = crate::common::classification_parser())]
    pub classifications: Vec<Classification>,
    #[arg(long = "severity", value_name = "NAME", value_parser = crate::common::severity_parser())]
    pub severities: Vec<Severity>,
}

impl KindArgs {
    pub fn is_empty(&self) -> bool {
        self.products.is_empty() && self.classifications.is_empty() && self.severities.is_empty()
    }
}

/// Which updates a list or a status change concerns.
#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub kind: KindArgs,
    /// Only this approval status: undefined, approved or declined (repeatable).
    #[arg(long = "status", value_name = "STATUS", value_parser = ["undefined", "approved", "declined"])]
    pub statuses: Vec<String>,
    /// Only this KB number (repeatable), as KB5034122 or 5034122.
    #[arg(long = "kb", value_name = "KB")]
    pub kbs: Vec<String>,
    /// Only updates released on or before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub released_before: Option<Date>,
    /// Only updates released on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub released_after: Option<Date>,
    /// Only members of this update group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<GroupName>,
    /// Only updates superseded by an update present on this server.
    #[arg(long, conflicts_with = "not_superseded")]
    pub superseded: bool,
    /// Only updates not superseded by an update present on this server.
    #[arg(long)]
    pub not_superseded: bool,
    /// Only updates with a file its vendor names by SHA-1 only (Microsoft's scan catalog).
    #[arg(long, conflicts_with = "not_sha1_only")]
    pub sha1_only: bool,
    /// Only updates whose files are all known by their vendor's SHA-256 (or registered here).
    #[arg(long)]
    pub not_sha1_only: bool,
}

impl FilterArgs {
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
            && self.statuses.is_empty()
            && self.kbs.is_empty()
            && self.released_before.is_none()
            && self.released_after.is_none()
            && self.groups.is_empty()
            && !self.superseded
            && !self.not_superseded
            && !self.sha1_only
            && !self.not_sha1_only
    }

    pub fn into_filter(self, available: Option<bool>) -> ListFilter {
        ListFilter {
            products: self.kind.products,
            classifications: self.kind.classifications,
            severities: self.kind.severities,
            statuses: self.statuses,
            kbs: self.kbs,
            released_before: self.released_before,
            released_after: self.released_after,
            groups: self.groups,
            superseded: (self.superseded || self.not_superseded).then_some(self.superseded),
            sha1_only: (self.sha1_only || self.not_sha1_only).then_some(self.sha1_only),
            available,
        }
    }
}

/// The updates a command acts on: ids, or a filter, or --all; never nothing by accident.
#[derive(Args)]
pub struct Selection {
    /// Update ids; or give a filter, or --all.
    pub ids: Vec<UpdateId>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Every update in the list.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
}

impl Selection {
    /// The ids and the filter, or the usage error to print.
    pub fn resolve(self) -> Result<(Vec<UpdateId>, ListFilter), &'static str> {
        if self.ids.is_empty() && self.filter.is_empty() && !self.all {
            return Err("name the updates, give a filter (see --help), or --all");
        }
        if !self.ids.is_empty() && !self.filter.is_empty() {
            return Err("give update ids or a filter, not both");
        }
        Ok((self.ids, self.filter.into_filter(None)))
    }
}
