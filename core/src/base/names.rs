//! Validated names for everything that comes from outside: update ids, channels, digests,
//! key ids, file names.
//!
//! A value of one of these types has passed its grammar, so code further in never re-checks
//! and no unchecked string can reach a path or a query. None of them is ever joined to a path
//! except [`Sha256`], whose hex form is the store's only naming scheme.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::base::error::Error;

/// Gives a type with `FromStr<Err = Error>` and `Display` the string round trip that
/// `#[serde(try_from = "String", into = "String")]` needs.
macro_rules! string_conversions {
    ($ty:ty) => {
        impl TryFrom<String> for $ty {
            type Error = $crate::base::error::Error;
            fn try_from(value: String) -> Result<Self, $crate::base::error::Error> {
                value.parse()
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.to_string()
            }
        }
    };
}
pub(crate) use string_conversions;

fn invalid(kind: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidName { kind, value: value.to_string(), reason: reason.into() }
}

macro_rules! string_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                $check(&value).map_err(|reason| invalid($kind, &value, reason))?;
                Ok($name(value))
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::try_from(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Checks `value` against `[first][rest]{0,max_rest}`.
fn check_grammar(
    value: &str,
    max_len: usize,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
    grammar: &str,
) -> Result<(), String> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(format!("empty; expected {grammar}"));
    }
    if bytes.len() > max_len {
        return Err(format!("longer than {max_len} characters"));
    }
    if !first(bytes[0]) {
        return Err(format!("must start with a letter or digit; expected {grammar}"));
    }
    if let Some(bad) = bytes[1..].iter().find(|b| !rest(**b)) {
        return Err(format!("character {:?} not allowed; expected {grammar}", *bad as char));
    }
    Ok(())
}

fn check_update_id(value: &str) -> Result<(), String> {
    check_grammar(
        value,
        128,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || b"._:@+-".contains(&b),
        "[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}",
    )
}

fn check_channel(value: &str) -> Result<(), String> {
    check_grammar(
        value,
        64,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b),
        "[a-z0-9][a-z0-9._-]{0,63}",
    )
}

/// Names people give to update groups and approval rules.
fn check_label(value: &str) -> Result<(), String> {
    check_grammar(
        value,
        64,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || b"._-".contains(&b),
        "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    )
}

/// A file name as shown to people and used when publishing: one path component, printable,
/// never "." or "..". The store never uses it; it names files by digest.
fn check_file_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty".into());
    }
    if value.len() > 255 {
        return Err("longer than 255 bytes".into());
    }
    if value == "." || value == ".." {
        return Err("not a file name".into());
    }
    if let Some(c) =
        value.chars().find(|c| c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'))
    {
        return Err(format!("character {c:?} not allowed in a file name"));
    }
    if value.ends_with(' ') || value.ends_with('.') {
        return Err("must not end with a space or a dot".into());
    }
    if let Some(c) = value.chars().find(|c| crate::base::text::is_invisible_format(*c)) {
        return Err(format!(
            "character U+{:04X} not allowed in a file name: it changes how the name is shown",
            c as u32
        ));
    }
    Ok(())
}

/// A computer's name as its inventories give it: a NetBIOS name or a DNS host name
/// (`PC-0042`, `pc-0042.branch.example`): letters, digits, `-`, `_` and dots between labels,
/// at most 253 characters. Compared without letter case, as Windows compares them.
fn check_computer_name(value: &str) -> Result<(), String> {
    check_grammar(
        value,
        253,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || b"._-".contains(&b),
        "[A-Za-z0-9][A-Za-z0-9._-]{0,252}",
    )?;
    if value.contains("..") || value.ends_with('.') {
        return Err("an empty label between dots".into());
    }
    Ok(())
}

fn check_bundle_id(value: &str) -> Result<(), String> {
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err("expected 32 lower-case hexadecimal digits".into())
    }
}

string_name!(
    /// A stable update id: `[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}`. Never used as a path.
    UpdateId,
    "update id",
    check_update_id
);
string_name!(
    /// A channel name: `[a-z0-9][a-z0-9._-]{0,63}`.
    Channel,
    "channel",
    check_channel
);
string_name!(
    /// The name of an update file as its vendor publishes it (`windows10.0-kb5034122-x64.msu`).
    FileName,
    "file name",
    check_file_name
);
string_name!(
    /// A bundle's random id: 32 lower-case hex digits.
    BundleId,
    "bundle id",
    check_bundle_id
);

