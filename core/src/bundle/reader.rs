//! Opens a bundle as untrusted input and checks it step by step: the container and the raw
//! manifest and signature files ([`SignedBundle::open`]); the signatures against the trust
//! store, and only then the manifest's JSON ([`SignedBundle::authenticate`]); the entry list
//! against the manifest ([`Bundle::check_entries`]); and each payload's bytes
//! ([`Bundle::copy_payloads`]).
//!
//! On the offline side the manifest's JSON is parsed only after a trusted key's signature
//! over its exact bytes has verified, so unauthenticated input never reaches the parser.
//! `fetch inspect` parses without authenticating, and says so. Nothing here decides what is
//! trusted or touches the store.

use std::collections::BTreeSet;
use std::path::Path;

use crate::base::error::{Error, Result};
use crate::base::names::{KeyId, Sha256};
use crate::base::progress::Meter;
use crate::bundle::container::Container;
use crate::bundle::copy::{self, BlockSink, Discard, Job};
use crate::formats::manifest::{
    MANIFEST_ENTRY, MAX_MANIFEST_BYTES, Manifest, Payload, SIGNATURE_ENTRY_PREFIX, SIGNATURE_ENTRY_SUFFIX,
    TrustedComment,
};
use crate::formats::minisign::{LegacySignatures, SignatureFile, VerifyFailure};
use crate::formats::rotation::{
    self, MAX_ROTATION_BYTES, ROTATION_ENTRY, ROTATION_SIGNATURE_PREFIX, ROTATION_SIGNATURE_SUFFIX, Rotation,
    SignedStatement, Verdict,
};
use crate::formats::trust::{Allowed, TrustStore};

/// Largest signature file read.
const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;
/// Most signature entries one bundle may carry.
const MAX_SIGNATURES: usize = 64;

/// A bundle whose container is sound, with its manifest bytes and parsed signature files.
/// Nothing about it is trusted and the manifest is not parsed yet.
pub struct SignedBundle {
    container: Container,
    manifest_bytes: Vec<u8>,
    manifest_digest: Sha256,
    signatures: Vec<(String, SignatureFile)>,
    /// A key rotation statement the bundle carries, with its entry names.
    rotation: Option<(SignedStatement, Vec<String>)>,
}

/// A bundle whose manifest has been parsed; authenticated or not, as its maker knows.
pub struct Bundle {
    container: Container,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    /// SHA-256 of the manifest bytes.
    pub manifest_digest: Sha256,
    /// (entry name, signature), in entry order.
    pub signatures: Vec<(String, SignatureFile)>,
    /// Entry names of the key rotation statement and its signatures, if carried.
    rotation_entries: Vec<String>,
}

/// What the signature check established.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    /// Which volume of the set this zip is, as the signed trusted comments say.
    pub volume: u32,
    /// The trusted keys whose signatures verified, each once.
    pub signers: Vec<KeyId>,
    /// A rotation statement the bundle carried and that was verified and applied (in
    /// memory) before its manifest's signatures were checked; the caller records it.
    pub rotation: Option<Rotation>,
}

/// Reads the signature files named `<prefix><KEY ID><suffix>`, each under a size cap; the
/// name must match the key id inside.
fn read_signatures(container: &mut Container, prefix: &str, suffix: &str) -> Result<Vec<(String, SignatureFile)>> {
    let path = container.path().to_path_buf();
    let names: Vec<String> =
        container.entries().iter().filter(|e| e.name.starts_with(prefix)).map(|e| e.name.clone()).collect();
    if names.len() > MAX_SIGNATURES {
        return Err(Error::Entries {
            path,
            reason: format!("{} signature entries under {prefix}; at most {MAX_SIGNATURES}", names.len()),
        });
    }
    let mut signatures = Vec::new();
    for name in names {
        let sig_error = |reason: String| Error::SignatureFile { path: path.clone(), entry: name.clone(), reason };
        let named_id = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|id| id.parse::<KeyId>().ok().filter(|k| k.to_string() == id))
            .ok_or_else(|| sig_error(format!("not named {prefix}<KEY ID>{suffix}")))?;
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
    Ok(signatures)
}

