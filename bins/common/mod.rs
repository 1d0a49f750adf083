//! What both binaries share at their edge: the exit codes, how an error is printed, and
//! small output helpers. Rules live in `ferry-core`; nothing here decides anything else.

use std::process::ExitCode;

pub mod progress;

use ferry_core::{Error, ErrorClass};

/// The documented exit codes (README.md and ARCHITECTURE.md list them).
pub mod code {
    pub const OK: u8 = 0;
    /// An unexpected internal failure.
    pub const INTERNAL: u8 = 1;
    /// The command line itself is wrong. clap exits with it before `run` is reached.
    #[allow(dead_code)]
    pub const USAGE: u8 = 2;
    /// Input given by the user is malformed: catalog, key file, name, option value.
    pub const INPUT: u8 = 3;
    /// A download failed.
    pub const NETWORK: u8 = 4;
    /// Bytes did not match their SHA-256 or size.
    pub const INTEGRITY: u8 = 5;
    /// Signatures: bad, missing, untrusted, or disagreeing with the manifest.
    pub const SIGNATURE: u8 = 6;
    /// The bundle's container or manifest is unsafe or malformed.
    pub const BUNDLE: u8 = 7;
    /// A replayed, older, conflicting or expired bundle.
    pub const ROLLBACK: u8 = 8;
    /// The local disk, file system or operating system failed.
    pub const LOCAL: u8 = 9;
    /// Something asked for by name does not exist.
    pub const NOT_FOUND: u8 = 10;
    /// Another process holds the data or work directory.
    pub const BUSY: u8 = 11;
    /// Data ferry wrote itself is damaged (registry, stored report, work-directory state).
    pub const DAMAGED: u8 = 12;
}

/// The exit codes as `--help` ends with them (README.md has the full table).
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 internal error (a bug in ferry); 2 usage; 3 bad input; \
4 a download failed, or mail was not delivered; 5 bytes do not match their digest or size; 6 a signature is bad, \
missing or untrusted; 7 a bundle's container or manifest is unsafe or malformed; 8 a replayed, older, conflicting \
or expired bundle; 9 this machine failed (disk, file system); 10 not found; 11 busy (another process holds the \
directory); 12 damaged (data ferry wrote itself). README.md has the full table.";

/// "1 update", "2 updates": a count with its noun, in the singular or the plural.
#[allow(dead_code)]
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Parses `--classification`, and lists its possible values in `--help`.
#[allow(dead_code)]
pub fn classification_parser()
-> impl clap::builder::TypedValueParser<Value = ferry_core::formats::model::Classification> {
    use clap::builder::TypedValueParser;
    use ferry_core::formats::model::Classification;
    clap::builder::PossibleValuesParser::new(Classification::ALL.iter().map(|c| c.as_str()))
        .map(|s| s.parse::<Classification>().expect("one of the values listed"))
}

/// Parses `--severity`, and lists its possible values in `--help`.
#[allow(dead_code)]
pub fn severity_parser() -> impl clap::builder::TypedValueParser<Value = ferry_core::formats::model::Severity> {
    use clap::builder::TypedValueParser;
    use ferry_core::formats::model::Severity;
    clap::builder::PossibleValuesParser::new(Severity::ALL.iter().map(|c| c.as_str()))
        .map(|s| s.parse::<Severity>().expect("one of the values listed"))
}

pub fn exit_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Input => code::INPUT,
        ErrorClass::Network => code::NETWORK,
        ErrorClass::Integrity => code::INTEGRITY,
        ErrorClass::Signature => code::SIGNATURE,
        ErrorClass::Bundle => code::BUNDLE,
        ErrorClass::Rollback => code::ROLLBACK,
        ErrorClass::Local => code::LOCAL,
        ErrorClass::NotFound => code::NOT_FOUND,
        ErrorClass::Busy => code::BUSY,
        ErrorClass::Damaged => code::DAMAGED,
        ErrorClass::Internal => code::INTERNAL,
    }
}

