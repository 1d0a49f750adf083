//! Making untrusted text safe to show on a terminal, and sizes readable.
//!
//! Titles, file names and comments come from bundles and catalogs that nobody on the offline
//! side wrote. Before they reach a terminal, escape sequences and other control characters are
//! removed, so a hostile title cannot move the cursor, rewrite earlier lines or set the window
//! title.

use std::borrow::Cow;

/// Invisible format characters that change how the text around them is shown: the
/// bidirectional controls (`patch-<U+202E>fdp.msu` shows as `patch-usm.pdf`) and the
/// zero-width ones. Names from outside may not hold them; displayed text shows them escaped.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Removes ANSI escape sequences (CSI, OSC and two-byte escapes) and every other control
/// character except tab, and shows invisible format characters as `<U+202E>`, so that
/// nothing hidden reorders or hides what a person reads.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| (c.is_control() && c != '\t') || is_invisible_format(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, APC, PM, SOS: up to BEL or ESC \
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c if is_invisible_format(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A byte count for people: 1.5 MiB (powers of 1024).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn strips_escape_sequences_and_controls() {
        for (input, expected) in [
            ("plain title", "plain title"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("a\u{1b}]0;owned\u{7}b", "ab"),
            ("a\u{1b}]8;;http://x\u{1b}\\link", "alink"),
            ("line\rover\nwrite\u{8}", "lineoverwrite"),
            ("x\u{9b}2Jy", "xy"),
            ("tab\tkept", "tab\tkept"),
            ("patch-\u{202E}fdp.msu", "patch-<U+202E>fdp.msu"),
            ("CVE-2024-1234\u{200B}", "CVE-2024-1234<U+200B>"),
        ] {
            assert_eq!(for_terminal(input), expected, "{input:?}");
        }
    }
}
