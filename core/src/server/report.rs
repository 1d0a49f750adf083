//! The change report: what one import, registration, CSV import or refresh did to the update
//! list, kept in the registry so that `ingest report` can show it later, and carried by the
//! notification.
//!
//! A report names each update it concerns once, with everything that happened to it (new,
//! revised, superseded, a rule's decision, …) and how it stands now; the files that arrived;
//! the bundles taken or refused; and the volume sets still incomplete. Titles, products and
//! file names come from bundles nobody here wrote: the text form strips control sequences,
//! the HTML form escapes every value and forbids the page to load or run anything but its
//! own sorting script.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::Sha256;
use crate::base::text::{for_terminal, human_bytes};
use crate::formats::approval::Status;
use crate::formats::model::UpdateRow;
use crate::server::registry::{ImportChanges, RefreshReport, Registry};

/// What produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    Import,
    Register,
    ImportList,
    Refresh,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] =
        [ReportKind::Import, ReportKind::Register, ReportKind::ImportList, ReportKind::Refresh];
}

impl std::fmt::Display for ReportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReportKind::Import => "import",
            ReportKind::Register => "register",
            ReportKind::ImportList => "import-list",
            ReportKind::Refresh => "refresh",
        })
    }
}

/// One change report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeReport {
    /// Its number in the registry (`ingest report ID`); 0 until stored.
    pub id: u64,
    pub kind: ReportKind,
    pub created: String,
    /// Who ran the command.
    pub by: String,
    /// The day the rules were judged for, if a refresh ran.
    pub day: Option<String>,
    /// The bundles, files or CSV file the command read, and what became of each.
    pub sources: Vec<Source>,
    /// Every update the report concerns, by id.
    pub updates: Vec<Entry>,
    pub files_arrived: Vec<Arrival>,
    /// Volume sets with volumes still to come.
    pub waiting: Vec<Waiting>,
    /// Set when the report concerns more than [`DETAIL_LIMIT`] updates or arrived files: the
    /// figures over everything, of which `updates` and `files_arrived` name only the first.
    /// Absent from smaller reports, whose figures are counted from what they name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Counts>,
}

/// How many updates, and how many arrived files, a report names one by one. The first import
/// of a large list concerns every update in it: at 200,000 updates a report naming each was
/// 44 MB, took seconds to store and read, and no reader, mail client or browser could use it
/// (tests/bench/update-list-scale.sh). Past the limit a report keeps exact figures, names the
/// updates that most need a person's eye (held, approval reset, decisions) first, and points
/// at `ingest list` for the rest.
pub const DETAIL_LIMIT: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub path: String,
    /// accepted, already-imported, refused, registered or imported.
    pub outcome: String,
    pub detail: String,
}

/// One update and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// The update as the list holds it now; none when the list no longer holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateRow>,
    /// Its approval status now.
    #[serde(default, deserialize_with = "status_if_known")]
    pub status: Option<Status>,
    /// Whether every file is in the store now (and it is not withdrawn).
    pub available: bool,
    /// Its vendor withdrew it: never available, whatever files the store holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    pub changes: Vec<Change>,
}

/// A stored status, or none: a report stored before entries were typed may say "".
fn status_if_known<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Status>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| s.parse().ok()))
}