impl SignedBundle {
    pub fn open(path: &Path) -> Result<SignedBundle> {
        let mut container = Container::open(path)?;
        let manifest_bytes = container.read_small(MANIFEST_ENTRY, MAX_MANIFEST_BYTES)?.ok_or_else(|| {
            Error::Entries { path: path.to_path_buf(), reason: format!("{MANIFEST_ENTRY} is missing") }
        })?;
        let signatures = read_signatures(&mut container, SIGNATURE_ENTRY_PREFIX, SIGNATURE_ENTRY_SUFFIX)?;
        let rotation = match container.read_small(ROTATION_ENTRY, MAX_ROTATION_BYTES)? {
            None => None,
            Some(bytes) => {
                let sigs = read_signatures(&mut container, ROTATION_SIGNATURE_PREFIX, ROTATION_SIGNATURE_SUFFIX)?;
                let mut names: Vec<String> = sigs.iter().map(|(n, _)| n.clone()).collect();
                names.push(ROTATION_ENTRY.to_string());
                Some((SignedStatement { bytes, signatures: sigs.into_iter().map(|(_, s)| s).collect() }, names))
            }
        };
        let manifest_digest = Sha256::of(&manifest_bytes);
        Ok(SignedBundle { container, manifest_bytes, manifest_digest, signatures, rotation })
    }

    pub fn path(&self) -> &Path {
        self.container.path()
    }

    /// The first signature's trusted comment, unverified: where the bundle claims to belong,
    /// for ordering a pile of bundles before each is verified.
    pub fn claimed_trusted_comment(&self) -> Option<TrustedComment> {
        self.signatures.iter().find_map(|(_, s)| TrustedComment::parse(&s.trusted_comment).ok())
    }

    fn parsed(self) -> Result<Bundle> {
        let manifest = Manifest::parse(&self.manifest_bytes)
            .map_err(|reason| Error::Manifest { path: self.container.path().to_path_buf(), reason })?;
        Ok(Bundle {
            container: self.container,
            manifest_bytes: self.manifest_bytes,
            manifest,
            manifest_digest: self.manifest_digest,
            signatures: self.signatures,
            rotation_entries: self.rotation.map(|(_, names)| names).unwrap_or_default(),
        })
    }

    /// Parses the manifest without checking any signature: for showing a bundle to a person,
    /// never for accepting it.
    pub fn parse_unverified(self) -> Result<Bundle> {
        self.parsed()
    }

