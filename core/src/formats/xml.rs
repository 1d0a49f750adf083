//! What every XML feed reader shares on top of quick-xml's event stream: attribute lookup,
//! the five entities XML itself defines (a document's own entities are never expanded, so
//! entity expansion cannot blow up), and line numbers for refusals.

use quick_xml::XmlVersion;
use quick_xml::events::BytesStart;

/// The value of attribute `name` (local name, any namespace), unescaped where the
/// predefined entities are used.
pub(crate) fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.local_name().as_ref() == name).map(|a| {
        a.normalized_value(XmlVersion::Implicit1_0).map(|v| v.into_owned()).unwrap_or_else(|_| a.value.to_string())
    })
}

/// The character of a predefined or numeric entity (`amp`, `#x41`, `#65`); none for any other.
pub(crate) fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        other => other
            .strip_prefix("#x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    }
}

/// The line of byte `at` in `bytes`, counting from 1.
pub(crate) fn line_of(bytes: &[u8], at: u64) -> usize {
    bytes[..(at as usize).min(bytes.len())].iter().filter(|b| **b == b'\n').count() + 1
}
