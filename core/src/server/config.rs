//! ingest's configuration: `ingest.toml` in the data directory, or in `/etc/ferry` (Windows:
//! `%ProgramData%\ferry`) when the data directory is the system's (`base::locations`):
//! notification, rules, defaults. Every value of which a command line can override with `--set KEY=VALUE`.
//!
//! Unknown keys are refused, not ignored: a misspelt `smtp.sever` would otherwise silently
//! turn notification off. Secrets are not kept in the file: the SMTP password is read from
//! `password_file`, which `ingest config show` names but never prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, IoContext, Result};

pub const CONFIG_FILE: &str = "ingest.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub notify: Notify,
    pub report: ReportDefaults,
    pub rules: RulesConfig,
    pub watch: WatchConfig,
    pub computers: ComputersConfig,
}

/// Computers and their inventories (`ingest computers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputersConfig {
    /// Days without a report after which a computer is flagged as stale.
    pub stale_days: u32,
}

impl Default for ComputersConfig {
    fn default() -> ComputersConfig {
        ComputersConfig { stale_days: 14 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// After which reports to notify: when something changed, arrived or was refused
    /// (`changes`), after every report (`always`), or `never`.
    pub when: When,
    /// A program and its arguments, run with the report as JSON on its standard input.
    pub command: Vec<String>,
    /// How long the command may run before it is stopped.
    pub command_timeout_seconds: u64,
    pub smtp: Smtp,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify { when: When::Changes, command: Vec::new(), command_timeout_seconds: 60, smtp: Smtp::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    Changes,
    Always,
    Never,
}

/// Mail to a LAN mail server. Off while `server` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub server: String,
    /// 0: the usual port of `security` (25 for none, 587 for starttls, 465 for tls).
    pub port: u16,
    pub security: Security,
    /// A PEM file of CA certificates to trust besides the system's (a LAN's own CA).
    pub ca_file: Option<PathBuf>,
    /// Authenticate as this user (only over TLS).
    pub username: String,
    /// The file holding the password (its first line).
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub timeout_seconds: u64,
    /// Attach the report as a self-contained HTML page.
    pub attach_html: bool,
}

impl Default for Smtp {
    fn default() -> Smtp {
        Smtp {
            server: String::new(),
            port: 0,
            security: Security::Starttls,
            ca_file: None,
            username: String::new(),
            password_file: None,
            from: "ferry@localhost".into(),
            to: Vec::new(),
            timeout_seconds: 30,
            attach_html: true,
        }
    }
}

impl Smtp {
    pub fn enabled(&self) -> bool {
        !self.server.is_empty()
    }

    pub fn effective_port(&self) -> u16 {
        match (self.port, self.security) {
            (0, Security::None) => 25,
            (0, Security::Starttls) => 587,
            (0, Security::Tls) => 465,
            (port, _) => port,
        }
    }
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Plain SMTP: only for a server on the same host or a trusted segment.
    None,
    /// STARTTLS, required: a server that does not offer it is not sent to.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl std::fmt::Display for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::None => "none",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportDefaults {
    /// The format `ingest report` uses without --format: text, json or html.
    pub format: String,
}

impl Default for ReportDefaults {
    fn default() -> ReportDefaults {
        ReportDefaults { format: "text".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Whether a refresh applies the approval rules; false during a change freeze (a refresh
    /// still marks supersedence, and `rules test` still answers).
    pub apply: bool,
}

impl Default for RulesConfig {
    fn default() -> RulesConfig {
        RulesConfig { apply: true }
    }
}

/// Scheduled ingestion (`ingest watch`); its command-line flags override these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// The drop folders (or a stick's mount point) read when `ingest watch` is given no --drop.
    pub drop: Vec<PathBuf>,
    /// Folders the computers' inventories arrive in, read when `ingest watch` is given no
    /// --inventories.
    pub inventories: Vec<PathBuf>,
    /// Folders the computers' installation results arrive in, read when `ingest watch` is
    /// given no --results.
    pub results: Vec<PathBuf>,
    /// Seconds between the passes of a watcher that keeps running.
    pub interval_seconds: u64,
    /// How long a file's size and modification time must stay unchanged before it is read.
    pub settle_seconds: u64,
    /// How long one pass waits for files still being written before leaving every file of the
    /// pass to the next one (a newer bundle must not go in before an older one still arriving).
    pub max_wait_seconds: u64,
    /// The server's local time of day (HH:MM) of a refresh that runs even when nothing
    /// arrives, for rules that count days; empty for none.
    pub daily_refresh: String,
    /// Publish the distribution points that are behind at the end of each pass.
    pub publish: bool,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            drop: Vec::new(),
            inventories: Vec::new(),
            results: Vec::new(),
            interval_seconds: 300,
            settle_seconds: 10,
            max_wait_seconds: 600,
            daily_refresh: "03:00".into(),
            publish: true,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Origin {
    Default,
    File(String),
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{path}"),
            Origin::CommandLine => f.write_str("--set"),
        }
    }
}

/// The configuration in force and where each value came from.
#[derive(Debug, Clone)]
pub struct Effective {
    pub config: Config,
    /// Each key, dotted (`notify.smtp.port`), with its value as TOML and its origin.
    pub values: Vec<(String, String, Origin)>,
}

/// Reads `ingest.toml` in `dir` (if there is one) and applies `overrides` (`KEY=VALUE`, the
/// value in TOML syntax or a bare string).
pub fn load(dir: &Path, overrides: &[String]) -> Result<Effective> {
    let path = dir.join(CONFIG_FILE);
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.parse::<toml::Table>()
                .map_err(|e| Error::Invalid(format!("{}: {}", path.display(), e.to_string().trim_end())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).at(&path),
    };
    let mut merged = file.clone().unwrap_or_default();
    let mut set: Vec<String> = Vec::new();
    for o in overrides {
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--set {o:?}: expected KEY=VALUE, as notify.smtp.port=2525")))?;
        let key = key.trim();
        let value = parse_value(value.trim());
        insert(&mut merged, key, value).map_err(|why| Error::Invalid(format!("--set {key}: {why}")))?;
        set.push(key.to_string());
    }
    let config: Config = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
        let whence = if file.is_some() { format!("{} or --set", path.display()) } else { "--set".to_string() };
        Error::Invalid(format!("configuration ({whence}): {}", e.message()))
    })?;
    config.check()?;

    let mut flat = BTreeMap::new();
    flatten("", &toml::Value::try_from(&config).expect("the configuration serialises"), &mut flat);
    for key in ["notify.smtp.ca_file", "notify.smtp.password_file"] {
        flat.entry(key.to_string()).or_insert_with(|| "(none)".to_string());
    }
    let values = flat
        .into_iter()
        .map(|(key, value)| {
            let origin = if set.contains(&key) {
                Origin::CommandLine
            } else if file.as_ref().is_some_and(|t| lookup(t, &key)) {
                Origin::File(path.display().to_string())
            } else {
                Origin::Default
            };
            (key, value, origin)
        })
        .collect();
    Ok(Effective { config, values })
}

fn parse_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed as v"),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("a key is dotted words, as notify.smtp.port".into());
    }
    let last = parts.pop().expect("split yields one part");
    let mut here = table;
    for p in parts {
        let next = here.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match next {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{p} is a value, not a section")),
        };
    }
    here.insert(last.to_string(), value);
    Ok(())
}