impl Entry {
    /// Whether a person can expect it on the distribution points: available, withdrawn by
    /// its vendor, or waiting for files.
    pub fn availability(&self) -> &'static str {
        match (self.withdrawn, self.available) {
            (true, _) => "withdrawn",
            (false, true) => "available",
            (false, false) => "waiting for files",
        }
    }

    /// An entry for an update the list holds, as it stands now.
    pub fn listed(update: UpdateRow, status: Status, available: bool) -> Entry {
        Entry {
            id: update.id.to_string(),
            update: Some(update),
            status: Some(status),
            available,
            withdrawn: false,
            changes: Vec::new(),
        }
    }

    /// An entry that knows only the update's id.
    pub fn named(id: &str) -> Entry {
        Entry {
            id: id.to_string(),
            update: None,
            status: None,
            available: false,
            withdrawn: false,
            changes: Vec::new(),
        }
    }

    fn title(&self) -> &str {
        self.update.as_ref().map_or("", |u| u.title.as_str())
    }

    fn product(&self) -> &str {
        self.update.as_ref().map_or("", |u| u.product.as_str())
    }

    fn classification(&self) -> &str {
        self.update.as_ref().map_or("", |u| u.classification.as_str())
    }

    fn severity(&self) -> &str {
        self.update.as_ref().map_or("", |u| u.severity.as_str())
    }

    fn kb(&self) -> Option<&str> {
        self.update.as_ref().and_then(|u| u.kb.as_deref())
    }

    fn status_text(&self) -> &str {
        self.status.map_or("", Status::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    New,
    Revised,
    /// A revision changed its files: the approval went back to undefined.
    StatusReset,
    /// Older or conflicting metadata, not taken.
    Ignored,
    /// A status a person set on another server, taken from a CSV file.
    StatusTaken,
    FilesArrived,
    Superseded,
    NoLongerSuperseded,
    Approved,
    Declined,
    /// A rule's decision back to undefined (not made by today's rules, kept for old reports).
    Undefined,
    AddedToGroup,
    /// A rule would approve it but cannot yet.
    Held,
    /// Selected by fetch but left out of the bundle: one of its files could not be had.
    LeftOut,
}

impl ChangeKind {
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::New => "new",
            ChangeKind::Revised => "revised",
            ChangeKind::StatusReset => "approval reset",
            ChangeKind::Ignored => "ignored",
            ChangeKind::StatusTaken => "status taken",
            ChangeKind::FilesArrived => "files arrived",
            ChangeKind::Superseded => "superseded",
            ChangeKind::NoLongerSuperseded => "no longer superseded",
            ChangeKind::Approved => "approved",
            ChangeKind::Declined => "declined",
            ChangeKind::Undefined => "undefined",
            ChangeKind::AddedToGroup => "added to group",
            ChangeKind::Held => "held",
            ChangeKind::LeftOut => "left out by fetch",
        }
    }

    /// How urgently a person should read of it, most urgent first: what a report past
    /// [`DETAIL_LIMIT`] names one by one.
    fn urgency(self) -> u8 {
        match self {
            ChangeKind::Held | ChangeKind::LeftOut => 0,
            ChangeKind::StatusReset => 1,
            ChangeKind::StatusTaken => 2,
            ChangeKind::Approved | ChangeKind::Declined | ChangeKind::Undefined => 3,
            ChangeKind::Revised | ChangeKind::NoLongerSuperseded => 4,
            ChangeKind::AddedToGroup => 5,
            ChangeKind::New | ChangeKind::FilesArrived => 6,
            ChangeKind::Superseded => 7,
            ChangeKind::Ignored => 8,
        }
    }
}

/// A file the store did not hold before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    pub sha256: String,
    pub size: u64,
    pub names: Vec<String>,
    pub updates: Vec<String>,
    /// The vendor's SHA-1, for a file its vendor names by SHA-1 only (fetch computed the
    /// SHA-256 after checking it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1_only: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub channel: String,
    pub sequence: u64,
    pub missing_volumes: Vec<u32>,
}

/// The figures a headline and a notification's subject give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub updates: usize,
    pub by_change: BTreeMap<String, usize>,
    pub by_product: BTreeMap<String, usize>,
    pub by_severity: BTreeMap<String, usize>,
    pub files_arrived: usize,
    pub bytes_arrived: u64,
    pub refused: usize,
    pub waiting_sets: usize,
}

impl Counts {
    /// Counts one update: by product, by severity, and once for each kind of change.
    fn add_update(&mut self, product: &str, severity: &str, changes: &[Change]) {
        fn add(counts: &mut BTreeMap<String, usize>, key: &str) {
            match counts.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.to_string(), 1);
                }
            }
        }
        self.updates += 1;
        add(&mut self.by_product, product);
        add(&mut self.by_severity, severity);
        let kinds: BTreeSet<ChangeKind> = changes.iter().map(|ch| ch.kind).collect();
        for k in kinds {
            add(&mut self.by_change, k.label());
        }
    }

    /// Counts what `report` holds besides updates: files, refusals, incomplete sets.
    fn add_besides_updates(&mut self, report: &ChangeReport) {
        self.files_arrived = report.files_arrived.len();
        self.bytes_arrived = report.files_arrived.iter().map(|f| f.size).sum();
        self.refused = report.sources.iter().filter(|s| s.outcome == "refused").count();
        self.waiting_sets = report.waiting.len();
    }
}

