//! Telling people that a change report is ready, or that computer groups got worse: a
//! configured command gets the notice as one JSON line on its standard input (type `report`
//! or `compliance-alert`, docs/json.md), and mail goes to the LAN mail server through the
//! `ferry-mail` program (so that ingest itself holds no network client code).
//!
//! A notification that fails does not undo or fail what was reported: the change is made
//! and its report stored; each outcome is returned for the caller to show.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::base::text::for_terminal;
use crate::server::compliance_report::ComplianceAlert;
use crate::server::config::{Notify, When};
use crate::server::report::ChangeReport;

/// What a notification is about.
#[derive(Clone, Copy)]
pub enum Notice<'a> {
    /// A change report is ready.
    Report(&'a ChangeReport),
    /// Computer groups got worse, to their notify level or beyond.
    Compliance(&'a ComplianceAlert),
}

impl Notice<'_> {
    /// Whether `when` asks for this notice: a worse compliance level is always news.
    fn wanted(self, when: When) -> bool {
        match (self, when) {
            (_, When::Never) => false,
            (Notice::Report(report), When::Changes) => report.is_news(),
            _ => true,
        }
    }

    fn json(self) -> Vec<u8> {
        let line = match self {
            Notice::Report(report) => crate::formats::json_lines::line("report", report),
            Notice::Compliance(alert) => crate::formats::json_lines::line("compliance-alert", alert),
        };
        line.expect("a notice serialises").into_bytes()
    }

    /// What the command finds in its environment.
    fn env(self) -> Vec<(&'static str, String)> {
        match self {
            Notice::Report(report) => vec![
                ("FERRY_REPORT_ID", report.id.to_string()),
                ("FERRY_REPORT_KIND", report.kind.to_string()),
                ("FERRY_REPORT_HEADLINE", report.headline()),
            ],
            Notice::Compliance(alert) => {
                vec![("FERRY_REPORT_KIND", "compliance".to_string()), ("FERRY_REPORT_HEADLINE", alert.headline())]
            }
        }
    }

    fn subject(self) -> String {
        match self {
            Notice::Report(report) => format!("ferry report {} ({}): {}", report.id, report.kind, report.headline()),
            Notice::Compliance(alert) => format!("ferry compliance: {}", alert.headline()),
        }
    }

    fn text(self) -> String {
        match self {
            Notice::Report(report) => report.to_text(),
            Notice::Compliance(alert) => alert.to_text(),
        }
    }

    fn html(self) -> String {
        match self {
            Notice::Report(report) => report.to_html(),
            Notice::Compliance(alert) => alert.page.clone(),
        }
    }

    /// How the outcome lines name it.
    pub fn describe(self) -> String {
        match self {
            Notice::Report(report) => format!("change report {}", report.id),
            Notice::Compliance(_) => "the worse compliance".to_string(),
        }
    }
}

/// How one notification went.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `command` or `mail`.
    pub channel: &'static str,
    pub delivered: bool,
    pub detail: String,
}

/// Sends every notification `config` asks for about `notice`; `mailer` is the ferry-mail
/// program.
pub fn notify(config: &Notify, notice: Notice<'_>, mailer: &Path) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    if !notice.wanted(config.when) {
        return outcomes;
    }
    if let Some((program, args)) = config.command.split_first() {
        let mut command = Command::new(program);
        command.args(args).envs(notice.env());
        let timeout = Duration::from_secs(config.command_timeout_seconds);
        outcomes.push(run("command", command, notice.json(), timeout, program));
    }
    let smtp = &config.smtp;
    if smtp.enabled() {
        outcomes.push(mail(config, notice, mailer));
    }
    outcomes
}

fn mail(config: &Notify, notice: Notice<'_>, mailer: &Path) -> Outcome {
    let smtp = &config.smtp;
    let failed = |detail: String| Outcome { channel: "mail", delivered: false, detail };
    let mut command = Command::new(mailer);
    let subject: String = notice.subject().chars().take(200).collect();
    command
        .arg("--server")
        .arg(&smtp.server)
        .arg("--port")
        .arg(smtp.effective_port().to_string())
        .arg("--security")
        .arg(smtp.security.to_string())
        .arg("--from")
        .arg(&smtp.from)
        .arg("--subject")
        .arg(subject)
        .arg("--timeout")
        .arg(smtp.timeout_seconds.to_string());
    for to in &smtp.to {
        command.arg("--to").arg(to);
    }
    if let Some(ca) = &smtp.ca_file {
        command.arg("--ca-file").arg(ca);
    }
    if let (false, Some(password)) = (smtp.username.is_empty(), &smtp.password_file) {
        command.arg("--username").arg(&smtp.username).arg("--password-file").arg(password);
    }
    // The HTML page travels as a file that lives until the mailer is done.
    let page = if smtp.attach_html {
        let page = tempfile::Builder::new().prefix("ferry-report-").suffix(".html").tempfile().and_then(|mut f| {
            f.write_all(notice.html().as_bytes())?;
            Ok(f.into_temp_path())
        });
        match page {
            Ok(p) => Some(p),
            Err(e) => return failed(format!("the HTML attachment could not be written: {e}")),
        }
    } else {
        None
    };
    if let Some(p) = &page {
        command.arg("--attach-html").arg(p);
    }
    let timeout = Duration::from_secs(smtp.timeout_seconds + 10);
    let outcome = run("mail", command, notice.text().into_bytes(), timeout, &mailer.display().to_string());
    drop(page);
    outcome
}

/// Runs `command` with `input` on its standard input, for at most `timeout`.
fn run(channel: &'static str, mut command: Command, input: Vec<u8>, timeout: Duration, name: &str) -> Outcome {
    let failed = |detail: String| Outcome { channel, delivered: false, detail };
    let mut child = match command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("{name} could not be started: {e}")),
    };
    let mut stdin = child.stdin.take().expect("piped");
    // Threads feed and drain the pipes: a program that does not read its input, or writes
    // much, must not block ingest.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return failed(format!("{name}: {e}")),
        }
    };
    let _ = writer.join();
    let said = |reader: std::thread::JoinHandle<Vec<u8>>| {
        let text = String::from_utf8_lossy(&reader.join().unwrap_or_default()).trim().to_string();
        for_terminal(&text.chars().take(2000).collect::<String>()).into_owned()
    };
    let stdout = said(stdout);
    let stderr = said(stderr);
    match status {
        None => failed(format!("{name} was stopped after {} s", timeout.as_secs())),
        Some(s) if s.success() => Outcome { channel, delivered: true, detail: stdout },
        Some(s) => {
            let why = if stderr.is_empty() { stdout } else { stderr };
            failed(format!("{name} failed ({s}): {why}"))
        }
    }
}