fn lookup(table: &toml::Table, key: &str) -> bool {
    let mut parts = key.split('.').peekable();
    let mut here = table;
    while let Some(p) = parts.next() {
        match (here.get(p), parts.peek()) {
            (Some(_), None) => return true,
            (Some(toml::Value::Table(t)), Some(_)) => here = t,
            _ => return false,
        }
    }
    false
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        v => {
            out.insert(prefix.to_string(), v.to_string());
        }
    }
}

impl Config {
    /// The rules a configuration must keep whatever its source.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::Invalid(format!("configuration: {why}")));
        if !["text", "json", "html"].contains(&self.report.format.as_str()) {
            return bad(format!("report.format is {:?}: use text, json or html", self.report.format));
        }
        if self.notify.command.first().is_some_and(|c| c.is_empty()) {
            return bad("notify.command: the program name is empty".into());
        }
        let w = &self.watch;
        if let Err(e) = crate::base::clock::DailyTime::parse(&w.daily_refresh) {
            return bad(format!("watch.daily_refresh: {e}"));
        }
        if w.interval_seconds == 0 {
            return bad("watch.interval_seconds is 0".into());
        }
        let s = &self.notify.smtp;
        if s.timeout_seconds == 0 || self.notify.command_timeout_seconds == 0 {
            return bad("a timeout of 0 seconds".into());
        }
        if !s.enabled() {
            return Ok(());
        }
        if s.to.is_empty() {
            return bad("notify.smtp.to: no recipient; give at least one address".into());
        }
        for address in s.to.iter().chain([&s.from]) {
            if !plausible_address(address) {
                return bad(format!("notify.smtp: {address:?} is not a mail address"));
            }
        }
        if !s.username.is_empty() {
            if s.security == Security::None {
                return bad("notify.smtp: a password is sent only over TLS; set security to starttls or tls".into());
            }
            if s.password_file.is_none() {
                return bad("notify.smtp.username is set without password_file".into());
            }
        }
        Ok(())
    }
}

