//! Which computers need what: the rules that judge one computer against its group's policy.
//!
//! A policy names the updates meant for a group's computers (every approved update, or the
//! approved members of one update group), and a grace period: a missing update is not yet
//! a violation until that many days after its approval or its release, as JP1 judges
//! cumulative updates. For each update in the policy and each computer, [`judge`] says
//! whether it applies, and if so one [`Verdict`] with its reason; [`Level`] sums a
//! computer up. `docs/computers.md` states every rule in words; this is the only place they
//! are written as code.
//!
//! Pure: the registry loads the facts, this module decides, the registry stores.

use std::cmp::Ordering;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::base::clock::{Date, Timestamp};
use crate::formats::inventory::{Hotfix, Os, Package, Program};
use crate::formats::model::{Applicability, Severity, kebab_names};
use crate::formats::winget::compare_versions;

/// From when a grace period counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraceFrom {
    Approval,
    Release,
}

kebab_names!(GraceFrom {
    Approval => "approval",
    Release => "release",
});

/// What one computer is judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The update group whose approved members the policy covers; none for every approved
    /// update.
    pub update_group: Option<String>,
    pub grace_days: u32,
    pub grace_from: GraceFrom,
}

impl Policy {
    /// The policy of a computer in no group: every approved update, no grace.
    pub fn default_policy() -> Policy {
        Policy { update_group: None, grace_days: 0, grace_from: GraceFrom::Approval }
    }

    pub fn describe(&self) -> String {
        let scope = match &self.update_group {
            None => "all approved updates".to_string(),
            Some(g) => format!("the approved updates of update group {g}"),
        };
        if self.grace_days == 0 {
            format!("{scope}, no grace period")
        } else {
            format!("{scope}, {} days of grace after {}", self.grace_days, self.grace_from.as_str())
        }
    }
}

/// What the judgment says of one update on one computer it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Installed: the computer lists it.
    Installed,
    /// An update that replaces it is installed, which satisfies it.
    Superseded,
    /// The offline scan, against a catalog that knows the update, did not find it missing.
    ScanClear,
    /// Missing, within the policy's grace period.
    WithinGrace,
    /// Missing, past the grace period.
    Missing,
    /// Its last installation on the computer failed, and it is not installed since.
    Failed,
    /// It may apply, but the computer reported nothing to judge it by (no list of installed
    /// updates, programs or packages of the kind it needs).
    Unknown,
}

kebab_names!(Verdict {
    Installed => "installed",
    Superseded => "superseded",
    ScanClear => "scan-clear",
    WithinGrace => "within-grace",
    Missing => "missing",
    Failed => "failed",
    Unknown => "unknown",
});

impl Verdict {
    /// Whether the update is in place on the computer (installed, or made unnecessary).
    pub fn satisfied(self) -> bool {
        matches!(self, Verdict::Installed | Verdict::Superseded | Verdict::ScanClear)
    }
}

/// How far a computer is from its policy, worst last. `docs/computers.md` defines each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Every update of the policy that applies is in place.
    Compliant,
    /// Something is missing, but only within its grace period (or cannot be judged).
    Grace,
    /// An update of moderate, low or unrated severity is missing past its grace period.
    Missing,
    /// An important update is missing past its grace period.
    MissingImportant,
    /// A critical update is missing past its grace period, or an installation failed.
    Critical,
}

kebab_names!(Level {
    Compliant => "compliant",
    Grace => "grace",
    Missing => "missing",
    MissingImportant => "missing-important",
    Critical => "critical",
});

impl Level {
    /// The level one verdict of an update of `severity` raises a computer to.
    pub fn of(verdict: Verdict, severity: Severity) -> Level {
        match verdict {
            Verdict::Installed | Verdict::Superseded | Verdict::ScanClear => Level::Compliant,
            Verdict::WithinGrace | Verdict::Unknown => Level::Grace,
            Verdict::Failed => Level::Critical,
            Verdict::Missing => match severity {
                Severity::Critical => Level::Critical,
                Severity::Important => Level::MissingImportant,
                _ => Level::Missing,
            },
        }
    }
}