    /// Checks the signatures against `trust`, then parses the manifest and checks that it
    /// agrees with the signed trusted comments.
    ///
    /// A signature counts when its key is trusted for the channel its trusted comment names
    /// and both its signatures verify; a signature by such a key that does not verify refuses
    /// the bundle. Every counted signature must name the same bundle, and at least the
    /// channel's threshold of distinct keys must have signed.
    ///
    /// A key rotation statement the bundle carries is judged first, against `trust`; if it
    /// is new and sound, the manifest's signatures are checked against the trust it creates.
    pub fn authenticate(self, trust: &TrustStore, allowed: Allowed) -> Result<(Bundle, SignatureCheck)> {
        let legacy = if allowed.legacy_signatures { LegacySignatures::Allow } else { LegacySignatures::Refuse };
        let path = self.path().to_path_buf();
        let mut rotation = None;
        let rotated;
        let trust = match &self.rotation {
            None => trust,
            Some((signed, _)) => match rotation::judge(signed, trust, allowed.demo_key) {
                Ok(Verdict::AlreadyApplied) => trust,
                Ok(Verdict::Apply(applied)) => {
                    rotated =
                        applied.apply_to(trust).map_err(|reason| Error::Rotation { path: path.clone(), reason })?;
                    rotation = Some(applied);
                    &rotated
                }
                Err(reason) => return Err(Error::Rotation { path, reason }),
            },
        };
        let mut counted: Vec<(KeyId, TrustedComment)> = Vec::new();
        let mut claimed_channel: Option<String> = None;
        for (entry, sig) in &self.signatures {
            // The comment is read before it is authenticated only to find the channel whose
            // key must verify it; a comment edited to name another channel fails there.
            let Ok(claimed) = TrustedComment::parse(&sig.trusted_comment) else { continue };
            claimed_channel.get_or_insert_with(|| claimed.channel.clone());
            let Some(key) = trust.key(&claimed.channel, &sig.key_id) else { continue };
            match key.verify_with(&self.manifest_bytes, sig, legacy) {
                Ok(()) => {}
                Err(VerifyFailure::Legacy) => {
                    return Err(Error::LegacySignature { path, key_id: key.key_id });
                }
                Err(VerifyFailure::Message | VerifyFailure::KeyIdMismatch) => {
                    return Err(Error::ManifestAltered { path, key_id: key.key_id });
                }
                Err(VerifyFailure::TrustedComment) => {
                    return Err(Error::TrustedCommentAltered { path, key_id: key.key_id });
                }
            }
            if claimed.volume == 0 || claimed.volume > claimed.volumes {
                return Err(Error::SignatureFile {
                    path,
                    entry: entry.clone(),
                    reason: format!("volume {}/{} does not exist", claimed.volume, claimed.volumes),
                });
            }
            if let Some((_, first)) = counted.first()
                && let Some((field, value, other)) = claimed.disagreement(first)
            {
                return Err(Error::TrustedCommentMismatch {
                    path,
                    key_id: key.key_id,
                    field,
                    comment_value: value,
                    manifest_value: format!("{other} (as another signature says)"),
                });
            }
            if let Some((_, first)) = counted.first()
                && first.volume != claimed.volume
            {
                return Err(Error::TrustedCommentMismatch {
                    path,
                    key_id: key.key_id,
                    field: "volume",
                    comment_value: claimed.volume.to_string(),
                    manifest_value: format!("{} (as another signature says)", first.volume),
                });
            }
            if !counted.iter().any(|(k, _)| *k == key.key_id) {
                counted.push((key.key_id, claimed));
            }
        }

        let channel = counted.first().map(|(_, c)| c.channel.clone()).or(claimed_channel);
        let channel_name = channel.clone().unwrap_or_else(|| "(none named)".into());
        let threshold = trust.threshold(&channel_name);
        if counted.is_empty() || counted.len() < threshold {
            return Err(Error::Untrusted {
                path,
                channel: channel_name.clone(),
                valid: counted.len(),
                threshold,
                signers: list(self.signatures.iter().map(|(_, s)| s.key_id)),
                trusted: list(trust.key_ids(&channel_name).into_iter()),
            });
        }

        let (key_id, comment) = counted[0].clone();
        let volume = comment.volume;
        let signers = counted.into_iter().map(|(k, _)| k).collect();
        let bundle = self.parsed()?;
        if let Some((field, comment_value, manifest_value)) =
            comment.disagreement(&bundle.manifest.trusted_comment(volume))
        {
            return Err(Error::TrustedCommentMismatch { path, key_id, field, comment_value, manifest_value });
        }
        Ok((bundle, SignatureCheck { volume, signers, rotation }))
    }
}

impl Bundle {
    pub fn path(&self) -> &Path {
        self.container.path()
    }

