//! Approval: the status an administrator gives each update (undefined on arrival, approved,
//! declined), who gave it, and the licence (EULA) that must be accepted before an update
//! that requires one can be approved.
//!
//! The rules here are pure; the registry applies them in one transaction per command and
//! logs each change in the audit log with the person's name.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::names::Sha256;
use crate::formats::model::Eula;

/// An update's approval status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Undefined,
    Approved,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Undefined => "undefined",
            Status::Approved => "approved",
            Status::Declined => "declined",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Status> {
        match s {
            "undefined" => Ok(Status::Undefined),
            "approved" => Ok(Status::Approved),
            "declined" => Ok(Status::Declined),
            other => Err(Error::Invalid(format!("{other:?} is not a status (undefined, approved, declined)"))),
        }
    }
}

/// The person a change is recorded under: a name given on the command line, or the login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor(String);

/// Longest name recorded.
const MAX_ACTOR: usize = 64;

impl Actor {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Who is acting: the name given (`--by`), else the login name (`USER`, `USERNAME`),
    /// else the account name of the process's user id (a service account, a container, a
    /// cron job without a login environment), as other tools fall back. The audit log must
    /// say who acted, so a process with no name at all is refused rather than recorded.
    pub fn acting(given: Option<&str>) -> Result<Actor> {
        let login = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| whoami::fallible::username().ok().filter(|n| !n.trim().is_empty()));
        match given.or(login.as_deref()) {
            Some(name) => name.parse(),
            None => Err(Error::Invalid("who is acting is unknown: give --by NAME".into())),
        }
    }

    /// Who runs a command that takes no `--by`, as its change report names it: the login
    /// name, or "unknown".
    pub fn running() -> String {
        Actor::acting(None).map_or_else(|_| "unknown".to_string(), |a| a.0)
    }
}

impl FromStr for Actor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Actor> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_ACTOR || s.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "{s:?} is not a name to record (1 to {MAX_ACTOR} characters, no control characters)"
            )));
        }
        Ok(Actor(s.to_string()))
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An update as far as approving it is concerned.
pub struct Candidate<'a> {
    pub id: &'a str,
    pub withdrawn: bool,
    pub eula: Option<&'a Eula>,
    /// The licence digest a person accepted for this update, if any.
    pub accepted_eula: Option<Sha256>,
}

/// Why an update cannot take the status asked for, or None if it can.
pub fn hindrance(to: Status, c: &Candidate<'_>) -> Option<String> {
    if to != Status::Approved {
        return None;
    }
    if c.withdrawn {
        return Some("withdrawn by its vendor; it can only be declined".into());
    }
    match c.eula.filter(|e| e.acceptance_required) {
        Some(eula) if c.accepted_eula != Some(eula_digest(eula)) => Some(format!(
            "its licence must be accepted first (ingest eula show {id}, then ingest eula accept {id})",
            id = c.id
        )),
        _ => None,
    }
}

/// What identifies a licence's wording: a later revision that changes it needs a new acceptance.
pub fn eula_digest(eula: &Eula) -> Sha256 {
    let canonical = serde_json::to_vec(eula).expect("a licence serializes");
    Sha256::of(&canonical)
}

/// One update whose status changed.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub id: String,
    pub from: String,
    pub to: Status,
}

/// One update left as it was, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// What an approve, decline or reset did.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChange {
    pub status: Status,
    pub actor: Actor,
    pub changed: Vec<Changed>,
    /// Selected, and already in that status.
    pub unchanged: Vec<String>,
    /// Selected by a filter, and not changed (explicit ids refuse the whole command instead).
    pub skipped: Vec<Skipped>,
    /// A reset by filter: the decisions people had made that go back to the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handed_back: Vec<String>,
    /// `--dry-run`: what would change; nothing was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eula(text: &str) -> Eula {
        Eula { acceptance_required: true, text: Some(text.into()), reference: None }
    }

    #[test]
    fn approving_needs_the_licence_of_this_wording() {
        let licence = eula("You may install this.");
        let mut c = Candidate { id: "KB1", withdrawn: false, eula: Some(&licence), accepted_eula: None };
        assert!(hindrance(Status::Approved, &c).unwrap().contains("ingest eula accept KB1"));
        assert_eq!(hindrance(Status::Declined, &c), None, "declining needs no licence");
        c.accepted_eula = Some(eula_digest(&eula("Older wording.")));
        assert!(hindrance(Status::Approved, &c).is_some(), "an acceptance of other wording does not count");
        c.accepted_eula = Some(eula_digest(&licence));
        assert_eq!(hindrance(Status::Approved, &c), None);
        let not_required = Eula { acceptance_required: false, text: None, reference: Some("https://x".into()) };
        let c = Candidate { id: "KB2", withdrawn: false, eula: Some(&not_required), accepted_eula: None };
        assert_eq!(hindrance(Status::Approved, &c), None);
    }

    #[test]
    fn withdrawn_updates_can_only_be_declined() {
        let c = Candidate { id: "KB1", withdrawn: true, eula: None, accepted_eula: None };
        assert!(hindrance(Status::Approved, &c).unwrap().contains("withdrawn"));
        assert_eq!(hindrance(Status::Declined, &c), None);
        assert_eq!(hindrance(Status::Undefined, &c), None);
    }

    #[test]
    fn actors() {
        assert_eq!("  alice ".parse::<Actor>().unwrap().as_str(), "alice");
        assert!("".parse::<Actor>().is_err());
        assert!("a\u{1b}[31mb".parse::<Actor>().is_err());
        assert!("x".repeat(65).parse::<Actor>().is_err());
    }
}