/// local@domain, with no space or control character (a header cannot be smuggled in).
fn plausible_address(a: &str) -> bool {
    let ok_chars = !a.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',');
    matches!(a.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
        && ok_chars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        dir
    }

    #[test]
    fn defaults_file_and_overrides_each_name_their_origin() {
        let dir = dir_with("[notify.smtp]\nserver = \"mail.lan\"\nto = [\"ops@lan\"]\n");
        let e = load(dir.path(), &["notify.smtp.port=2525".into(), "rules.apply=false".into()]).unwrap();
        assert_eq!(e.config.notify.smtp.server, "mail.lan");
        assert_eq!(e.config.notify.smtp.effective_port(), 2525);
        assert!(!e.config.rules.apply);
        let origin = |k: &str| e.values.iter().find(|(key, _, _)| key == k).unwrap().2.clone();
        assert!(matches!(origin("notify.smtp.server"), Origin::File(_)));
        assert_eq!(origin("notify.smtp.port"), Origin::CommandLine);
        assert_eq!(origin("notify.smtp.timeout_seconds"), Origin::Default);
    }

    #[test]
    fn a_misspelt_key_is_refused() {
        let dir = dir_with("[notify.smtp]\nsever = \"mail.lan\"\n");
        let err = load(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("unknown field `sever`"), "{err}");
        let err = load(tempfile::tempdir().unwrap().path(), &["notify.when=sometimes".into()]).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn a_password_never_travels_in_clear() {
        let dir = dir_with(
            "[notify.smtp]\nserver = \"mail.lan\"\nto = [\"ops@lan\"]\nsecurity = \"none\"\nusername = \"ferry\"\npassword_file = \"/etc/p\"\n",
        );
        let err = load(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("only over TLS"), "{err}");
    }

    #[test]
    fn addresses_cannot_carry_headers() {
        let o = |to: &str| vec!["notify.smtp.server=mail.lan".to_string(), format!("notify.smtp.to=[{to:?}]")];
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), &o("ops@lan")).is_ok());
        for bad in ["ops@lan\r\nBcc: x@evil", "ops", "a@b@c", "Ops <ops@lan>"] {
            assert!(load(dir.path(), &o(bad)).is_err(), "{bad:?}");
        }
    }
}