/// A stored report's header, as `ingest report --list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportHeader {
    pub id: u64,
    pub kind: ReportKind,
    pub created: String,
    pub by: String,
    pub headline: String,
}

/// Collects what a command did, then looks up how each update stands and stores the report.
pub struct ReportBuilder {
    kind: ReportKind,
    by: String,
    day: Option<String>,
    sources: Vec<Source>,
    changes: BTreeMap<String, Vec<Change>>,
    arrived: BTreeSet<Sha256>,
    waiting: BTreeMap<(String, u64), Vec<u32>>,
}

impl ReportBuilder {
    pub fn new(kind: ReportKind, by: &str) -> ReportBuilder {
        ReportBuilder {
            kind,
            by: by.to_string(),
            day: None,
            sources: Vec::new(),
            changes: BTreeMap::new(),
            arrived: BTreeSet::new(),
            waiting: BTreeMap::new(),
        }
    }

    /// Records a change of update `id`.
    pub fn change(&mut self, id: &str, kind: ChangeKind, detail: String) {
        self.changes.entry(id.to_string()).or_default().push(Change { kind, detail });
    }

    /// Records what became of one source: a bundle volume, a file, a CSV list.
    pub fn source(&mut self, path: &str, outcome: &str, detail: String) {
        self.sources.push(Source { path: path.to_string(), outcome: outcome.to_string(), detail });
    }

    /// Records files the store did not hold before.
    pub fn arrived(&mut self, digests: impl IntoIterator<Item = Sha256>) {
        self.arrived.extend(digests);
    }

    /// Records a set of volumes still waiting for `missing` volumes.
    pub fn waiting(&mut self, channel: &str, sequence: u64, missing: Vec<u32>) {
        self.waiting.insert((channel.to_string(), sequence), missing);
    }

    pub fn import_changes(&mut self, c: &ImportChanges) {
        for id in &c.new {
            self.change(id, ChangeKind::New, String::new());
        }
        for id in &c.revised {
            self.change(id, ChangeKind::Revised, String::new());
        }
        for id in &c.status_reset {
            self.change(id, ChangeKind::StatusReset, "the new revision changes the update's files".into());
        }
        for id in &c.ignored {
            self.change(id, ChangeKind::Ignored, "older or conflicting metadata; the list keeps its revision".into());
        }
        self.arrived.extend(c.arrived.iter().copied());
    }

    pub fn refresh(&mut self, r: &RefreshReport) {
        self.day = Some(r.day.clone());
        for s in &r.newly_superseded {
            self.change(&s.id, ChangeKind::Superseded, format!("by {}", s.by.join(", ")));
        }
        for id in &r.no_longer_superseded {
            self.change(id, ChangeKind::NoLongerSuperseded, "what superseded it is gone or withdrawn".into());
        }
        for a in &r.group_additions {
            self.change(&a.id, ChangeKind::AddedToGroup, format!("{} by rule {}", a.group, a.rule));
        }
        for d in &r.decisions {
            let kind = match d.to.as_str() {
                "approved" => ChangeKind::Approved,
                "declined" => ChangeKind::Declined,
                _ => ChangeKind::Undefined,
            };
            self.change(&d.id, kind, format!("by rule {} (was {})", d.rule, d.from));
        }
        for h in &r.held {
            self.change(&h.id, ChangeKind::Held, format!("rule {}: {}", h.rule, h.reason));
        }
    }