/// Prints an error chain on stderr and returns its exit code.
pub fn report(program: &str, error: &anyhow::Error) -> u8 {
    // What the command printed before comes before the error in a log of both streams.
    flush_out();
    // A cause that the message before it already states is not repeated ("x: No such file
    // or directory: No such file or directory").
    let mut text = String::new();
    for cause in error.chain().map(|e| e.to_string()) {
        if !text.ends_with(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    eprintln!("{program}: error: {}", ferry_core::base::text::for_terminal(&text));
    let (code, class) = match error.downcast_ref::<Error>() {
        Some(e) => (exit_code(e.class()), e.class()),
        None => (code::INTERNAL, ErrorClass::Internal),
    };
    if json_requested() {
        let data = serde_json::json!({"program": program, "exit_code": code, "class": class.as_str(), "message": text});
        // Standard output may be gone; the message is on standard error already.
        let _ = json_line("error", &data);
        flush_out();
    }
    code
}

/// Runs a command body and turns its result into the process exit code.
pub fn finish(program: &str, result: anyhow::Result<u8>) -> ExitCode {
    flush_out();
    match (result, STDOUT_FAILED.get()) {
        (Ok(_), Some(failure)) => {
            eprintln!("{program}: error: writing to standard output failed: {failure}");
            ExitCode::from(code::LOCAL)
        }
        (Ok(code), None) => ExitCode::from(code),
        (Err(e), _) => ExitCode::from(report(program, &e)),
    }
}

/// Standard output as the binaries write it: a line at a time to a terminal, in blocks to a
/// pipe or file (`ingest list` of 2,000 rows made 2,000 write calls). `None` once it cannot
/// be written any more.
static STDOUT: std::sync::Mutex<Option<Output>> = std::sync::Mutex::new(None);
/// Set once standard output cannot be written any more.
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Why, unless the reader went away.
static STDOUT_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

struct Output {
    out: std::io::BufWriter<std::io::Stdout>,
    terminal: bool,
}

/// Writes to standard output (through [`outln!`] and [`out!`]). A reader that goes away
/// (`ingest list | head`) ends the output, not the command: the command finishes its work and
/// exits with its own code. Any other failure (a full disk behind a redirection) is reported
/// when the command ends, with exit code 9.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal as _, Write as _};
    use std::sync::atomic::Ordering;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut guard = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    let output = guard.get_or_insert_with(|| Output {
        terminal: std::io::stdout().is_terminal(),
        out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
    });
    let mut written = output.out.write_fmt(args);
    if output.terminal {
        written = written.and_then(|()| output.out.flush());
    }
    if let Err(e) = written {
        out_failed(&e);
    }
}

/// Standard output as an `io::Write`, for a command asked to write its file to `-`: bytes go
/// through the same buffer as [`write_out`], so a reader that goes away ends the output, not
/// the command.
#[allow(dead_code)]
pub struct StdoutSink;

impl std::io::Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::IsTerminal as _;
        use std::sync::atomic::Ordering;
        if STDOUT_GONE.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        let mut guard = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
        let output = guard.get_or_insert_with(|| Output {
            terminal: std::io::stdout().is_terminal(),
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        });
        if let Err(e) = output.out.write_all(buf) {
            out_failed(&e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes out what standard output holds: at the end of a command, and after each pass of
/// a long-running one.
pub fn flush_out() {
    use std::io::Write as _;
    let mut guard = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(output) = guard.as_mut()
        && !STDOUT_GONE.load(std::sync::atomic::Ordering::Relaxed)
        && let Err(e) = output.out.flush()
    {
        out_failed(&e);
    }
}

/// Whether a write failed because the reader went away (`| head`): a broken pipe, or on
/// Windows a pipe no longer connected (ERROR_NO_DATA 232, ERROR_PIPE_NOT_CONNECTED 233).
fn reader_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe || (cfg!(windows) && matches!(e.raw_os_error(), Some(232 | 233)))
}

fn out_failed(e: &std::io::Error) {
    STDOUT_GONE.store(true, std::sync::atomic::Ordering::Relaxed);
    if !reader_gone(e) {
        let _ = STDOUT_FAILED.set(e.to_string());
    }
}

/// `println!` that survives a closed pipe: see [`write_out`].
macro_rules! outln {
    () => {
        $crate::common::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::common::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that survives a closed pipe: see [`write_out`].
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::common::write_out(format_args!($($arg)*))
    };
}

/// Prints one JSON line of type `kind` carrying `data` on stdout (docs/json.md).
pub fn json_line<T: serde::Serialize + ?Sized>(kind: &str, data: &T) -> anyhow::Result<()> {
    outln!("{}", ferry_core::formats::json_lines::line(kind, data)?);
    Ok(())
}

/// Whether the command line asks for JSON output (`--json`, or `--format json`): refusals
/// are then JSON lines on standard output too.
pub fn json_requested() -> bool {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.iter().any(|a| a == "--json" || a == "--format=json")
        || args.windows(2).any(|w| w[0] == "--format" && w[1] == "json")
}

pub use ferry_core::base::text::human_bytes;

/// Where `program` keeps its data: the directory given by flag or environment, else the
/// system's or the user's (`ferry_core::base::locations`). Nothing is created here: a
/// command that writes calls `locations::prepare` first.
pub fn location(
    given: Option<std::path::PathBuf>,
    program: &str,
    flag: &str,
    env: &str,
) -> anyhow::Result<ferry_core::base::locations::Location> {
    Ok(ferry_core::base::locations::choose(given, program, flag, env)?)
}

/// Untrusted text made safe for the terminal.
pub fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    ferry_core::base::text::for_terminal(text)
}

/// A table whose columns are as wide as their widest cell. On a terminal narrower than the
/// table, the widest columns are cut with an ellipsis; on a pipe or into a file nothing is
/// ever cut, so scripts read every byte.
#[allow(dead_code)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[allow(dead_code)]
impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds a row; each cell is made safe for the terminal.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| safe(&c).into_owned()).collect());
    }

    /// The lines of the table for a terminal of `width` columns (none: never cut).
    pub fn lines(&self, width: Option<usize>) -> Vec<String> {
        let w = |s: &str| console::measure_text_width(s);
        let columns = self.headers.len();
        let mut widths: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows.iter().map(|r| r.get(i).map_or(0, |c| w(c))).chain([w(&self.headers[i])]).max().unwrap_or(0)
            })
            .collect();
        if let Some(width) = width {
            // Cut the widest column by one until the table fits, never below its header
            // or 8 columns.
            while widths.iter().sum::<usize>() + 2 * (columns - 1) > width {
                let Some((i, _)) = widths
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| **c > w(&self.headers[*i]).max(8))
                    .max_by_key(|(_, c)| **c)
                else {
                    break;
                };
                widths[i] -= 1;
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let fitted = if w(cell) > widths[i] {
                    console::truncate_str(cell, widths[i], "…").into_owned()
                } else {
                    cell.clone()
                };
                out.push_str(&fitted);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(widths[i] - w(&fitted) + 2));
                }
            }
            out
        };
        std::iter::once(line(&self.headers)).chain(self.rows.iter().map(|r| line(r))).collect()
    }

    /// Prints the table to standard output, fitted to the terminal if it is one.
    pub fn print(&self) {
        use std::io::IsTerminal;
        let width = std::io::stdout()
            .is_terminal()
            .then(|| console::Term::stdout().size_checked().map(|(_, cols)| usize::from(cols)))
            .flatten();
        for l in self.lines(width) {
            outln!("{l}");
        }
    }
}

#[cfg(test)]
mod table_tests {
    use super::Table;

    #[test]
    fn a_table_is_cut_on_a_narrow_terminal_only() {
        let mut t = Table::new(&["ID", "PRODUCT", "TITLE"]);
        t.row(vec![
            "KB5034122".into(),
            "Windows 10 Version 22H2 for x64-based Systems".into(),
            "Cumulative update".into(),
        ]);
        t.row(vec!["7zip.7zip@24.09".into(), "7-Zip".into(), "7-Zip 24.09 (x64) with a long title".into()]);
        let whole = t.lines(None);
        assert!(whole.iter().all(|l| !l.contains('…')), "never cut on a pipe: {whole:?}");
        assert_eq!(whole[1].find("Cumulative"), whole[0].find("TITLE"));
        let fitted = t.lines(Some(60));
        assert!(fitted.iter().all(|l| console::measure_text_width(l) <= 60), "{fitted:?}");
        assert!(fitted[1].contains('…'), "the widest column is cut: {fitted:?}");
    }
}