/// One update as the judgment needs it.
#[derive(Debug, Clone)]
pub struct PolicyUpdate {
    pub id: String,
    pub kb: Option<String>,
    pub product: String,
    pub version: String,
    pub severity: Severity,
    pub release_date: Option<Date>,
    /// When it was approved (the approval status's time).
    pub approved_at: Option<Timestamp>,
    /// The update groups it belongs to (names in lower case).
    pub groups: Vec<String>,
    pub applicability: Applicability,
    /// Whether it came from Microsoft's scan catalog (its id is Microsoft's UpdateID), so
    /// that an offline scan can speak for it.
    pub microsoft_guid: bool,
}

/// Every update the judgment looks at: those in some policy, and (for supersedence) which
/// updates replace which.
#[derive(Debug, Default)]
pub struct UpdateIndex {
    pub updates: Vec<PolicyUpdate>,
    /// Update id → the ids of the updates that supersede it.
    pub superseded_by: FxHashMap<String, Vec<String>>,
    /// KB → the ids of every update in the list with that KB (approved or not), to learn
    /// what a computer has installed.
    pub by_kb: FxHashMap<String, Vec<String>>,
    /// Which updates can apply to which computer, made on first use.
    candidates: std::sync::OnceLock<Candidates>,
}

/// The updates that apply by OS build alone, by build, and the rest: a computer is judged
/// against the updates of its build and the rest, not against every update (10,000
/// computers × 20,000 updates is 200 million pairs).
#[derive(Debug, Default)]
struct Candidates {
    /// Build number (`19045`) or whole build (`10.0.19045.3930`) → update positions.
    by_build: FxHashMap<String, Vec<usize>>,
    /// Updates that apply by anything else.
    other: Vec<usize>,
    /// Whether any of `other` looks at programs, or at winget packages.
    needs_programs: bool,
    needs_packages: bool,
}

impl Candidates {
    fn of(updates: &[PolicyUpdate]) -> Candidates {
        let mut c = Candidates::default();
        for (i, u) in updates.iter().enumerate() {
            let a = &u.applicability;
            let build_only = !a.os_builds.is_empty()
                && a.packages.is_empty()
                && a.msi_product_codes.is_empty()
                && a.installed_entries.is_empty();
            if build_only {
                let mut keys: Vec<&str> = Vec::new();
                for b in &a.os_builds {
                    keys.push(b.rsplit('.').next().unwrap_or(b));
                    keys.push(b);
                }
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    c.by_build.entry(k.to_string()).or_default().push(i);
                }
                continue;
            }
            c.needs_packages |= !a.packages.is_empty();
            c.needs_programs |= !a.msi_product_codes.is_empty()
                || !a.installed_entries.is_empty()
                || (a.os_builds.is_empty() && !a.products.is_empty())
                || u.kb.is_none();
            c.other.push(i);
        }
        c
    }
}

impl UpdateIndex {
    fn candidates(&self) -> &Candidates {
        self.candidates.get_or_init(|| Candidates::of(&self.updates))
    }

