//! The one shape of ferry's machine-readable output (docs/json.md): every `--json` line of
//! both binaries, a refusal under `--json`, a change report in JSON and what a notification
//! command reads on its standard input is one object
//! `{"type": KIND, "format": FORMAT, "data": …}`, one per line.

use serde::Serialize;

/// The version of the shape; raised when a line's meaning changes in a way a reader must
/// know (a field removed or changed; new fields and new types do not raise it).
pub const FORMAT: u32 = 1;

#[derive(Serialize)]
struct Line<'a, T: ?Sized> {
    #[serde(rename = "type")]
    kind: &'a str,
    format: u32,
    data: &'a T,
}

/// One line (without its newline) of type `kind` carrying `data`.
pub fn line<T: Serialize + ?Sized>(kind: &str, data: &T) -> serde_json::Result<String> {
    serde_json::to_string(&Line { kind, format: FORMAT, data })
}
