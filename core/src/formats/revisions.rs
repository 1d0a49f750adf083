//! The revision rules: which metadata of an update the list keeps when the same update
//! arrives again, from a bundle, a registration or another server's CSV.
//!
//! - A revision never goes backwards: an older or equal revision with other metadata is
//!   ignored, the list keeps what it has.
//! - Metadata that came signed (in a bundle, or registered here) is never replaced from a
//!   CSV, at any revision; metadata that came only by CSV gives way to signed metadata,
//!   whatever revision the CSV claimed.
//! - A new revision that changes any file's digest sends the approval back to undefined: a
//!   person approved other bytes.

use super::model::Update;

/// Where metadata in the list came from, as the registry records it: `bundle`, `manual`
/// (registered here) or `csv` (another server's list, unsigned by a bundle key).
pub const FROM_CSV: &str = "csv";

/// What the list holds of an update already.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub revision: u32,
    /// The metadata as stored ([`Update::stored_json`]).
    pub metadata: &'a str,
    pub origin: &'a str,
}

/// What merging an update's metadata does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The list does not hold the update: it is added.
    New,
    /// The same revision with the same metadata.
    Unchanged,
    /// Older, conflicting, or unsigned over signed: the list keeps what it has.
    Ignored,
    /// The list takes the new metadata; `files_changed` resets the approval.
    Revise { files_changed: bool },
}

/// Judges `incoming` (stored as `metadata`, from `origin`) against what the list holds.
pub fn judge(held: Option<Held<'_>>, incoming: &Update, metadata: &str, origin: &str) -> Merge {
    let Some(held) = held else { return Merge::New };
    if incoming.revision == held.revision && held.metadata == metadata {
        return Merge::Unchanged;
    }
    let unsigned_here = held.origin == FROM_CSV;
    if origin == FROM_CSV && !unsigned_here {
        return Merge::Ignored;
    }
    let signed_over_unsigned = origin != FROM_CSV && unsigned_here;
    if incoming.revision > held.revision || signed_over_unsigned {
        let old: Option<Update> = serde_json::from_str(held.metadata).ok();
        let files_changed = old.is_none_or(|o| o.file_digests() != incoming.file_digests());
        return Merge::Revise { files_changed };
    }
    Merge::Ignored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::names::Sha256;

    fn update(revision: u32, title: &str, digest: u8) -> (Update, String) {
        let mut u = crate::formats::model::tests::sample();
        u.revision = revision;
        u.title = title.into();
        u.files[0].sha256 = Sha256([digest; 32]);
        let json = u.stored_json();
        (u, json)
    }

    fn held<'a>(stored: &'a (Update, String), origin: &'a str) -> Option<Held<'a>> {
        Some(Held { revision: stored.0.revision, metadata: &stored.1, origin })
    }

    #[test]
    fn revisions_only_go_forward() {
        let two = update(2, "second", 1);
        assert_eq!(judge(None, &two.0, &two.1, "bundle"), Merge::New);
        assert_eq!(judge(held(&two, "bundle"), &two.0, &two.1, "bundle"), Merge::Unchanged);
        let one = update(1, "first", 1);
        assert_eq!(judge(held(&two, "bundle"), &one.0, &one.1, "bundle"), Merge::Ignored);
        let same_revision_other_text = update(2, "conflicting", 1);
        assert_eq!(
            judge(held(&two, "bundle"), &same_revision_other_text.0, &same_revision_other_text.1, "bundle"),
            Merge::Ignored
        );
        let three = update(3, "third", 1);
        assert_eq!(judge(held(&two, "bundle"), &three.0, &three.1, "bundle"), Merge::Revise { files_changed: false });
        let three_new_files = update(3, "third", 9);
        assert_eq!(
            judge(held(&two, "bundle"), &three_new_files.0, &three_new_files.1, "manual"),
            Merge::Revise { files_changed: true }
        );
    }

    #[test]
    fn a_csv_never_replaces_signed_metadata_and_gives_way_to_it() {
        let signed = update(2, "signed", 1);
        let csv_later = update(9, "from a spreadsheet", 1);
        assert_eq!(judge(held(&signed, "bundle"), &csv_later.0, &csv_later.1, FROM_CSV), Merge::Ignored);
        assert_eq!(judge(held(&signed, "manual"), &csv_later.0, &csv_later.1, FROM_CSV), Merge::Ignored);
        // Held from a CSV at a high revision: a signed bundle's lower revision still wins.
        assert_eq!(
            judge(held(&csv_later, FROM_CSV), &signed.0, &signed.1, "bundle"),
            Merge::Revise { files_changed: false }
        );
        // Between CSVs, the revision rule holds.
        let csv_older = update(3, "older", 1);
        assert_eq!(judge(held(&csv_later, FROM_CSV), &csv_older.0, &csv_older.1, FROM_CSV), Merge::Ignored);
    }
}