    /// Looks up how each update stands and what the arrived files are, and stores the report.
    /// Past [`DETAIL_LIMIT`] updates, it names the most urgent ones (then by id) and counts
    /// every one from a pass over the list's products and severities: building a line for
    /// each of 200,000 new updates only to drop all but a thousand was most of storing the
    /// report of a large import (tests/bench/update-list-scale.sh).
    pub fn store(self, registry: &mut Registry) -> Result<ChangeReport> {
        let mut changes = self.changes;
        let mut updates_counted = None;
        if changes.len() > DETAIL_LIMIT {
            let mut counts = Counts::default();
            let mut listed = std::collections::HashSet::new();
            registry.each_product_and_severity(|id, product, severity| {
                if let Some((id, changes)) = changes.get_key_value(id) {
                    counts.add_update(product, severity, changes);
                    listed.insert(id.as_str());
                }
            })?;
            // An update the list no longer holds counts without a product or severity.
            for (_, changes) in changes.iter().filter(|(id, _)| !listed.contains(id.as_str())) {
                counts.add_update("", "", changes);
            }
            let urgency = |changes: &[Change]| changes.iter().map(|c| c.kind.urgency()).min().unwrap_or(u8::MAX);
            let mut by_urgency: Vec<(u8, &String)> = changes.iter().map(|(id, c)| (urgency(c), id)).collect();
            by_urgency.sort_unstable();
            let named: BTreeSet<String> = by_urgency.into_iter().take(DETAIL_LIMIT).map(|(_, id)| id.clone()).collect();
            changes.retain(|id, _| named.contains(id));
            updates_counted = Some(counts);
        }
        let ids: Vec<String> = changes.keys().cloned().collect();
        let mut standing: BTreeMap<String, Entry> =
            registry.report_lines(&ids)?.into_iter().map(|e| (e.id.clone(), e)).collect();
        let updates: Vec<Entry> = changes
            .into_iter()
            .map(|(id, mut changes)| {
                changes.sort_by_key(|c| c.kind);
                // An update the list no longer holds is named by its id alone.
                let entry = standing.remove(&id).unwrap_or_else(|| Entry::named(&id));
                let revision = entry.update.as_ref().map_or(0, |u| u.revision);
                if let Some(c) = changes.iter_mut().find(|c| c.kind == ChangeKind::Revised && c.detail.is_empty()) {
                    c.detail = format!("now revision {revision}");
                }
                Entry { changes, ..entry }
            })
            .collect();
        let digests: Vec<Sha256> = self.arrived.into_iter().collect();
        let files_arrived = registry.arrivals(&digests)?;
        let waiting = self
            .waiting
            .into_iter()
            .filter(|(_, missing)| !missing.is_empty())
            .map(|((channel, sequence), missing_volumes)| Waiting { channel, sequence, missing_volumes })
            .collect();
        let mut report = ChangeReport {
            id: 0,
            kind: self.kind,
            created: Timestamp::now().to_string(),
            by: self.by,
            day: self.day,
            sources: self.sources,
            updates,
            files_arrived,
            waiting,
            totals: None,
        };
        if updates_counted.is_some() || report.files_arrived.len() > DETAIL_LIMIT {
            // Counted over everything before the files are cut.
            let mut totals = updates_counted.unwrap_or_else(|| report.updates_counted());
            totals.add_besides_updates(&report);
            report.totals = Some(totals);
            report.files_arrived.truncate(DETAIL_LIMIT);
        }
        report.id = registry.store_report(&report)?;
        Ok(report)
    }
}

impl ChangeReport {
    /// The figures over everything the report concerns, named one by one or not.
    pub fn counts(&self) -> Counts {
        if let Some(totals) = &self.totals {
            return totals.clone();
        }
        let mut c = self.updates_counted();
        c.add_besides_updates(self);
        c
    }

    /// The figures over the updates the report names.
    fn updates_counted(&self) -> Counts {
        let mut c = Counts::default();
        for e in &self.updates {
            c.add_update(e.product(), e.severity(), &e.changes);
        }
        c
    }

    /// How many updates and arrived files the report concerns without naming them.
    pub fn not_named(&self) -> (usize, usize) {
        self.totals.as_ref().map_or((0, 0), |t| {
            (t.updates.saturating_sub(self.updates.len()), t.files_arrived.saturating_sub(self.files_arrived.len()))
        })
    }

    /// Whether anything happened that an administrator would want to hear about.
    pub fn is_news(&self) -> bool {
        let c = self.counts();
        c.updates > 0 || c.files_arrived > 0 || c.refused > 0
    }