    /// The positions of the updates that may apply to a computer of `os`, in order.
    fn candidates_for(&self, os: Option<&Os>) -> Vec<usize> {
        let c = self.candidates();
        let mut out = c.other.clone();
        if let Some(os) = os {
            for key in [os.build_number(), Some(os.build.as_str())].into_iter().flatten() {
                if let Some(found) = c.by_build.get(key) {
                    out.extend_from_slice(found);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether judging needs a computer's programs (some update applies by them).
    pub fn needs_programs(&self) -> bool {
        self.candidates().needs_programs
    }

    /// Whether judging needs a computer's winget packages.
    pub fn needs_packages(&self) -> bool {
        self.candidates().needs_packages
    }
}

/// What one computer reported, as the judgment needs it. A facet it never reported is None.
#[derive(Debug, Clone, Default)]
pub struct ComputerFacts {
    pub os: Option<Os>,
    pub hotfixes: Option<Vec<Hotfix>>,
    pub programs: Option<Vec<Program>>,
    pub packages: Option<Vec<Package>>,
    pub scan: Option<ScanFacts>,
    /// Updates whose last installation here failed, with when.
    pub failed: FxHashMap<String, Timestamp>,
    /// Updates installed successfully here by the client, with when.
    pub installed_by_client: FxHashMap<String, Timestamp>,
}

/// The offline scan's result, as judged.
#[derive(Debug, Clone)]
pub struct ScanFacts {
    pub scanned: Timestamp,
    pub missing_ids: FxHashSet<String>,
    pub missing_kbs: FxHashSet<String>,
}

/// One verdict with its reason, for the update at `update` in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgment {
    pub update: usize,
    pub verdict: Verdict,
    pub reason: String,
}

/// Whether `policy` covers `u`.
pub fn in_policy(policy: &Policy, u: &PolicyUpdate) -> bool {
    match &policy.update_group {
        None => true,
        Some(g) => u.groups.iter().any(|m| m.eq_ignore_ascii_case(g)),
    }
}

fn lower_without_vendor(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase();
    lower.strip_prefix("microsoft ").map(str::to_string).unwrap_or(lower)
}

/// Whether a product name of an update names the computer's system or one of its programs:
/// the system's or program's name begins with it as whole words ("Windows 10" names
/// "Windows 10 Enterprise", not "Windows 100"; a program called "Windows" names no
/// product), without letter case and without a leading "Microsoft ".
fn names_product(product: &str, facts: &ComputerFacts) -> bool {
    let p = lower_without_vendor(product);
    if p.is_empty() {
        return false;
    }
    let matches = |name: &str| {
        let n = lower_without_vendor(name);
        n.strip_prefix(p.as_str()).is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
    };
    facts.os.as_ref().is_some_and(|os| matches(&os.product))
        || facts.programs.as_ref().is_some_and(|ps| ps.iter().any(|prog| matches(&prog.name)))
}

/// How an update relates to a computer before its installed state is looked at.
enum Applies {
    No,
    /// Through winget: the package the computer has, at the version it has.
    Package(String, String),
    /// Through an installed program: its name and version.
    Program(String, Option<String>),
    /// Through the operating system or a product (KB updates).
    System(String),
}

fn applies(u: &PolicyUpdate, facts: &ComputerFacts) -> Applies {
    let a = &u.applicability;
    if !a.packages.is_empty()
        && let Some(packages) = &facts.packages
        && let Some(p) = packages.iter().find(|p| a.packages.iter().any(|id| id.eq_ignore_ascii_case(&p.id)))
    {
        return Applies::Package(p.id.clone(), p.version.clone());
    }
    if let Some(programs) = &facts.programs {
        let by_code = programs.iter().find(|p| {
            p.product_code.as_deref().is_some_and(|code| {
                a.msi_product_codes
                    .iter()
                    .any(|c| c.trim_matches(['{', '}']).eq_ignore_ascii_case(code.trim_matches(['{', '}'])))
                    || a.installed_entries.iter().any(|e| {
                        e.product_code.as_deref().is_some_and(|c| {
                            c.trim_matches(['{', '}']).eq_ignore_ascii_case(code.trim_matches(['{', '}']))
                        })
                    })
            })
        });
        if let Some(p) = by_code {
            return Applies::Program(p.name.clone(), Some(u.version.clone()));
        }
        // An application (no KB) applies where a program of its product is installed.
        if u.kb.is_none()
            && (!a.packages.is_empty() || !a.installed_entries.is_empty() || !a.msi_product_codes.is_empty())
        {
            let product = u.product.trim().to_ascii_lowercase();
            if let Some(p) =
                programs.iter().find(|p| !product.is_empty() && p.name.to_ascii_lowercase().starts_with(&product))
            {
                return Applies::Program(p.name.clone(), p.version.clone());
            }
        }
    }
    if u.kb.is_some() || !a.os_builds.is_empty() || !a.products.is_empty() {
        if !a.os_builds.is_empty() {
            let Some(os) = &facts.os else { return Applies::No };
            let Some(build) = os.build_number() else { return Applies::No };
            if !a.os_builds.iter().any(|b| b.rsplit('.').next().unwrap_or(b) == build || b == &os.build) {
                return Applies::No;
            }
            if let Some(min) = &a.minimum_os_version
                && compare_versions(&os.build, min) == Ordering::Less
            {
                return Applies::No;
            }
            return Applies::System(format!("build {}", os.build));
        }
        if let Some(p) = a.products.iter().find(|p| names_product(p, facts)) {
            return Applies::System(format!("product {p}"));
        }
    }
    Applies::No
}

/// The ids of the updates the computer has installed, by its lists (KBs of installed
/// updates, the client's own successful installations).
pub fn installed_ids(index: &UpdateIndex, facts: &ComputerFacts) -> FxHashSet<String> {
    let mut ids: FxHashSet<String> = facts.installed_by_client.keys().cloned().collect();
    if let Some(hotfixes) = &facts.hotfixes {
        for h in hotfixes {
            if let Some(found) = index.by_kb.get(&h.kb) {
                ids.extend(found.iter().cloned());
            }
        }
    }
    ids
}

/// Judges every update of `policy` that applies to the computer, as of `now`.
pub fn judge(index: &UpdateIndex, facts: &ComputerFacts, policy: &Policy, now: Timestamp) -> Vec<Judgment> {
    let installed = installed_ids(index, facts);
    let today = now.date();
    let mut out = Vec::new();
    for i in index.candidates_for(facts.os.as_ref()) {
        let u = &index.updates[i];
        if !in_policy(policy, u) {
            continue;
        }
        let how = applies(u, facts);
        let (verdict, reason) = match how {
            Applies::No => continue,
            Applies::Package(id, version) => {
                if compare_versions(&version, &u.version) != Ordering::Less {
                    (Verdict::Installed, format!("winget lists {id} {version}"))
                } else {
                    (Verdict::Missing, format!("winget lists {id} {version}, older than {}", u.version))
                }
            }
            Applies::Program(name, version) => match version {
                Some(v) if compare_versions(&v, &u.version) != Ordering::Less => {
                    (Verdict::Installed, format!("program {name:?} {v} is installed"))
                }
                Some(v) => (Verdict::Missing, format!("program {name:?} is at {v}, older than {}", u.version)),
                None => (Verdict::Unknown, format!("program {name:?} is installed without a version")),
            },
            Applies::System(why) => system_verdict(u, facts, &installed, why),
        };
        let (verdict, reason) = if verdict == Verdict::Missing || verdict == Verdict::Unknown {
            refine_missing(index, u, facts, &installed, policy, today, verdict, reason)
        } else {
            (verdict, reason)
        };
        out.push(Judgment { update: i, verdict, reason });
    }
    out
}

/// The verdict on an update that applies through the system or a product.
fn system_verdict(
    u: &PolicyUpdate,
    facts: &ComputerFacts,
    installed: &FxHashSet<String>,
    why: String,
) -> (Verdict, String) {
    if installed.contains(&u.id) {
        let by = match (&u.kb, &facts.hotfixes) {
            (Some(kb), Some(h)) if h.iter().any(|x| &x.kb == kb) => format!("{kb} is in its list of installed updates"),
            _ => "the client installed it".to_string(),
        };
        return (Verdict::Installed, by);
    }
    // The offline scan speaks for the updates of Microsoft's catalog released by the day of
    // the scan (the catalog it scanned against could not know a later one).
    if let Some(scan) = &facts.scan {
        let missing = scan.missing_ids.contains(&u.id.to_ascii_lowercase())
            || u.kb.as_ref().is_some_and(|kb| scan.missing_kbs.contains(kb));
        if missing {
            return (Verdict::Missing, format!("the offline scan of {} found it missing", scan.scanned));
        }
        let known = u.release_date.is_none_or(|d| d <= scan.scanned.date());
        if u.microsoft_guid && known {
            return (Verdict::ScanClear, format!("the offline scan of {} did not find it missing", scan.scanned));
        }
    }
    match (&u.kb, &facts.hotfixes) {
        (Some(kb), Some(_)) => {
            (Verdict::Missing, format!("applies by {why}; {kb} is not in its list of installed updates"))
        }
        (Some(_), None) => {
            (Verdict::Unknown, format!("applies by {why}; the computer reported no list of installed updates"))
        }
        (None, _) => (Verdict::Unknown, format!("applies by {why}; nothing it reported tells whether it is installed")),
    }
}

/// A missing update may still be satisfied by one that supersedes it, have failed at its
/// last installation, or be within its grace period.
#[allow(clippy::too_many_arguments)]
fn refine_missing(
    index: &UpdateIndex,
    u: &PolicyUpdate,
    facts: &ComputerFacts,
    installed: &FxHashSet<String>,
    policy: &Policy,
    today: Date,
    verdict: Verdict,
    reason: String,
) -> (Verdict, String) {
    if let Some(by) = index.superseded_by.get(&u.id).and_then(|s| s.iter().find(|id| installed.contains(*id))) {
        return (Verdict::Superseded, format!("{by}, which supersedes it, is installed"));
    }
    if let Some(at) = facts.failed.get(&u.id) {
        return (Verdict::Failed, format!("its installation failed at {at}"));
    }
    if verdict == Verdict::Unknown {
        return (verdict, reason);
    }
    let start = match policy.grace_from {
        GraceFrom::Approval => u.approved_at.map(|t| t.date()),
        GraceFrom::Release => u.release_date,
    };
    if policy.grace_days > 0
        && let Some(start) = start
        && today.days_since(start) < i64::from(policy.grace_days)
    {
        let until = start.plus_days(policy.grace_days);
        return (Verdict::WithinGrace, format!("{reason}; within grace until {until}"));
    }
    (verdict, reason)
}

/// The level of a computer from its verdicts (each with its update's severity).
pub fn level(verdicts: impl IntoIterator<Item = (Verdict, Severity)>) -> Level {
    verdicts.into_iter().map(|(v, s)| Level::of(v, s)).max().unwrap_or(Level::Compliant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::model::Applicability;

    fn update(id: &str, kb: Option<&str>, severity: Severity, a: Applicability) -> PolicyUpdate {
        PolicyUpdate {
            id: id.into(),
            kb: kb.map(str::to_string),
            product: "Windows 10".into(),
            version: kb.unwrap_or("1.0").into(),
            severity,
            release_date: Some("2024-01-09".parse().unwrap()),
            approved_at: Some("2024-01-10T00:00:00Z".parse().unwrap()),
            groups: vec![],
            applicability: a,
            microsoft_guid: false,
        }
    }

    fn os_build(build: &str) -> Applicability {
        Applicability { os_builds: vec![build.into()], ..Applicability::default() }
    }

    fn index(updates: Vec<PolicyUpdate>) -> UpdateIndex {
        let mut index = UpdateIndex::default();
        for u in &updates {
            if let Some(kb) = &u.kb {
                index.by_kb.entry(kb.clone()).or_default().push(u.id.clone());
            }
        }
        index.updates = updates;
        index
    }

    fn facts(kbs: &[&str]) -> ComputerFacts {
        ComputerFacts {
            os: Some(Os {
                product: "Windows 10 Enterprise".into(),
                build: "10.0.19045.3930".into(),
                architecture: None,
            }),
            hotfixes: Some(
                kbs.iter().map(|k| Hotfix { kb: k.to_string(), description: None, installed_on: None }).collect(),
            ),
            ..ComputerFacts::default()
        }
    }

    fn now() -> Timestamp {
        "2024-02-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn builds_are_matched_by_number_or_whole_and_other_updates_are_always_looked_at() {
        let package = Applicability { packages: vec!["7zip.7zip".into()], ..Applicability::default() };
        let idx = index(vec![
            update("KB1", Some("KB1"), Severity::Low, os_build("10.0.19045.3930")),
            update("KB2", Some("KB2"), Severity::Low, os_build("10.0.19045.3931")),
            update("KB3", Some("KB3"), Severity::Low, os_build("19045")),
            update("KB4", Some("KB4"), Severity::Low, os_build("10.0.22631")),
            update("7zip.7zip@24.09", None, Severity::Low, package),
        ]);
        let mut f = facts(&[]);
        f.packages = Some(vec![Package { id: "7zip.7zip".into(), version: "24.08".into(), source: None }]);
        let judged: Vec<&str> = judge(&idx, &f, &Policy::default_policy(), now())
            .iter()
            .map(|j| idx.updates[j.update].id.as_str())
            .collect();
        assert_eq!(judged, ["KB1", "KB3", "7zip.7zip@24.09"], "in the index's order");
        assert!(idx.needs_packages() && idx.needs_programs(), "an application falls back to program names");
        let builds_only = index(vec![update("KB1", Some("KB1"), Severity::Low, os_build("19045"))]);
        assert!(!builds_only.needs_packages() && !builds_only.needs_programs());
    }

    #[test]
    fn a_product_is_named_by_whole_words_only() {
        let product = Applicability { products: vec!["Windows 10".into()], ..Applicability::default() };
        let idx = index(vec![update("KB1", Some("KB1"), Severity::Low, product)]);
        let with = |os: &str, program: &str| {
            let mut f = facts(&[]);
            f.os.as_mut().unwrap().product = os.into();
            f.programs =
                Some(vec![Program { name: program.into(), version: None, publisher: None, product_code: None }]);
            judge(&idx, &f, &Policy::default_policy(), now()).len()
        };
        assert_eq!(with("Microsoft Windows 10 Enterprise", "7-Zip"), 1);
        assert_eq!(with("Windows 100", "7-Zip"), 0);
        assert_eq!(with("Windows Server 2022", "Windows"), 0, "a program called Windows names no product");
    }

    #[test]
    fn installed_missing_and_not_applying() {
        let idx = index(vec![
            update("KB1", Some("KB1"), Severity::Critical, os_build("19045")),
            update("KB2", Some("KB2"), Severity::Critical, os_build("19045")),
            update("KB3", Some("KB3"), Severity::Critical, os_build("22631")),
        ]);
        let j = judge(&idx, &facts(&["KB1"]), &Policy::default_policy(), now());
        let v: Vec<_> = j.iter().map(|j| (idx.updates[j.update].id.as_str(), j.verdict)).collect();
        assert_eq!(v, [("KB1", Verdict::Installed), ("KB2", Verdict::Missing)]);
        assert_eq!(level(j.iter().map(|j| (j.verdict, idx.updates[j.update].severity))), Level::Critical);
    }

    #[test]
    fn an_installed_successor_satisfies() {
        let mut idx = index(vec![
            update("KB1", Some("KB1"), Severity::Important, os_build("19045")),
            update("KB2", Some("KB2"), Severity::Important, os_build("19045")),
        ]);
        idx.superseded_by.insert("KB1".into(), vec!["KB2".into()]);
        let j = judge(&idx, &facts(&["KB2"]), &Policy::default_policy(), now());
        assert_eq!(j[0].verdict, Verdict::Superseded, "{:?}", j[0]);
        assert!(j[0].reason.contains("KB2"));
    }

    #[test]
    fn grace_counts_from_approval_or_release() {
        let idx = index(vec![update("KB2", Some("KB2"), Severity::Critical, os_build("19045"))]);
        let policy = Policy { update_group: None, grace_days: 30, grace_from: GraceFrom::Approval };
        let j = judge(&idx, &facts(&[]), &policy, now());
        assert_eq!(j[0].verdict, Verdict::WithinGrace);
        assert!(j[0].reason.contains("until 2024-02-09"), "{}", j[0].reason);
        let later: Timestamp = "2024-02-09T00:00:00Z".parse().unwrap();
        assert_eq!(judge(&idx, &facts(&[]), &policy, later)[0].verdict, Verdict::Missing);
        let release = Policy { grace_from: GraceFrom::Release, ..policy };
        let on_the_8th: Timestamp = "2024-02-08T00:00:00Z".parse().unwrap();
        assert_eq!(judge(&idx, &facts(&[]), &release, on_the_8th)[0].verdict, Verdict::Missing);
    }

    #[test]
    fn the_offline_scan_speaks_for_microsoft_updates() {
        let guid = "aaaaaaaa-0000-4000-8000-000000000001";
        let mut u = update(
            guid,
            Some("KB9"),
            Severity::Important,
            Applicability { products: vec!["Windows 10".into()], ..Applicability::default() },
        );
        u.microsoft_guid = true;
        let idx = index(vec![u]);
        let mut f = facts(&[]);
        f.hotfixes = None;
        assert_eq!(judge(&idx, &f, &Policy::default_policy(), now())[0].verdict, Verdict::Unknown);
        f.scan =
            Some(ScanFacts { scanned: now(), missing_ids: FxHashSet::default(), missing_kbs: FxHashSet::default() });
        assert_eq!(judge(&idx, &f, &Policy::default_policy(), now())[0].verdict, Verdict::ScanClear);
        f.scan.as_mut().unwrap().missing_ids.insert(guid.into());
        assert_eq!(judge(&idx, &f, &Policy::default_policy(), now())[0].verdict, Verdict::Missing);
    }

    #[test]
    fn packages_compare_by_version_order() {
        let a = Applicability { packages: vec!["7zip.7zip".into()], ..Applicability::default() };
        let mut u = update("7zip.7zip@24.10", None, Severity::Moderate, a);
        u.version = "24.10".into();
        u.product = "7-Zip".into();
        let idx = index(vec![u]);
        let mut f = facts(&[]);
        f.packages = Some(vec![Package { id: "7ZIP.7zip".into(), version: "24.9".into(), source: None }]);
        let j = judge(&idx, &f, &Policy::default_policy(), now());
        assert_eq!(j[0].verdict, Verdict::Missing, "{}", j[0].reason);
        f.packages.as_mut().unwrap()[0].version = "24.10".into();
        assert_eq!(judge(&idx, &f, &Policy::default_policy(), now())[0].verdict, Verdict::Installed);
        f.packages = Some(vec![]);
        assert!(judge(&idx, &f, &Policy::default_policy(), now()).is_empty(), "no such package: does not apply");
    }

    #[test]
    fn a_failed_installation_is_critical() {
        let idx = index(vec![update("KB2", Some("KB2"), Severity::Low, os_build("19045"))]);
        let mut f = facts(&[]);
        f.failed.insert("KB2".into(), now());
        let j = judge(&idx, &f, &Policy::default_policy(), now());
        assert_eq!(j[0].verdict, Verdict::Failed);
        assert_eq!(level([(j[0].verdict, Severity::Low)]), Level::Critical);
    }

    #[test]
    fn a_group_policy_covers_its_members_only() {
        let mut u = update("KB2", Some("KB2"), Severity::Low, os_build("19045"));
        u.groups = vec!["servers".into()];
        let idx = index(vec![u, update("KB3", Some("KB3"), Severity::Low, os_build("19045"))]);
        let policy = Policy { update_group: Some("Servers".into()), grace_days: 0, grace_from: GraceFrom::Approval };
        let j = judge(&idx, &facts(&[]), &policy, now());
        assert_eq!(j.len(), 1);
        assert_eq!(idx.updates[j[0].update].id, "KB2");
    }
}
