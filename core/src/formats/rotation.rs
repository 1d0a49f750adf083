//! Key rotation and revocation: a signed statement, carried inside a bundle, that replaces the
//! set of keys a channel trusts.
//!
//! A statement names its channel, the trust version it creates (the current one plus one),
//! the complete key set after it and the threshold. It travels as `rotation.json` with one
//! minisign signature per signer in `rotation-signatures/<KEY ID>.minisig`, trusted comment
//! `ferry-rotation v1 channel=<channel> version=<n>`, so an auditor can check it with stock
//! minisign like the manifest.
//!
//! Ingest applies it before it checks the rest of the bundle: the statement must be signed by
//! a threshold of the keys trusted now *and* by every key it adds (a new key proves it can
//! sign); its version must follow the current one exactly. Revoking a key is a statement whose
//! key set leaves it out. A statement already applied, carried again by a later bundle or by
//! another volume of the same set, changes nothing.

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::names::{Channel, KeyId, Sha256};
use crate::formats::minisign::{PublicKey, SecretKey, SignatureFile, VerifyFailure};
use crate::formats::trust::TrustStore;

pub const ROTATION_ENTRY: &str = "rotation.json";
pub const ROTATION_SIGNATURE_PREFIX: &str = "rotation-signatures/";
pub const ROTATION_SIGNATURE_SUFFIX: &str = ".minisig";
/// Largest statement read.
pub const MAX_ROTATION_BYTES: u64 = 64 * 1024;
/// Most keys one statement may list.
const MAX_KEYS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub format: u32,
    pub channel: Channel,
    /// The trust version this statement creates; a channel starts at version 1.
    pub version: u32,
    /// How many distinct keys of the new set must sign each bundle.
    pub threshold: usize,
    /// The complete key set after the rotation, as base64 minisign public keys.
    pub keys: Vec<String>,
    pub created: Timestamp,
}

/// A statement's exact bytes with its signatures, as read from a bundle or a rotation
/// directory.
#[derive(Debug, Clone)]
pub struct SignedStatement {
    pub bytes: Vec<u8>,
    pub signatures: Vec<SignatureFile>,
}

/// What a verified statement does to the trust store.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The statement is new: apply it.
    Apply(Rotation),
    /// The trust store already is what the statement says, or the statement is one applied
    /// before (a later volume of an older set carries it again): nothing to do.
    AlreadyApplied,
}

/// A statement that verified and is to be applied, with the SHA-256 of its exact bytes: the
/// registry records it, so that the same statement carried again later is recognised.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub statement: Statement,
    pub sha256: Sha256,
}

impl Rotation {
    /// The trust store as it is after this rotation: the channel's keys, threshold and version
    /// replaced by the statement's.
    pub fn apply_to(&self, trust: &TrustStore) -> Result<TrustStore, String> {
        let s = &self.statement;
        Ok(trust.with_channel(&s.channel, s.public_keys()?, s.threshold, s.version, self.sha256))
    }
}

impl Statement {
    pub fn new(channel: Channel, version: u32, threshold: usize, keys: &[PublicKey]) -> Result<Statement, String> {
        let statement = Statement {
            format: 1,
            channel,
            version,
            threshold,
            keys: keys.iter().map(PublicKey::to_base64).collect(),
            created: Timestamp::now(),
        };
        statement.check()?;
        Ok(statement)
    }

