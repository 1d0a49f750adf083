//! Approval rules: standing decisions an administrator writes once ("approve security and
//! critical updates for Windows 11 seven days after they arrive", "decline superseded
//! updates", "put every new Office update in the pilot group") and every refresh applies.
//!
//! The rules here are pure: they look at the [`Facts`] of one update and a date. The
//! registry gathers the facts, applies the decisions in one transaction and audits them.
//!
//! How rules combine, so that their order never matters:
//! - A status a person set by hand (or that came from a person on another server) is never
//!   changed by a rule. `ingest reset` hands an update back to the rules.
//! - A matching decline rule wins over any approve rule ("decline superseded" beats
//!   "approve security updates"). Among rules of one kind, the first by name is named.
//! - A group rule adds each matching update once; a person who takes it out again is not
//!   overruled on the next refresh.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::base::clock::Date;
use crate::base::error::{Error, Result};
use crate::base::names::{GroupName, RuleName};
use crate::formats::approval::Status;
use crate::formats::model::{Classification, Severity};

/// What a rule does to the updates it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    Approve,
    Decline,
    AddToGroup { group: GroupName },
}

/// When a rule matches. Every condition given must hold; a list matches any of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Product names, compared without letter case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classifications: Vec<Classification>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<Severity>,
    /// A member of this group ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupName>,
    /// ... for at least this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_in_group: Option<u32>,
    /// At least this many days since the update arrived on this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_since_arrival: Option<u32>,
    /// At least this many days since the vendor released it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_since_release: Option<u32>,
    /// Superseded (true) or not (false) by an update that is present on this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<bool>,
    /// With (true) or without (false) a file its vendor names by SHA-1 only (Microsoft's
    /// scan catalog: fetch checked the SHA-1 and computed the SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1_only: Option<bool>,
}

/// A rule as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: RuleName,
    #[serde(flatten)]
    pub action: Action,
    pub when: Conditions,
}

/// Who set an update's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    /// Arrival, a reset, or a new revision that changed the files.
    System,
    /// A person, here or on another server (by CSV): rules leave it alone.
    Person,
    Rule,
}

impl SetBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SetBy::System => "system",
            SetBy::Person => "person",
            SetBy::Rule => "rule",
        }
    }

    /// Parses the registry's column; "csv" is a person's decision taken on another server.
    pub fn from_column(s: &str) -> SetBy {
        match s {
            "person" | "csv" => SetBy::Person,
            "rule" => SetBy::Rule,
            _ => SetBy::System,
        }
    }
}

/// What the rules look at in one update.
#[derive(Debug, Clone)]
pub struct Facts {
    pub product: String,
    pub classification: String,
    pub severity: String,
    /// None when the source gave no release date: a rule counting days since release
    /// then never matches it.
    pub release_date: Option<Date>,
    /// The day it arrived on this server.
    pub arrived: Date,
    pub superseded: bool,
    /// It has a file its vendor names by SHA-1 only.
    pub sha1_only: bool,
    /// Withdrawn by its vendor: approve rules pass it by (a decline rule may still match).
    pub withdrawn: bool,
    pub status: Status,
    pub set_by: SetBy,
    /// Groups it belongs to, with the day it joined each.
    pub groups: Vec<(String, Date)>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    pub fn matches(&self, f: &Facts, today: Date) -> bool {
        let days =
            |since: Date, at_least: Option<u32>| at_least.is_none_or(|n| today.days_since(since) >= i64::from(n));
        let in_list =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v.eq_ignore_ascii_case(value));
        in_list(&self.products, &f.product)
            && (self.classifications.is_empty() || self.classifications.iter().any(|c| c.as_str() == f.classification))
            && (self.severities.is_empty() || self.severities.iter().any(|s| s.as_str() == f.severity))
            && days(f.arrived, self.days_since_arrival)
            && match f.release_date {
                Some(released) => days(released, self.days_since_release),
                None => self.days_since_release.is_none(),
            }
            && self.superseded.is_none_or(|s| s == f.superseded)
            && self.sha1_only.is_none_or(|s| s == f.sha1_only)
            && self.group.as_ref().is_none_or(|g| {
                f.groups
                    .iter()
                    .any(|(name, joined)| name.eq_ignore_ascii_case(g.as_str()) && days(*joined, self.days_in_group))
            })
    }
}

