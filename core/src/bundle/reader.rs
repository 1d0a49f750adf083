//! Opens a bundle as untrusted input and checks it step by step: container, manifest and
//! signature files ([`Bundle::open`]), signatures against trusted keys
//! ([`Bundle::check_signatures`]), the entry list against the manifest
//! ([`Bundle::check_entries`]), and each payload's bytes ([`Bundle::read_payload`]).
//!
//! Nothing here decides what is trusted or touches the store; `ingest` composes these steps
//! in the fixed order the invariants require.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use crate::bundle::HashingWriter;
use crate::bundle::container::Container;
use crate::error::{Error, Result};
use crate::manifest::{
    MANIFEST_ENTRY, MAX_MANIFEST_BYTES, Manifest, Payload, SIGNATURE_ENTRY_PREFIX, SIGNATURE_ENTRY_SUFFIX,
    TrustedComment,
};
use crate::minisign::{PublicKey, SignatureFile, VerifyFailure};
use crate::names::{KeyId, Sha256};

/// Largest signature file read.
const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;
/// Most signature entries one bundle may carry.
const MAX_SIGNATURES: usize = 64;

/// A bundle whose container is sound and whose manifest parses; nothing about it is trusted.
pub struct Bundle {
    container: Container,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    /// SHA-256 of the manifest bytes.
    pub manifest_digest: Sha256,
    /// (entry name, signature), in entry order.
    pub signatures: Vec<(String, SignatureFile)>,
}

/// What the signature check established.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    /// Which volume of the set this zip is, as the signed trusted comments say.
    pub volume: u32,
    /// The trusted keys whose signatures verified, each once.
    pub signers: Vec<KeyId>,
}

impl Bundle {
    pub fn open(path: &Path) -> Result<Bundle> {
        let mut container = Container::open(path)?;
        let manifest_bytes = container.read_small(MANIFEST_ENTRY, MAX_MANIFEST_BYTES)?.ok_or_else(|| {
            Error::Entries { path: path.to_path_buf(), reason: format!("{MANIFEST_ENTRY} is missing") }
        })?;
        let manifest =
            Manifest::parse(&manifest_bytes).map_err(|reason| Error::Manifest { path: path.to_path_buf(), reason })?;
        let signature_entries: Vec<String> = container
            .entries()
            .iter()
            .filter(|e| e.name.starts_with(SIGNATURE_ENTRY_PREFIX))
            .map(|e| e.name.clone())
            .collect();
        if signature_entries.len() > MAX_SIGNATURES {
            return Err(Error::Entries {
                path: path.to_path_buf(),
                reason: format!("{} signature entries; at most {MAX_SIGNATURES}", signature_entries.len()),
            });
        }
        let mut signatures = Vec::new();
        for name in signature_entries {
            let sig_error =
                |reason: String| Error::SignatureFile { path: path.to_path_buf(), entry: name.clone(), reason };
            let named_id = name
                .strip_prefix(SIGNATURE_ENTRY_PREFIX)
                .and_then(|n| n.strip_suffix(SIGNATURE_ENTRY_SUFFIX))
                .and_then(|id| id.parse::<KeyId>().ok().filter(|k| k.to_string() == id))
                .ok_or_else(|| sig_error("not named signatures/<KEY ID>.minisig".into()))?;
            let bytes = container.read_small(&name, MAX_SIGNATURE_BYTES)?.expect("listed entry");
            let text = String::from_utf8(bytes).map_err(|_| sig_error("not UTF-8 text".into()))?;
            let sig = SignatureFile::parse(&text).map_err(sig_error)?;
            if sig.key_id != named_id {
                return Err(sig_error(format!(
                    "the entry is named for key {named_id} but the signature is by key {}",
                    sig.key_id
                )));
            }
            signatures.push((name, sig));
        }
        let manifest_digest = Sha256::of(&manifest_bytes);
        Ok(Bundle { container, manifest_bytes, manifest, manifest_digest, signatures })
    }

    pub fn path(&self) -> &Path {
        self.container.path()
    }