    /// Parses and checks a statement's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Statement, String> {
        let statement: Statement =
            serde_json::from_slice(bytes).map_err(|e| format!("not a rotation statement: {e}"))?;
        statement.check()?;
        Ok(statement)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != 1 {
            return Err(format!("rotation statement format {} is not supported (this ferry reads 1)", self.format));
        }
        if self.version < 2 {
            return Err(format!("version {} cannot follow a channel's first trust version, 1", self.version));
        }
        let keys = self.public_keys()?;
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(format!("the key set must hold 1 to {MAX_KEYS} keys, not {}", keys.len()));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.key_id == k.key_id) {
                return Err(format!("key {} is listed twice", k.key_id));
            }
        }
        if self.threshold == 0 || self.threshold > keys.len() {
            return Err(format!("threshold {} is impossible with {} keys", self.threshold, keys.len()));
        }
        Ok(())
    }

    pub fn public_keys(&self) -> Result<Vec<PublicKey>, String> {
        self.keys.iter().map(|k| PublicKey::parse(k).map_err(|e| format!("key {k:?}: {e}"))).collect()
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a statement serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn trusted_comment(&self) -> String {
        comment(self.channel.as_str(), self.version)
    }

    /// Signs the statement's bytes with each key.
    pub fn sign(&self, keys: &[&SecretKey]) -> Result<SignedStatement, String> {
        let bytes = self.to_json();
        let signatures = keys
            .iter()
            .map(|k| k.sign(&bytes, &self.trusted_comment(), &format!("ferry rotation signature by key {}", k.key_id)))
            .collect::<Result<_, _>>()?;
        Ok(SignedStatement { bytes, signatures })
    }
}

fn comment(channel: &str, version: u32) -> String {
    format!("ferry-rotation v1 channel={channel} version={version}")
}

/// (channel, version) from a rotation signature's trusted comment.
fn parse_comment(text: &str) -> Option<(String, u32)> {
    let rest = text.strip_prefix("ferry-rotation v1 channel=")?;
    let (channel, version) = rest.split_once(" version=")?;
    Some((channel.to_string(), version.parse().ok()?))
}

/// The entry name of `key_id`'s signature over a statement.
pub fn signature_entry(key_id: &KeyId) -> String {
    format!("{ROTATION_SIGNATURE_PREFIX}{key_id}{ROTATION_SIGNATURE_SUFFIX}")
}

/// Writes a signed statement as a rotation directory: `rotation.json` and
/// `rotation-signatures/<KEY ID>.minisig`, the layout it has inside a bundle, so stock
/// minisign checks it the same way there and here. Signatures already in the directory for
/// the same statement are kept, so officers can sign one after another.
pub fn write_dir(dir: &std::path::Path, signed: &SignedStatement) -> crate::Result<()> {
    use crate::base::error::IoContext;
    let sigs = dir.join(ROTATION_SIGNATURE_PREFIX.trim_end_matches('/'));
    std::fs::create_dir_all(&sigs).at(&sigs)?;
    let statement = dir.join(ROTATION_ENTRY);
    match std::fs::read(&statement) {
        Ok(existing) if existing != signed.bytes => {
            return Err(crate::Error::AlreadyExists {
                what: format!("another rotation statement in {}", statement.display()),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::base::output::write_bytes(&statement, None, &signed.bytes)?;
        }
        Err(e) => return Err(crate::Error::io(&statement, e)),
    }
    for sig in &signed.signatures {
        let path = dir.join(signature_entry(&sig.key_id));
        crate::base::output::write_bytes(&path, None, sig.to_file_string().as_bytes())?;
    }
    Ok(())
}

/// The statement to sign into `dir`: `proposed` when the directory holds none yet, or the
/// one already there (with its creation time) when it says the same, so that officers can
/// sign in turn. A different statement there is refused.
pub fn statement_to_sign(dir: &std::path::Path, proposed: Statement) -> crate::Result<Statement> {
    if !dir.join(ROTATION_ENTRY).exists() {
        return Ok(proposed);
    }
    let existing = Statement::parse(&read_dir(dir)?.bytes).map_err(crate::Error::Invalid)?;
    let same = |s: &Statement| (s.channel.clone(), s.version, s.threshold, s.keys.clone());
    if same(&existing) != same(&proposed) {
        return Err(crate::Error::AlreadyExists {
            what: format!("a different rotation statement in {}", dir.display()),
        });
    }
    Ok(existing)
}

/// Reads a rotation directory written by [`write_dir`].
pub fn read_dir(dir: &std::path::Path) -> crate::Result<SignedStatement> {
    use crate::base::error::IoContext;
    let statement = dir.join(ROTATION_ENTRY);
    let bytes = std::fs::read(&statement).at(&statement)?;
    if bytes.len() as u64 > MAX_ROTATION_BYTES {
        return Err(crate::Error::Invalid(format!("{}: larger than {MAX_ROTATION_BYTES} bytes", statement.display())));
    }
    Statement::parse(&bytes).map_err(|e| crate::Error::Invalid(format!("{}: {e}", statement.display())))?;
    let sigs = dir.join(ROTATION_SIGNATURE_PREFIX.trim_end_matches('/'));
    let mut signatures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&sigs).at(&sigs)?.collect::<std::io::Result<_>>().at(&sigs)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).at(&path)?;
        let sig = SignatureFile::parse(&text).map_err(|e| crate::Error::Invalid(format!("{}: {e}", path.display())))?;
        signatures.push(sig);
    }
    if signatures.is_empty() {
        return Err(crate::Error::Invalid(format!("{}: no signature", sigs.display())));
    }
    Ok(SignedStatement { bytes, signatures })
}

