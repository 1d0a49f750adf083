//! `ferry-mail`: sends one message to a LAN mail server for `ingest`'s notification.
//!
//! A program of its own so that the `ingest` executable carries no network client code:
//! ingest runs it with the settings of `ingest.toml` as arguments and the message body on
//! standard input. It can be run by hand to test a mail setup.
//!
//! Exit codes as ingest's: 0 sent, 2 usage, 3 bad input (address, certificate or password
//! file), 4 the server could not be reached or refused the message.

#[path = "../common/mod.rs"]
#[allow(dead_code, unused_imports)]
#[macro_use]
mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ferry_core::Error;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use common::code;

const PROGRAM: &str = "ferry-mail";

/// Sends one message (body on standard input) to a mail server.
#[derive(Parser)]
#[command(name = "ferry-mail", version, max_term_width = 100, after_help = common::EXIT_CODES_HELP)]
struct Cli {
    /// The mail server's host name (as its certificate names it).
    #[arg(long)]
    server: String,
    #[arg(long, default_value_t = 587)]
    port: u16,
    #[arg(long, value_enum, default_value_t = Security::Starttls)]
    security: Security,
    /// PEM file of CA certificates to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    #[arg(long, requires = "password_file")]
    username: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    #[arg(long)]
    from: String,
    #[arg(long, required = true)]
    to: Vec<String>,
    #[arg(long)]
    subject: String,
    /// Attach this HTML file.
    #[arg(long, value_name = "FILE")]
    attach_html: Option<PathBuf>,
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Security {
    /// Plain SMTP (no password may be sent).
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

fn main() -> ExitCode {
    common::finish(PROGRAM, run(Cli::parse()))
}

fn input(what: String) -> anyhow::Error {
    Error::Invalid(what).into()
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| input(format!("{a:?} is not a mail address: {e}")));
    let mut builder = Message::builder().from(mailbox(&cli.from)?).subject(cli.subject.clone());
    for to in &cli.to {
        builder = builder.to(mailbox(to)?);
    }
    let mut body = String::new();
    std::io::stdin().read_to_string(&mut body).map_err(|e| input(format!("the message body: {e}")))?;
    let text = SinglePart::plain(body);
    let message = match &cli.attach_html {
        Some(path) => {
            let html = std::fs::read(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
            let name = path.file_name().map_or("report.html".into(), |n| n.to_string_lossy().into_owned());
            let kind = ContentType::parse("text/html; charset=utf-8").expect("a valid content type");
            builder.multipart(MultiPart::mixed().singlepart(text).singlepart(Attachment::new(name).body(html, kind)))
        }
        None => builder.singlepart(text),
    }
    .map_err(|e| input(format!("the message: {e}")))?;

    let tls = if cli.security == Security::None {
        if cli.username.is_some() {
            return Err(input("a password is sent only over TLS: use --security starttls or tls".into()));
        }
        Tls::None
    } else {
        let mut params = TlsParameters::builder(cli.server.clone());
        if let Some(path) = &cli.ca_file {
            let pem = std::fs::read(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| input(format!("{}: not a PEM certificate: {e}", path.display())))?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().map_err(|e| input(format!("TLS settings: {e}")))?;
        if cli.security == Security::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
    };
    let mut transport = SmtpTransport::builder_dangerous(cli.server.as_str())
        .port(cli.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(cli.timeout)));
    if let (Some(user), Some(path)) = (&cli.username, &cli.password_file) {
        let text = std::fs::read_to_string(path).map_err(|e| input(format!("{}: {e}", path.display())))?;
        let password = text.lines().next().unwrap_or_default().to_string();
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    let transport = transport.build();
    transport.send(&message).map_err(|e| {
        // lettre's message often states its source already: each cause is said once.
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !cause.contains(&text) {
                cause.push_str(&format!(": {text}"));
            }
            source = s.source();
        }
        anyhow::Error::from(Error::Notification {
            what: format!("mail through {}:{}", cli.server, cli.port),
            cause: format!("not sent: {cause}"),
        })
    })?;
    outln!("sent to {} through {}:{}", cli.to.join(", "), cli.server, cli.port);
    Ok(code::OK)
}