    /// Checks the signatures of trusted keys. Every signature by a trusted key must verify
    /// and agree with the manifest; signatures by other keys are not counted. At least
    /// `threshold` distinct trusted keys must have signed.
    pub fn check_signatures(&self, trusted: &[PublicKey], threshold: usize) -> Result<SignatureCheck> {
        let path = self.path().to_path_buf();
        let expected = self.manifest.trusted_comment(0);
        let mut signers: Vec<KeyId> = Vec::new();
        let mut volume = None;
        for (entry, sig) in &self.signatures {
            let Some(key) = trusted.iter().find(|k| k.key_id == sig.key_id) else { continue };
            match key.verify(&self.manifest_bytes, sig) {
                Ok(()) => {}
                Err(VerifyFailure::Message | VerifyFailure::KeyIdMismatch) => {
                    return Err(Error::ManifestAltered { path, key_id: key.key_id });
                }
                Err(VerifyFailure::TrustedComment) => {
                    return Err(Error::TrustedCommentAltered { path, key_id: key.key_id });
                }
            }
            let comment = TrustedComment::parse(&sig.trusted_comment).map_err(|reason| Error::SignatureFile {
                path: path.clone(),
                entry: entry.clone(),
                reason,
            })?;
            if let Some((field, comment_value, manifest_value)) = comment.disagreement(&expected) {
                return Err(Error::TrustedCommentMismatch {
                    path,
                    key_id: key.key_id,
                    field,
                    comment_value,
                    manifest_value,
                });
            }
            if comment.volume == 0 || comment.volume > comment.volumes {
                return Err(Error::TrustedCommentMismatch {
                    path,
                    key_id: key.key_id,
                    field: "volume",
                    comment_value: format!("{}/{}", comment.volume, comment.volumes),
                    manifest_value: format!("1 to {}", expected.volumes),
                });
            }
            match volume {
                Some(v) if v != comment.volume => {
                    return Err(Error::TrustedCommentMismatch {
                        path,
                        key_id: key.key_id,
                        field: "volume",
                        comment_value: comment.volume.to_string(),
                        manifest_value: format!("{v} (as another signature says)"),
                    });
                }
                _ => volume = Some(comment.volume),
            }
            if !signers.contains(&key.key_id) {
                signers.push(key.key_id);
            }
        }
        match volume {
            Some(volume) if signers.len() >= threshold.max(1) => Ok(SignatureCheck { volume, signers }),
            _ => Err(Error::Untrusted {
                path,
                channel: self.manifest.channel.to_string(),
                valid: signers.len(),
                threshold: threshold.max(1),
                signers: list(self.signatures.iter().map(|(_, s)| s.key_id)),
                trusted: list(trusted.iter().map(|k| k.key_id)),
            }),
        }
    }

    /// The zip must hold exactly the manifest, its signatures and this volume's payloads.
    pub fn check_entries(&self, volume: u32) -> Result<()> {
        let path = self.path();
        let refuse = |reason: String| Error::Entries { path: path.to_path_buf(), reason };
        let payloads: Vec<&Payload> = self.manifest.payloads_in(volume).collect();
        let mut expected: BTreeSet<&str> = payloads.iter().map(|p| p.entry.as_str()).collect();
        expected.insert(MANIFEST_ENTRY);
        expected.extend(self.signatures.iter().map(|(name, _)| name.as_str()));
        if let Some(extra) = self.container.entries().iter().find(|e| !expected.contains(e.name.as_str())) {
            return Err(refuse(format!("entry {:?} is not listed in the manifest", extra.name)));
        }
        for p in payloads {
            match self.container.entry(&p.entry) {
                None => return Err(refuse(format!("payload {} of volume {volume} is missing", p.entry))),
                Some(e) if e.size != p.size => {
                    return Err(Error::SizeMismatch {
                        what: format!("entry {}", p.entry),
                        expected: p.size,
                        actual: e.size,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Streams one payload into `out`, hashing it; refuses it, naming the entry, unless its
    /// SHA-256 and size match the manifest. On refusal `out` holds bytes to discard.
    pub fn read_payload(&mut self, payload: &Payload, out: &mut dyn Write) -> Result<()> {
        let entry = self.container.entry(&payload.entry).cloned().ok_or_else(|| Error::Entries {
            path: self.path().to_path_buf(),
            reason: format!("payload {} is missing", payload.entry),
        })?;
        let mut hashing = HashingWriter::new(out);
        self.container.copy_entry(&entry, &mut hashing)?;
        let written = hashing.written();
        let (actual, _) = hashing.finish();
        let what = format!("entry {}", payload.entry);
        if written != payload.size {
            return Err(Error::SizeMismatch { what, expected: payload.size, actual: written });
        }
        if actual != payload.sha256 {
            return Err(Error::DigestMismatch { what, expected: payload.sha256, actual });
        }
        Ok(())
    }
}

fn list(ids: impl Iterator<Item = KeyId>) -> String {
    let v: Vec<String> = ids.map(|k| k.to_string()).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}