string_name!(
    /// An update group's name (`tested-on-servers`): `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
    GroupName,
    "group name",
    check_label
);
string_name!(
    /// A distribution point's name (`branch-osaka`), same grammar as a group's.
    DpName,
    "distribution point name",
    check_label
);
string_name!(
    /// An approval rule's name (`approve-security-after-7-days`), same grammar as a group's.
    RuleName,
    "rule name",
    check_label
);

string_name!(
    /// A computer group's name (`pilot`, `branch-osaka`), same grammar as an update group's.
    ComputerGroupName,
    "computer group name",
    check_label
);
string_name!(
    /// A computer's name; see `check_computer_name`.
    ComputerName,
    "computer name",
    check_computer_name
);

impl Channel {
    pub fn default_channel() -> Channel {
        Channel("default".to_string())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// A digest of `$len` bytes, parsed from hex digits of either case (vendors publish upper
/// case) and always shown in lower case.
macro_rules! digest_name {
    ($(#[$doc:meta])* $name:ident, $len:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub fn hex(&self) -> String {
                hex(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                unhex::<$len>(s)
                    .map($name)
                    .ok_or_else(|| invalid($kind, s, format!("expected {} hexadecimal digits", $len * 2)))
            }
        }

        string_conversions!($name);
    };
}

digest_name!(
    /// A SHA-256 digest: the form used in entry names and store paths.
    Sha256,
    32,
    "SHA-256 digest"
);

impl Sha256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256 {
        use sha2::Digest;
        Sha256(sha2::Sha256::digest(bytes).into())
    }
}

digest_name!(
    /// A SHA-1 digest, as Microsoft names its update files. Never trusted alone: a file known
    /// by SHA-1 is checked against it when downloaded and then carried by its SHA-256.
    Sha1,
    20,
    "SHA-1 digest"
);

/// A minisign key id: 8 bytes, shown as minisign shows it (the little-endian u64 in upper-case
/// hex), so that ids printed by ferry and by `minisign` are the same string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() != 16 {
            return Err(invalid("key id", s, "expected 16 hexadecimal digits"));
        }
        u64::from_str_radix(s, 16)
            .map(|v| KeyId(v.to_le_bytes()))
            .map_err(|_| invalid("key id", s, "expected 16 hexadecimal digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: FromStr>(good: &[&str], bad: &[&str]) {
        for g in good {
            assert!(g.parse::<T>().is_ok(), "{g:?} should be accepted");
        }
        for b in bad {
            assert!(b.parse::<T>().is_err(), "{b:?} should be refused");
        }
    }

    #[test]
    fn update_ids() {
        let longest = "a".repeat(128);
        let too_long = "a".repeat(129);
        check::<UpdateId>(
            &["KB5034122", "7zip.7zip@24.09", "msrc:2024-Jan:KB1+x", &longest],
            &["", "../x", "a/b", "a\\b", ".hidden", "-x", "a b", "a\0b", &too_long, "é"],
        );
    }

    #[test]
    fn channels() {
        check::<Channel>(&["default", "win10.x64", "a-b_c"], &["Default", "", "-a", "a/b", "a b"]);
    }

    #[test]
    fn file_names() {
        check::<FileName>(
            &["windows10.0-kb5034122-x64.msu", "7z2409-x64.exe", "Notepad++ 8.7.msi"],
            &[
                "",
                ".",
                "..",
                "a/b",
                "a\\b",
                "C:x",
                "a\u{1b}[31m",
                "x.",
                "x ",
                "patch-\u{202E}fdp.msu",
                "a\u{200B}b.msu",
            ],
        );
    }

    #[test]
    fn digests_accept_either_case_and_print_lower() {
        let upper = "E35E4374100B52E697E002859AEFDD5533BCBF4118E5D2210FAE6DE318947C41";
        let d: Sha256 = upper.parse().unwrap();
        assert_eq!(d.to_string(), upper.to_lowercase());
        check::<Sha256>(&[], &["", "abc", &"g".repeat(64), &"a".repeat(63)]);
    }

    #[test]
    fn key_ids_print_like_minisign() {
        let id = KeyId([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
        assert_eq!(id.to_string(), "0807060504030201");
        assert_eq!("0807060504030201".parse::<KeyId>().unwrap(), id);
    }
}