    /// The zip must hold exactly the manifest, its signatures and this volume's payloads.
    pub fn check_entries(&self, volume: u32) -> Result<()> {
        let path = self.path();
        let refuse = |reason: String| Error::Entries { path: path.to_path_buf(), reason };
        let payloads: Vec<&Payload> = self.manifest.payloads_in(volume).collect();
        let mut expected: BTreeSet<&str> = payloads.iter().map(|p| p.entry.as_str()).collect();
        expected.insert(MANIFEST_ENTRY);
        expected.extend(self.signatures.iter().map(|(name, _)| name.as_str()));
        expected.extend(self.rotation_entries.iter().map(String::as_str));
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

    /// Reads `payloads` (of this bundle's manifest) on every core, checking each one's
    /// CRC-32, size and SHA-256, and copies those for which `open` gives a sink (see
    /// [`copy`]). Returns, in order, what each copied payload's sink left (None for the
    /// payloads only checked), or refuses the bundle naming the first payload that failed.
    pub fn copy_payloads<S: BlockSink>(
        &self,
        payloads: &[Payload],
        meter: &Meter<'_>,
        open: impl Fn(&Payload) -> Result<Option<S>> + Sync,
    ) -> Result<Vec<Option<S::Done>>> {
        let mut jobs = Vec::with_capacity(payloads.len());
        for p in payloads {
            let entry = self.container.entry(&p.entry).ok_or_else(|| Error::Entries {
                path: self.path().to_path_buf(),
                reason: format!("payload {} is missing", p.entry),
            })?;
            jobs.push(Job { entry, sha256: p.sha256, size: p.size });
        }
        copy::copy_all(
            &self.container,
            &jobs,
            meter,
            |i| open(&payloads[i]),
            |i| format!("entry {}", payloads[i].entry),
        )
    }

    /// Reads and checks every payload of this volume, copying nothing.
    pub fn check_payloads(&self, payloads: &[Payload], meter: &Meter<'_>) -> Result<()> {
        self.copy_payloads::<Discard>(payloads, meter, |_| Ok(None)).map(|_| ())
    }
}

fn list(ids: impl Iterator<Item = KeyId>) -> String {
    let v: Vec<String> = ids.map(|k| k.to_string()).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

#[cfg(test)]
mod hostile_bytes {
    //! No bytes make the reader panic: a valid bundle, damaged at random places (bit flips,
    //! overwritten bytes, a cut), goes through every check `ingest verify` makes, and each
    //! must end in a value or an error.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::base::clock::Timestamp;
    use crate::base::names::Channel;
    use crate::bundle::writer::BundleWriter;
    use crate::formats::manifest::{BundleKind, DescribedFile, Layout, file_entry_name};
    use crate::formats::minisign::SecretKey;
    use crate::formats::model::Update;

    /// A signed two-update bundle, as bytes, and a trust store that accepts it.
    fn sample() -> (Vec<u8>, TrustStore) {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let bodies: Vec<Vec<u8>> = vec![b"first update file".repeat(40), b"second".repeat(7)];
        let mut updates = Vec::new();
        let mut payloads = Vec::new();
        let mut writer = BundleWriter::create(&dir.path().join("b.zip")).unwrap();
        for (i, body) in bodies.iter().enumerate() {
            let digest = Sha256::of(body);
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, body).unwrap();
            writer.add_entry(&file_entry_name(&digest), &path, 0, body.len() as u64, Some(&digest)).unwrap();
            updates.push(
                serde_json::from_value::<Update>(serde_json::json!({
                    "id": format!("U{i}"), "revision": 1, "title": "t", "vendor": "v", "product": "p",
                    "version": "1", "classification": "application", "release_date": "2024-01-09",
                    "files": [{"name": format!("f{i}.exe"), "url": "x", "sha256": digest, "size": body.len()}]
                }))
                .unwrap(),
            );
            payloads.push(Payload {
                entry: file_entry_name(&digest),
                sha256: digest,
                size: body.len() as u64,
                volume: 1,
                chunk_of: None,
            });
        }
        let manifest = Manifest {
            format: 1,
            bundle_id: crate::base::random::bundle_id().unwrap(),
            channel: Channel::default_channel(),
            sequence: 1,
            created: Timestamp::now(),
            expires: None,
            kind: BundleKind::Full,
            relies_on: vec![],
            generator: String::new(),
            files: payloads.iter().map(|p| DescribedFile { sha256: p.sha256, size: p.size }).collect(),
            updates,
            layout: Layout { volumes: 1, payloads },
            scan_catalog: None,
            left_out: Vec::new(),
        };
        let bytes = manifest.to_json();
        let sig = key.sign(&bytes, &manifest.trusted_comment(1).to_string(), "test").unwrap();
        let (path, _) = writer.finish(&bytes, &[sig]).unwrap();
        let trust = TrustStore::new(vec![(Channel::default_channel(), key.public_key())], BTreeMap::new());
        (std::fs::read(path).unwrap(), trust)
    }

    /// Every entry's name and bytes, as the zip crate reads them (`None` if it cannot).
    fn entries(zip_bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).ok()?;
        let mut out = Vec::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).ok()?;
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).ok()?;
            out.push((entry.name().ok()?.to_string(), data));
        }
        out.sort();
        Some(out)
    }

    /// `bytes` as a bundle file in a temporary directory (kept while the first is held).
    fn written(bytes: impl AsRef<[u8]>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// Every check of `ingest verify`, in its order.
    fn verify(path: &Path, trust: &TrustStore) -> Result<()> {
        let (bundle, sig) = SignedBundle::open(path)?.authenticate(trust, Allowed::default())?;
        bundle.check_entries(sig.volume)?;
        let payloads: Vec<Payload> = bundle.manifest.payloads_in(sig.volume).cloned().collect();
        let meter =
            Meter::start(&crate::base::progress::Unwatched, crate::base::progress::Task::Verify, String::new(), 0, 0);
        bundle.check_payloads(&payloads, &meter)
    }

    /// One key's signature twice cannot reach a threshold of two. A bundle cannot carry it
    /// twice (entries are named by key id, and a name twice is refused by the container), so
    /// the count is reached here, past the container, by adding the copy in memory.
    #[test]
    fn one_keys_signature_counted_twice_does_not_reach_the_threshold() {
        let (bytes, trust) = sample();
        let (_dir, path) = written(bytes);
        let other = SecretKey::generate().unwrap().public_key();
        let channel = Channel::default_channel();
        let mut keys: Vec<(Channel, crate::formats::minisign::PublicKey)> =
            trust.keys_of("default").into_iter().map(|k| (channel.clone(), k.clone())).collect();
        keys.push((channel.clone(), other));
        let two_of_two = TrustStore::new(keys, BTreeMap::from([(channel, 2)]));
        let mut signed = SignedBundle::open(&path).unwrap();
        let copy = signed.signatures[0].clone();
        signed.signatures.push((format!("{}-again", copy.0), copy.1));
        let Err(err) = signed.authenticate(&two_of_two, Allowed::default()) else {
            panic!("accepted with one key's signature counted twice");
        };
        assert!(matches!(err, Error::Untrusted { valid: 1, threshold: 2, .. }), "{err}");
    }

    #[test]
    fn the_sample_is_accepted() {
        let (bytes, trust) = sample();
        let (_dir, path) = written(bytes);
        verify(&path, &trust).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn damaged_bundles_are_refused_without_panicking(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let (mut bytes, trust) = sample();
            let original = bytes.clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some(cut) = cut {
                let keep = cut.index(bytes.len());
                bytes.truncate(keep);
            }
            let (_dir, path) = written(&bytes);
            // Refused, unless the damage missed every byte that is signed or hashed (a
            // timestamp in a header, say): then the entries read the same as the original's.
            if verify(&path, &trust).is_ok() {
                prop_assert_eq!(entries(&bytes), entries(&original), "accepted with other content");
            }
        }

        #[test]
        fn arbitrary_manifests_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(Manifest::parse(&bytes).is_err());
        }
    }
}