    /// One line: the figures that matter, in the order an administrator reads them.
    pub fn headline(&self) -> String {
        let c = self.counts();
        let mut parts: Vec<String> = Vec::new();
        for kind in [
            ChangeKind::New,
            ChangeKind::Revised,
            ChangeKind::Approved,
            ChangeKind::Declined,
            ChangeKind::Superseded,
            ChangeKind::AddedToGroup,
            ChangeKind::Held,
            ChangeKind::StatusTaken,
            ChangeKind::LeftOut,
        ] {
            if let Some(n) = c.by_change.get(kind.label()) {
                parts.push(format!("{n} {}", kind.label()));
            }
        }
        if c.files_arrived > 0 {
            parts.push(format!(
                "{} file{} arrived ({})",
                c.files_arrived,
                plural(c.files_arrived),
                human_bytes(c.bytes_arrived)
            ));
        }
        if c.refused > 0 {
            parts.push(format!("{} refused", c.refused));
        }
        if c.waiting_sets > 0 {
            parts.push(format!("{} volume set{} incomplete", c.waiting_sets, plural(c.waiting_sets)));
        }
        let what = if parts.is_empty() { "nothing changed".to_string() } else { parts.join(", ") };
        for_terminal(&what).into_owned()
    }

    /// The report as plain text, safe for a terminal and a mail body.
    pub fn to_text(&self) -> String {
        let t = |s: &str| for_terminal(s).into_owned();
        let mut out = String::new();
        let _ = writeln!(out, "ferry change report {} ({}), {} by {}", self.id, self.kind, self.created, t(&self.by));
        let _ = writeln!(out, "{}", self.headline());
        if let Some(day) = &self.day {
            let _ = writeln!(out, "rules judged as of {day}");
        }
        if !self.sources.is_empty() {
            let _ = writeln!(out, "\nsources:");
            for s in &self.sources {
                let _ = writeln!(out, "  {:<16} {}  {}", s.outcome, t(&s.path), t(&s.detail));
            }
        }
        if !self.updates.is_empty() {
            let _ = writeln!(out, "\nupdates:");
            for e in &self.updates {
                let _ = writeln!(
                    out,
                    "  {}  {} [{}; {}; {}; {}{}]",
                    t(&e.id),
                    t(e.title()),
                    t(e.product()),
                    t(e.severity()),
                    e.status_text(),
                    e.availability(),
                    e.kb().map(|k| format!("; {}", t(k))).unwrap_or_default()
                );
                for c in &e.changes {
                    let sep = if c.detail.is_empty() { "" } else { ": " };
                    let _ = writeln!(out, "      {}{sep}{}", c.kind.label(), t(&c.detail));
                }
            }
        }
        let (more_updates, more_files) = self.not_named();
        if more_updates > 0 {
            let _ = writeln!(
                out,
                "  ... and {more_updates} more update{} (`ingest list` shows them)",
                plural(more_updates)
            );
        }
        if !self.files_arrived.is_empty() {
            let _ = writeln!(out, "\nfiles arrived:");
            for f in &self.files_arrived {
                let _ = writeln!(
                    out,
                    "  {}  {}  {} (of {}){}",
                    f.sha256,
                    human_bytes(f.size),
                    t(&f.names.join(", ")),
                    t(&f.updates.join(", ")),
                    f.sha1_only.as_ref().map_or(String::new(), |s| format!("; the vendor names it by SHA-1 {s} only"))
                );
            }
        }
        if more_files > 0 {
            let _ = writeln!(out, "  ... and {more_files} more file{}", plural(more_files));
        }
        if !self.waiting.is_empty() {
            let _ = writeln!(out, "\nwaiting for volumes:");
            for w in &self.waiting {
                let missing: Vec<String> = w.missing_volumes.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    out,
                    "  channel {} sequence {}: volume{} {} still missing",
                    t(&w.channel),
                    w.sequence,
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                );
            }
        }
        out
    }

    /// The report as one self-contained HTML page: no external resource, every value
    /// escaped, a Content-Security-Policy that allows only the page's own style and its
    /// sorting script.
    pub fn to_html(&self) -> String {
        let c = self.counts();
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>ferry change report {}</h1>\n<p class=\"meta\">{} &middot; {} &middot; by {}{}</p>\n<p class=\"headline\">{}</p>\n",
            self.id,
            self.kind,
            esc(&self.created),
            esc(&self.by),
            self.day.as_deref().map(|d| format!(" &middot; rules judged as of {}", esc(d))).unwrap_or_default(),
            esc(&self.headline())
        );
        body.push_str("<section class=\"counts\">\n");
        for (title, map) in
            [("By change", &c.by_change), ("By product", &c.by_product), ("By severity", &c.by_severity)]
        {
            let _ = write!(body, "<table><caption>{title}</caption>");
            for (k, n) in map {
                let _ = write!(body, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", esc(k));
            }
            body.push_str("</table>\n");
        }
        body.push_str("</section>\n");
        if !self.updates.is_empty() {
            body.push_str(
                "<h2>Updates</h2>\n<table class=\"sortable\" id=\"updates\"><thead><tr>\
                 <th>ID</th><th>Title</th><th>Product</th><th>Classification</th><th>Severity</th><th>KB</th>\
                 <th>Status</th><th>Files</th><th>What happened</th></tr></thead>\n<tbody>\n",
            );
            for e in &self.updates {
                let changes: Vec<String> = e
                    .changes
                    .iter()
                    .map(|ch| {
                        if ch.detail.is_empty() {
                            format!("<b>{}</b>", ch.kind.label())
                        } else {
                            format!("<b>{}</b> {}", ch.kind.label(), esc(&ch.detail))
                        }
                    })
                    .collect();
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"sev-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&e.id),
                    esc(e.title()),
                    esc(e.product()),
                    esc(e.classification()),
                    esc(e.severity()),
                    esc(e.severity()),
                    esc(e.kb().unwrap_or("")),
                    esc(e.status_text()),
                    e.availability(),
                    changes.join("<br>")
                );
            }
            body.push_str("</tbody></table>\n");
        }
        let (more_updates, more_files) = self.not_named();
        if more_updates > 0 {
            let _ = writeln!(
                body,
                "<p class=\"more\">&hellip; and {more_updates} more update{} (<code>ingest list</code> shows them)</p>",
                plural(more_updates)
            );
        }
        if !self.sources.is_empty() {
            body.push_str(
                "<h2>Sources</h2>\n<table class=\"sortable\"><thead><tr><th>Outcome</th><th>Path</th><th>Detail</th></tr></thead><tbody>\n",
            );
            for s in &self.sources {
                let _ = writeln!(
                    body,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&s.outcome),
                    esc(&s.outcome),
                    esc(&s.path),
                    esc(&s.detail)
                );
            }
            body.push_str("</tbody></table>\n");
        }
        if !self.files_arrived.is_empty() {
            body.push_str(
                "<h2>Files arrived</h2>\n<table class=\"sortable\"><thead><tr><th>Name</th><th>Update</th><th>Size</th><th>SHA-256</th></tr></thead><tbody>\n",
            );
            for f in &self.files_arrived {
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td data-sort=\"{}\">{}</td><td class=\"digest\">{}{}</td></tr>",
                    esc(&f.names.join(", ")),
                    esc(&f.updates.join(", ")),
                    f.size,
                    esc(&human_bytes(f.size)),
                    esc(&f.sha256),
                    f.sha1_only.as_ref().map_or(String::new(), |s| format!(
                        "<br><small>computed by fetch: the vendor names it by SHA-1 {} only</small>",
                        esc(s)
                    ))
                );
            }
            body.push_str("</tbody></table>\n");
        }
        if more_files > 0 {
            let _ = writeln!(body, "<p class=\"more\">&hellip; and {more_files} more file{}</p>", plural(more_files));
        }
        if !self.waiting.is_empty() {
            body.push_str("<h2>Waiting for volumes</h2>\n<ul>\n");
            for w in &self.waiting {
                let missing: Vec<String> = w.missing_volumes.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    body,
                    "<li>channel {} sequence {}: volumes {} still missing</li>",
                    esc(&w.channel),
                    w.sequence,
                    missing.join(", ")
                );
            }
            body.push_str("</ul>\n");
        }
        html_page(&format!("ferry change report {}", self.id), "", &body)
    }
}