/// Decides whether `signed` may change `trust`; the reason for a refusal otherwise.
pub fn judge(signed: &SignedStatement, trust: &TrustStore, demo_key_allowed: bool) -> Result<Verdict, String> {
    let Some(first) = signed.signatures.first() else {
        return Err("the statement carries no signature".into());
    };
    let (channel, version) = parse_comment(&first.trusted_comment)
        .ok_or_else(|| format!("{:?} is not a rotation trusted comment", first.trusted_comment))?;
    let current_version = trust.version(&channel);
    let current: Vec<&PublicKey> = trust.keys_of(&channel);

    // Which keys' signatures verify; a signature by a known key that fails refuses.
    let verified_by = |keys: &[&PublicKey]| -> Result<Vec<KeyId>, String> {
        let mut ids: Vec<KeyId> = Vec::new();
        for sig in &signed.signatures {
            let Some(key) = keys.iter().find(|k| k.key_id == sig.key_id) else { continue };
            match key.verify(&signed.bytes, sig) {
                Ok(()) => {}
                Err(VerifyFailure::TrustedComment) => {
                    return Err(format!("signature by key {}: the trusted comment was altered", key.key_id));
                }
                Err(VerifyFailure::Legacy) => {
                    return Err(format!(
                        "signature by key {} is in minisign's legacy form (\"Ed\"); statements are signed prehashed",
                        key.key_id
                    ));
                }
                Err(_) => {
                    return Err(format!("signature by key {} does not verify: the statement was altered", key.key_id));
                }
            }
            if parse_comment(&sig.trusted_comment) != Some((channel.clone(), version)) {
                return Err(format!("signature by key {} is for another channel or version", key.key_id));
            }
            if !ids.contains(&key.key_id) {
                ids.push(key.key_id);
            }
        }
        Ok(ids)
    };

    if version > current_version + 1 {
        return Err(format!(
            "channel {channel:?} is at trust version {current_version}; this statement makes version {version}, so version {} was skipped (import the bundle that carries it first)",
            current_version + 1
        ));
    }
    if version <= current_version {
        // Applied before, byte for byte (it verified then): old news, whatever the keys are now.
        if trust.applied(&channel, version) == Some(Sha256::of(&signed.bytes)) {
            return Ok(Verdict::AlreadyApplied);
        }
        // Already applied if it names exactly the keys trusted now and they signed it.
        let statement = Statement::parse(&signed.bytes)?;
        let keys = statement.public_keys()?;
        let same = keys.len() == current.len() && keys.iter().all(|k| current.contains(&k));
        let signed_by = verified_by(&current)?;
        if version == current_version && same && signed_by.len() >= trust.threshold(&channel) {
            return Ok(Verdict::AlreadyApplied);
        }
        return Err(format!(
            "channel {channel:?} is at trust version {current_version}; a statement for version {version} cannot change it"
        ));
    }

    let by_current = verified_by(&current)?;
    let threshold = trust.threshold(&channel);
    if by_current.len() < threshold {
        return Err(format!(
            "signed by {} of the {threshold} keys of channel {channel:?} required (a rotation must be signed by the keys trusted now)",
            by_current.len()
        ));
    }
    // Authenticated by the current keys: now the statement's JSON may be read.
    let statement = Statement::parse(&signed.bytes)?;
    if statement.channel.as_str() != channel || statement.version != version {
        return Err(format!(
            "the trusted comment names channel {channel:?} version {version}, the statement channel {:?} version {}",
            statement.channel.as_str(),
            statement.version
        ));
    }
    let new_keys = statement.public_keys()?;
    if !demo_key_allowed && let Some(demo) = new_keys.iter().find(|k| crate::formats::keys::is_demo_key(k)) {
        return Err(format!(
            "it makes key {} trusted, the public demo key shipped with ferry: anyone can sign with it \
             (--allow-demo-key accepts it, for demonstrations only)",
            demo.key_id
        ));
    }
    let added: Vec<&PublicKey> = new_keys.iter().filter(|k| !current.iter().any(|c| c.key_id == k.key_id)).collect();
    let by_added = verified_by(&added)?;
    if let Some(missing) = added.iter().find(|k| !by_added.contains(&k.key_id)) {
        return Err(format!(
            "new key {} did not sign the statement (a key is added only with its own signature)",
            missing.key_id
        ));
    }
    Ok(Verdict::Apply(Rotation { statement, sha256: Sha256::of(&signed.bytes) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn trust_of(keys: &[&SecretKey], threshold: usize) -> TrustStore {
        let c = Channel::default_channel();
        TrustStore::new(keys.iter().map(|k| (c.clone(), k.public_key())).collect(), BTreeMap::from([(c, threshold)]))
    }

    #[test]
    fn rotation_rules() {
        let (a, b, c) =
            (SecretKey::generate().unwrap(), SecretKey::generate().unwrap(), SecretKey::generate().unwrap());
        let trust = trust_of(&[&a, &b], 2);
        let to_c = Statement::new(Channel::default_channel(), 2, 1, &[c.public_key()]).unwrap();

        let Ok(Verdict::Apply(applied)) = judge(&to_c.sign(&[&a, &b, &c]).unwrap(), &trust, false) else {
            panic!("a sound statement is applied")
        };
        let err = judge(&to_c.sign(&[&a, &c]).unwrap(), &trust, false).unwrap_err();
        assert!(err.contains("signed by 1 of the 2 keys"), "{err}");
        let err = judge(&to_c.sign(&[&a, &b]).unwrap(), &trust, false).unwrap_err();
        assert!(err.contains("did not sign"), "{err}");
        // The same key's signature twice counts once.
        let mut doubled = to_c.sign(&[&a, &c]).unwrap();
        doubled.signatures.push(doubled.signatures[0].clone());
        assert!(judge(&doubled, &trust, false).unwrap_err().contains("signed by 1 of the 2"));
        let skip = Statement::new(Channel::default_channel(), 3, 1, &[c.public_key()]).unwrap();
        assert!(judge(&skip.sign(&[&a, &b, &c]).unwrap(), &trust, false).unwrap_err().contains("skipped"));

        // Applied: the same statement again changes nothing.
        let rotated = applied.apply_to(&trust).unwrap();
        assert!(matches!(judge(&to_c.sign(&[&a, &b, &c]).unwrap(), &rotated, false), Ok(Verdict::AlreadyApplied)));
        assert_eq!(rotated.version("default"), 2);
        assert!(rotated.key("default", &a.key_id).is_none() && rotated.key("default", &c.key_id).is_some());
    }

    #[test]
    fn statement_checks() {
        let a = SecretKey::generate().unwrap();
        let c = Channel::default_channel();
        let refused = |made: Result<Statement, String>, why: &str| {
            let err = made.unwrap_err();
            assert!(err.contains(why), "expected {why:?}: {err}");
        };
        refused(Statement::new(c.clone(), 1, 1, &[a.public_key()]), "cannot follow a channel's first trust version");
        refused(Statement::new(c.clone(), 2, 2, &[a.public_key()]), "threshold 2 is impossible with 1 keys");
        refused(Statement::new(c.clone(), 2, 1, &[]), "the key set must hold 1 to");
        refused(Statement::new(c.clone(), 2, 1, &[a.public_key(), a.public_key()]), "is listed twice");
        let s = Statement::new(c, 2, 1, &[a.public_key()]).unwrap();
        assert_eq!(Statement::parse(&s.to_json()).unwrap(), s);
        assert_eq!(parse_comment(&s.trusted_comment()), Some(("default".into(), 2)));
    }
}
