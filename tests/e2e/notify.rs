//! Notification after each change report: mail through a real SMTP server (Python's
//! aiosmtpd on 127.0.0.1, with STARTTLS and authentication) and a configured command; and
//! the configuration file that sets them, with `--set` overrides and `ingest config show`.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// An aiosmtpd server run by `support/smtp_sink.py`; stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Sink {
    fn start(s: &Scratch, tls: bool, user: Option<(&str, &str)>) -> Sink {
        let out = s.path("mailbox");
        std::fs::create_dir_all(&out).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/support/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.env("PYTHONWARNINGS", "ignore");
        cmd.arg(script).arg(port.to_string()).arg(&out);
        if tls {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(s.path("mail-cert.pem"), cert.pem()).unwrap();
            std::fs::write(s.path("mail-key.pem"), key.serialize_pem()).unwrap();
            cmd.arg("--cert").arg(s.path("mail-cert.pem")).arg("--key").arg(s.path("mail-key.pem"));
        }
        if let Some((u, p)) = user {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3 with aiosmtpd");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start (is aiosmtpd installed? .ci/run installs it)");
        Sink { child, port, out }
    }

    /// The messages that arrived: (raw message, envelope and session facts).
    fn messages(&self) -> Vec<(String, serde_json::Value)> {
        let mut found = Vec::new();
        for n in 1.. {
            let eml = self.out.join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let meta = std::fs::read_to_string(self.out.join(format!("{n}.json"))).unwrap();
            found.push((std::fs::read_to_string(eml).unwrap(), serde_json::from_str(&meta).unwrap()));
        }
        found
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with a trusted signer and a bundle of the three standard updates, not imported.
fn server_with_bundle(s: &Scratch) -> String {
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    s.trust(&public);
    s.pack(catalog.to_str().unwrap(), &secret, &[]).to_str().unwrap().to_string()
}

fn configure(s: &Scratch, toml: &str) {
    std::fs::create_dir_all(s.data_dir()).unwrap();
    std::fs::write(s.data_dir().join("ingest.toml"), toml).unwrap();
}

fn mail_config(s: &Scratch, sink: &Sink, extra: &str) -> String {
    format!(
        "[notify.smtp]\nserver = \"localhost\"\nport = {}\nca_file = {:?}\nfrom = \"ferry@mgmt.example.lan\"\nto = [\"ops@example.lan\", \"security@example.lan\"]\n{extra}",
        sink.port,
        s.path("mail-cert.pem").to_str().unwrap()
    )
}

/// A server with STARTTLS that accepts user "ferry" with password "s3cret", and ingest
/// configured to log in with `password`.
fn authenticating_sink(s: &Scratch, password: &str) -> Sink {
    let sink = Sink::start(s, true, Some(("ferry", "s3cret")));
    std::fs::write(s.path("smtp-password"), format!("{password}\n")).unwrap();
    let extra = format!("username = \"ferry\"\npassword_file = {:?}\n", s.path("smtp-password").to_str().unwrap());
    configure(s, &mail_config(s, &sink, &extra));
    sink
}

#[test]
fn mail_over_starttls_with_authentication_carries_the_report() {
    let s = Scratch::new();
    let bundle = server_with_bundle(&s);
    let sink = authenticating_sink(&s, "s3cret");

    let run = s.ingest(&["import", &bundle]);
    assert!(run.stderr.contains("notified by mail about change report 1"), "{}", run.stderr);
    run.ok();
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let (raw, session) = &messages[0];
    assert_eq!(session["tls"], true, "STARTTLS was used: {session}");
    assert_eq!(session["authenticated"], true, "{session}");
    assert_eq!(session["mail_from"], "ferry@mgmt.example.lan");
    assert_eq!(session["rcpt_tos"], serde_json::json!(["ops@example.lan", "security@example.lan"]));
    assert!(raw.contains("Subject: ferry report 1 (import): 3 new, 3 files arrived (119.5 KiB)"), "{raw}");
    assert!(raw.contains("To: ops@example.lan, security@example.lan"), "{raw}");
    assert!(raw.contains("7z2409-x64.exe"), "the text body lists the files: {raw}");
    assert!(raw.contains("Content-Type: text/html; charset=utf-8"), "the HTML page is attached: {raw}");
    assert!(raw.contains("Content-Disposition: attachment; filename=\"ferry-report-"), "{raw}");
    assert!(!raw.contains("s3cret"), "the password never appears in the message");

    // The same bundle again: no report, so no mail, even when every report is mailed ...
    s.ingest(&["--set", "notify.when=always", "import", &bundle]).ok();
    assert_eq!(sink.messages().len(), 1);
    // ... and a refresh with nothing new mails only when asked for every report.
    s.ingest(&["refresh"]).ok();
    assert_eq!(sink.messages().len(), 1, "notify.when = \"changes\" by default");
    let run = s.ingest(&["--set", "notify.when=always", "refresh"]);
    run.ok();
    assert_eq!(sink.messages().len(), 2);
    assert!(sink.messages()[1].0.contains("Subject: ferry report 3 (refresh): nothing changed"));
}

#[test]
fn a_failed_mail_is_a_warning_and_the_import_stands() {
    let s = Scratch::new();
    let bundle = server_with_bundle(&s);
    let sink = authenticating_sink(&s, "guess");

    let run = s.ingest(&["import", &bundle]);
    assert!(run.stderr.contains("warning: notification by mail failed"), "{}", run.stderr);
    assert!(run.stderr.contains("not sent"), "{}", run.stderr);
    run.ok();
    assert!(sink.messages().is_empty());
    assert_eq!(listed(&s, &[]).len(), 3, "the import stands");
    assert_eq!(data(&s.ingest(&["report", "--format", "json"]).ok())["id"], 1);
}

#[test]
fn mail_is_not_sent_in_clear_when_starttls_is_required() {
    let s = Scratch::new();
    let bundle = server_with_bundle(&s);
    // A server that does not offer STARTTLS (a downgrade would look the same).
    let sink = Sink::start(&s, false, None);
    rcgen_cert_for_config(&s);
    configure(&s, &mail_config(&s, &sink, ""));
    let run = s.ingest(&["import", &bundle]);
    assert!(run.stderr.contains("warning: notification by mail failed"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("STARTTLS is not supported").count(), 1, "said once: {}", run.stderr);
    run.ok();
    assert!(sink.messages().is_empty(), "nothing went out in clear");

    // Plain SMTP when the administrator says so, for a relay on a trusted segment.
    s.ingest(&["--set", "notify.smtp.security=none", "--set", "notify.when=always", "refresh"]).ok();
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].1["tls"], false);
}