impl Rule {
    /// Checks what the grammar of names cannot: a rule must say when it applies.
    pub fn new(name: RuleName, action: Action, when: Conditions) -> Result<Rule> {
        if when.is_empty() {
            return Err(Error::Invalid(format!(
                "rule {name}: it has no condition and would apply to every update; give at least one"
            )));
        }
        if when.days_in_group.is_some() && when.group.is_none() {
            return Err(Error::Invalid(format!("rule {name}: days in a group need the group (--group)")));
        }
        if let (Action::AddToGroup { group }, Some(in_group)) = (&action, &when.group)
            && group.as_str().eq_ignore_ascii_case(in_group.as_str())
        {
            return Err(Error::Invalid(format!("rule {name}: it adds to group {group} only members of {group}")));
        }
        Ok(Rule { name, action, when })
    }

    /// The status this rule gives, if it is a status rule.
    pub fn status(&self) -> Option<Status> {
        match self.action {
            Action::Approve => Some(Status::Approved),
            Action::Decline => Some(Status::Declined),
            Action::AddToGroup { .. } => None,
        }
    }

    /// The groups rules refer to, as conditions or as targets.
    pub fn groups(&self) -> impl Iterator<Item = &GroupName> {
        let target = match &self.action {
            Action::AddToGroup { group } => Some(group),
            _ => None,
        };
        target.into_iter().chain(self.when.group.as_ref())
    }
}

/// The status the rules give an update today, and the rule that gives it; None when no
/// status rule matches or a person decided.
pub fn decide<'r>(rules: &'r [Rule], f: &Facts, today: Date) -> Option<(Status, &'r Rule)> {
    if f.set_by == SetBy::Person {
        return None;
    }
    let first = |status: Status| {
        rules
            .iter()
            .filter(|r| r.status() == Some(status) && r.when.matches(f, today))
            .filter(|_| !(f.withdrawn && status == Status::Approved))
            .min_by(|a, b| a.name.cmp(&b.name))
    };
    first(Status::Declined)
        .map(|r| (Status::Declined, r))
        .or_else(|| first(Status::Approved).map(|r| (Status::Approved, r)))
}