/// One self-contained HTML page around `body`: no external resource, and a
/// Content-Security-Policy that allows only inline style and the page's own sorting script.
/// `title` is escaped; `extra_style` is the page's own CSS.
pub(crate) fn html_page(title: &str, extra_style: &str, body: &str) -> String {
    let script_hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SORT_SCRIPT.as_bytes()))
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}{extra_style}</style>\n</head>\n<body>\n{body}<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}

/// Escapes text for HTML element content and quoted attribute values, after removing
/// control characters and terminal escape sequences.
pub fn esc(text: &str) -> String {
    let clean = for_terminal(text);
    let mut out = String::with_capacity(clean.len());
    for ch in clean.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}.headline{font-size:1.1em;font-weight:600}.meta{color:#666}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}table.sortable th{cursor:pointer}table.sortable th:hover{background:#e0e0e0}\
.counts{display:flex;gap:2em;flex-wrap:wrap}.counts caption{font-weight:600;text-align:left}td.n{text-align:right}\
.sev-critical{color:#a00;font-weight:600}.sev-important{color:#c50}.refused td{background:#fee}\
.digest{font-family:monospace;font-size:.85em}";

/// Sorts a table by the column whose header is clicked (again: the other way).
const SORT_SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th){\
th.addEventListener('click',function(){var table=th.closest('table');var body=table.tBodies[0];\
var i=Array.prototype.indexOf.call(th.parentNode.children,th);var up=th.dataset.dir!=='up';\
th.parentNode.querySelectorAll('th').forEach(function(h){delete h.dataset.dir;});th.dataset.dir=up?'up':'down';\
var key=function(r){var c=r.children[i];return c.dataset.sort!==undefined?Number(c.dataset.sort):c.textContent.toLowerCase();};\
Array.from(body.rows).sort(function(a,b){var x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*(up?1:-1);})\
.forEach(function(r){body.appendChild(r);});});});";