/// The configuration names a CA file even when the test server has no certificate.
fn rcgen_cert_for_config(s: &Scratch) {
    std::fs::write(
        s.path("mail-cert.pem"),
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem(),
    )
    .unwrap();
}

#[test]
fn a_command_gets_the_report_as_json() {
    let s = Scratch::new();
    let bundle = server_with_bundle(&s);
    let out = s.path("notes");
    std::fs::create_dir_all(&out).unwrap();
    let script = format!(
        "cat > {0}/report-$FERRY_REPORT_ID.json; printf '%s' \"$FERRY_REPORT_HEADLINE\" > {0}/headline-$FERRY_REPORT_ID",
        out.display()
    );
    configure(&s, &format!("[notify]\ncommand = [\"sh\", \"-c\", {script:?}]\n"));
    let run = s.ingest(&["import", &bundle]);
    assert!(run.stderr.contains("notified by command about change report 1"), "{}", run.stderr);
    run.ok();
    let line = std::fs::read_to_string(out.join("report-1.json")).unwrap();
    assert_eq!(json_line(&line)["type"], "report", "one JSON line of the documented shape");
    let report = data(&line);
    assert_eq!(report["kind"], "import");
    assert_eq!(report["updates"].as_array().unwrap().len(), 3);
    assert_eq!(std::fs::read_to_string(out.join("headline-1")).unwrap(), "3 new, 3 files arrived (119.5 KiB)");

    // A command that fails, or hangs, is reported and stopped; the change stands.
    let run = s.ingest(&[
        "--set",
        "notify.command=[\"sh\", \"-c\", \"echo mailbox full >&2; exit 3\"]",
        "--set",
        "notify.when=always",
        "refresh",
    ]);
    assert!(
        run.stderr.contains("notification by command failed") && run.stderr.contains("mailbox full"),
        "{}",
        run.stderr
    );
    run.ok();
    let started = std::time::Instant::now();
    let run = s.ingest(&[
        "--set",
        "notify.command=[\"sleep\", \"30\"]",
        "--set",
        "notify.command_timeout_seconds=1",
        "--set",
        "notify.when=always",
        "refresh",
    ]);
    assert!(run.stderr.contains("was stopped after 1 s"), "{}", run.stderr);
    run.ok();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn config_show_names_where_each_value_came_from() {
    let s = Scratch::new();
    configure(
        &s,
        "[notify.smtp]\nserver = \"mail.example.lan\"\nto = [\"ops@example.lan\"]\n\n[rules]\napply = false\n",
    );
    let out = s.ingest(&["--set", "notify.smtp.port=2525", "config", "show"]).ok();
    let line =
        |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("{key}: {out}"));
    assert!(
        line("notify.smtp.server").ends_with(&format!("# {}", s.data_dir().join("ingest.toml").display())),
        "{out}"
    );
    assert!(line("notify.smtp.port").contains("2525") && line("notify.smtp.port").ends_with("# --set"), "{out}");
    assert!(line("notify.smtp.timeout_seconds").ends_with("# default"), "{out}");
    assert!(line("rules.apply").contains("false"), "{out}");
    assert!(line("notify.smtp.password_file").contains("(none)"), "{out}");
    let json = s.ingest(&["config", "show", "--json"]).ok();
    assert!(json.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{json}");
}

#[test]
fn a_change_freeze_suspends_the_rules() {
    let s = Scratch::new();
    let bundle = server_with_bundle(&s);
    s.ingest(&["rules", "add", "seven-zip", "--approve", "--product", "7-Zip"]).ok();
    let out = s.ingest(&["--set", "rules.apply=false", "import", &bundle]).ok();
    assert!(out.contains("approval rules not applied: rules.apply is false"), "{out}");
    assert!(ids_with(&s, "approved").is_empty());
    s.ingest(&["refresh"]).ok();
    assert_eq!(ids_with(&s, "approved"), ["7zip.7zip@24.09"]);
}

#[test]
fn bad_configuration_is_refused() {
    let s = Scratch::new();
    configure(&s, "[notify.smtp]\nsever = \"mail.example.lan\"\n");
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["unknown field `sever`"]);
    configure(&s, "[notify\n");
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["ingest.toml: TOML parse error at line 1", "unclosed table"]);
    configure(&s, "");
    s.ingest(&["--set", "notify.when", "config", "show"]).refused(exit::INPUT, &["expected KEY=VALUE"]);
    s.ingest(&["--set", "report.format=pdf", "report"]).refused(exit::INPUT, &["report.format is \"pdf\""]);
    let password_in_clear = "[notify.smtp]\nserver = \"mail.lan\"\nto = [\"ops@lan\"]\nsecurity = \"none\"\nusername = \"u\"\npassword_file = \"/p\"\n";
    configure(&s, password_in_clear);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["a password is sent only over TLS"]);
    let header_injection = "[notify.smtp]\nserver = \"mail.lan\"\nto = [\"ops@lan\\r\\nBcc: all@lan\"]\n";
    configure(&s, header_injection);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["is not a mail address"]);
    let mail_without_recipient = "[notify.smtp]\nserver = \"mail.lan\"\n";
    configure(&s, mail_without_recipient);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["notify.smtp.to: no recipient"]);
    let command_without_program = "[notify]\ncommand = [\"\", \"--flag\"]\n";
    configure(&s, command_without_program);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["the program name is empty"]);
    let zero_timeout = "[notify]\ncommand_timeout_seconds = 0\n";
    configure(&s, zero_timeout);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["a timeout of 0 seconds"]);
    let username_without_password_file = "[notify.smtp]\nserver = \"mail.lan\"\nto = [\"ops@lan\"]\nusername = \"u\"\n";
    configure(&s, username_without_password_file);
    s.ingest(&["config", "show"]).refused(exit::INPUT, &["username is set without password_file"]);
    configure(&s, header_injection);
    // A broken configuration stops the commands that would notify, before anything changes.
    let bundle_dir = Scratch::new();
    let bundle = server_with_bundle(&bundle_dir);
    s.ingest(&["import", &bundle]).refused(exit::INPUT, &["is not a mail address"]);
    // Refused before the data directory was touched: no registry was made, nothing stored.
    assert!(!s.data_dir().join("registry.sqlite").exists(), "the refused import made a registry");
    assert!(walk(&s.data_dir().join("store")).is_empty());
}

#[test]
fn ferry_mail_refuses_bad_input_by_itself() {
    let run = |args: &[&str]| Run::from(Command::new(&*MAIL).args(args).stdin(Stdio::null()).output().unwrap());
    let base = ["--server", "localhost", "--port", "1", "--subject", "s", "--to", "ops@lan"];
    run(&[&base[..], &["--from", "not an address"]].concat()).refused(exit::INPUT, &["is not a mail address"]);
    run(&[&base[..], &["--from", "a@lan", "--security", "none", "--username", "u", "--password-file", "/p"]].concat())
        .refused(exit::INPUT, &["only over TLS"]);
    run(&[&base[..], &["--from", "a@lan", "--security", "none"]].concat())
        .refused(4, &["mail through localhost:1", "not sent"]);
}