impl fmt::Display for Rule {
    /// One line a person reads: "approve when classification is security-update, 7 days
    /// after arrival".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Approve => f.write_str("approve")?,
            Action::Decline => f.write_str("decline")?,
            Action::AddToGroup { group } => write!(f, "add to group {group}")?,
        }
        let w = &self.when;
        let mut parts: Vec<String> = Vec::new();
        let one_of = |what: &str, values: Vec<String>| match values.len() {
            1 => format!("{what} is {}", values[0]),
            _ => format!("{what} is one of {}", values.join(", ")),
        };
        if !w.products.is_empty() {
            parts.push(one_of("product", w.products.iter().map(|p| format!("{p:?}")).collect()));
        }
        if !w.classifications.is_empty() {
            parts.push(one_of("classification", w.classifications.iter().map(|c| c.to_string()).collect()));
        }
        if !w.severities.is_empty() {
            parts.push(one_of("severity", w.severities.iter().map(|c| c.to_string()).collect()));
        }
        if let Some(s) = w.superseded {
            parts.push(if s { "superseded".into() } else { "not superseded".into() });
        }
        if let Some(s) = w.sha1_only {
            parts.push(if s {
                "with a file known by SHA-1 only".into()
            } else {
                "every file known by its vendor's SHA-256 or registered".into()
            });
        }
        if let Some(g) = &w.group {
            parts.push(match w.days_in_group {
                Some(n) => format!("in group {g} for {n} days"),
                None => format!("in group {g}"),
            });
        }
        if let Some(n) = w.days_since_arrival {
            parts.push(format!("{n} days after arrival"));
        }
        if let Some(n) = w.days_since_release {
            parts.push(format!("{n} days after release"));
        }
        write!(f, " when {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn facts() -> Facts {
        Facts {
            product: "Windows 11".into(),
            classification: "security-update".into(),
            severity: "critical".into(),
            release_date: Some(date("2026-01-13")),
            arrived: date("2026-01-20"),
            superseded: false,
            sha1_only: false,
            withdrawn: false,
            status: Status::Undefined,
            set_by: SetBy::System,
            groups: vec![("pilot".into(), date("2026-01-21"))],
        }
    }

    fn rule(name: &str, action: Action, when: Conditions) -> Rule {
        Rule::new(name.parse().unwrap(), action, when).unwrap()
    }

    #[test]
    fn days_count_from_arrival_and_from_joining_a_group() {
        let r = rule(
            "after-pilot",
            Action::Approve,
            Conditions { group: Some("PILOT".parse().unwrap()), days_in_group: Some(7), ..Conditions::default() },
        );
        assert!(!r.when.matches(&facts(), date("2026-01-27")), "6 days in the group");
        assert!(r.when.matches(&facts(), date("2026-01-28")), "7 days in the group");
        let r = rule(
            "win11",
            Action::Approve,
            Conditions { products: vec!["windows 11".into()], days_since_arrival: Some(3), ..Conditions::default() },
        );
        assert!(!r.when.matches(&facts(), date("2026-01-22")));
        assert!(r.when.matches(&facts(), date("2026-01-23")));
    }

    #[test]
    fn decline_wins_and_a_person_is_never_overruled() {
        let rules = vec![
            rule(
                "a-approve-security",
                Action::Approve,
                Conditions { classifications: vec![Classification::SecurityUpdate], ..Conditions::default() },
            ),
            rule(
                "z-decline-superseded",
                Action::Decline,
                Conditions { superseded: Some(true), ..Conditions::default() },
            ),
        ];
        let today = date("2026-02-01");
        let mut f = facts();
        assert_eq!(
            decide(&rules, &f, today).map(|(s, r)| (s, r.name.as_str())),
            Some((Status::Approved, "a-approve-security"))
        );
        f.superseded = true;
        assert_eq!(
            decide(&rules, &f, today).map(|(s, r)| (s, r.name.as_str())),
            Some((Status::Declined, "z-decline-superseded"))
        );
        f.set_by = SetBy::Rule;
        assert!(decide(&rules, &f, today).is_some(), "a rule's decision can be revised by the rules");
        f.superseded = false;
        f.withdrawn = true;
        assert_eq!(decide(&rules, &f, today), None, "approve rules pass withdrawn updates by");
        f.set_by = SetBy::Person;
        assert_eq!(decide(&rules, &f, today), None);
    }

    #[test]
    fn rules_that_cannot_mean_what_they_say_are_refused() {
        let name: RuleName = "r".parse().unwrap();
        let refused = |rule: Result<Rule>, why: &str| {
            let err = rule.unwrap_err().to_string();
            assert!(err.contains(why), "expected {why:?}: {err}");
        };
        refused(Rule::new(name.clone(), Action::Approve, Conditions::default()), "it has no condition");
        let days_without_group = Conditions { days_in_group: Some(3), ..Conditions::default() };
        refused(Rule::new(name.clone(), Action::Approve, days_without_group), "days in a group need the group");
        let own_group = Conditions { group: Some("pilot".parse().unwrap()), ..Conditions::default() };
        refused(
            Rule::new(name, Action::AddToGroup { group: "Pilot".parse().unwrap() }, own_group),
            "it adds to group Pilot only members of Pilot",
        );
    }

    #[test]
    fn a_rule_reads_as_a_sentence() {
        let r = rule(
            "r",
            Action::Approve,
            Conditions {
                classifications: vec![Classification::SecurityUpdate, Classification::CriticalUpdate],
                products: vec!["Windows 11".into()],
                days_since_arrival: Some(7),
                ..Conditions::default()
            },
        );
        assert_eq!(
            r.to_string(),
            "approve when product is \"Windows 11\", classification is one of security-update, critical-update, 7 days after arrival"
        );
        let stored = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&stored).unwrap(), r);
    }
}