/// Reads a stored report back.
pub fn from_stored(id: u64, body: &str) -> Result<ChangeReport> {
    serde_json::from_str(body)
        .map_err(|e| Error::Damaged { what: format!("stored change report {id}"), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::model::{Classification, Severity};

    fn hostile() -> ChangeReport {
        ChangeReport {
            id: 3,
            kind: ReportKind::Import,
            created: "2026-11-22T10:00:00Z".into(),
            by: "tester".into(),
            day: Some("2026-11-22".into()),
            sources: vec![Source {
                path: "b.zip".into(),
                outcome: "accepted".into(),
                detail: "<img src=x onerror=alert(1)>".into(),
            }],
            updates: vec![Entry {
                changes: vec![Change { kind: ChangeKind::New, detail: String::new() }],
                ..Entry::listed(
                    UpdateRow {
                        id: "KB1".parse().unwrap(),
                        revision: 1,
                        title: "<script>alert('x')</script>\u{1b}]0;pwned\u{7} & \"more\"".into(),
                        vendor: "Microsoft".into(),
                        product: "Windows".into(),
                        version: "11".into(),
                        classification: Classification::SecurityUpdate,
                        severity: Severity::Critical,
                        kb: None,
                        release_date: Some("2026-11-10".parse().unwrap()),
                    },
                    Status::Approved,
                    true,
                )
            }],
            files_arrived: vec![],
            waiting: vec![],
            totals: None,
        }
    }

    #[test]
    fn html_escapes_every_value_and_keeps_only_its_own_script() {
        let html = hostile().to_html();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), "{html}");
        assert!(!html.contains('\u{1b}') && !html.contains("pwned"), "{html}");
        assert_eq!(html.matches("<script>").count(), 1, "only the sorting script");
        assert!(!html.contains("http://") && !html.contains("https://"), "nothing external");
    }

    #[test]
    fn text_strips_control_sequences() {
        let text = hostile().to_text();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(text.contains("1 new"), "{text}");
    }

    #[test]
    fn counts_take_each_update_once_per_kind() {
        let mut r = hostile();
        r.updates[0].changes.push(Change { kind: ChangeKind::New, detail: "again".into() });
        let c = r.counts();
        assert_eq!(c.by_change.get("new"), Some(&1));
        assert_eq!(c.by_product.get("Windows"), Some(&1));
        assert_eq!(c.by_severity.get("critical"), Some(&1));
    }
}
