//! minisign key and signature files, byte for byte as the stock `minisign` tool reads and
//! writes them (see `docs/bundle-format.md` and the shared FORMATS notes).
//!
//! Signatures are the prehashed "ED" form: Ed25519 over BLAKE2b-512 of the message, plus a
//! global signature over that signature and the trusted comment. The legacy "Ed" form is read
//! (so that an auditor's old signatures still verify) but never written. This module knows the
//! file formats and the cryptography, nothing about bundles.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::base::names::KeyId;

const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";
/// minisign refuses trusted comments of this length or more.
pub const MAX_TRUSTED_COMMENT: usize = 8174;

/// scrypt cost that `minisign -G` uses; keys written by ferry use it too.
const DEFAULT_OPSLIMIT: u64 = 33_554_432;
const DEFAULT_MEMLIMIT: u64 = 1_073_741_824;
/// A key file may ask for more scrypt memory than minisign ever does; refuse beyond this.
const MAX_MEMLIMIT: u64 = 2 * DEFAULT_MEMLIMIT;

const SECRET_KEY_LEN: usize = 158;
const ENCRYPTED_PART: std::ops::Range<usize> = 54..158;

/// A public key: the key id and the Ed25519 verifying key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: KeyId,
    pub key: VerifyingKey,
}

/// A secret key, decrypted.
pub struct SecretKey {
    pub key_id: KeyId,
    signing: SigningKey,
}

/// The two signature algorithms of minisign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// "ED": Ed25519 over BLAKE2b-512 of the message (the default since minisign 0.8).
    Prehashed,
    /// "Ed": Ed25519 over the message itself.
    Legacy,
}

/// A parsed `.minisig` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    pub untrusted_comment: String,
    pub algorithm: Algorithm,
    pub key_id: KeyId,
    pub signature: [u8; 64],
    pub trusted_comment: String,
    pub global_signature: [u8; 64],
}

/// The BLAKE2b-512 of a message, what a prehashed signature signs; computed whole
/// ([`Prehash::of`]) or while the message streams ([`Prehasher`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prehash([u8; 64]);

impl Prehash {
    pub fn of(message: &[u8]) -> Prehash {
        Prehash(Blake2b512::digest(message).into())
    }
}

/// Computes a [`Prehash`] of the bytes that pass through it, read or written.
pub struct Prehasher<T> {
    inner: T,
    hasher: Blake2b512,
}

impl<T> Prehasher<T> {
    pub fn new(inner: T) -> Prehasher<T> {
        Prehasher { inner, hasher: Blake2b512::default() }
    }

    pub fn finish(self) -> (T, Prehash) {
        (self.inner, Prehash(self.hasher.finalize().into()))
    }
}

impl<R: std::io::Read> std::io::Read for Prehasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        blake2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Prehasher<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        blake2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The signature names another key.
    KeyIdMismatch,
    /// The signature over the message is wrong: the message changed (or the key is wrong).
    Message,
    /// The global signature is wrong: the trusted comment changed.
    TrustedComment,
    /// A legacy "Ed" signature (over the message itself) where only the prehashed form is
    /// accepted: minisign has written "ED" by default since 0.8, and ferry never writes "Ed".
    Legacy,
}

/// Whether legacy "Ed" signatures are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacySignatures {
    /// Refused (the default everywhere).
    #[default]
    Refuse,
    /// Accepted, when an administrator asked for it (`--allow-legacy-signature`).
    Allow,
}

fn decode_base64_line(line: &str, what: &str) -> Result<Vec<u8>, String> {
    BASE64.decode(line.trim_end()).map_err(|e| format!("{what} is not valid base64 ({e})"))
}

/// Splits a minisign text file into lines, accepting CRLF and an optional final newline.
fn lines(text: &str) -> Vec<&str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
}

fn check_comment(comment: &str, what: &str) -> Result<(), String> {
    if comment.chars().any(|c| c.is_control()) {
        return Err(format!("{what} contains a control character"));
    }
    if comment.len() >= MAX_TRUSTED_COMMENT {
        return Err(format!("{what} is longer than {} bytes", MAX_TRUSTED_COMMENT - 1));
    }
    Ok(())
}

impl PublicKey {
    /// Parses a public key file (`untrusted comment:` line, then the base64 line), or the bare
    /// base64 line as `minisign -P` takes it.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let lines = lines(text.trim_start_matches('\u{feff}'));
        let b64 = match lines.as_slice() {
            [comment, b64] if comment.starts_with(UNTRUSTED) => *b64,
            [b64] => *b64,
            _ => return Err("expected an \"untrusted comment:\" line and a base64 line".into()),
        };
        let raw = decode_base64_line(b64, "the key line")?;
        if raw.len() != 42 {
            return Err(format!("the key is {} bytes, expected 42", raw.len()));
        }
        if &raw[..2] != b"Ed" {
            return Err("not an Ed25519 public key (algorithm is not \"Ed\")".into());
        }
        let key_id = KeyId(raw[2..10].try_into().expect("8 bytes"));
        let bytes: [u8; 32] = raw[10..42].try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 point".to_string())?;
        if key.is_weak() {
            // A point of small order: signatures that "verify" under it can be made without
            // any secret.
            return Err("a weak Ed25519 key (a point of small order): anyone could forge its signatures".into());
        }
        Ok(PublicKey { key_id, key })
    }

    /// The 42-byte key in base64, as on the key file's second line.
    pub fn to_base64(&self) -> String {
        let mut raw = Vec::with_capacity(42);
        raw.extend_from_slice(b"Ed");
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(self.key.as_bytes());
        BASE64.encode(raw)
    }

    /// The whole public key file.
    pub fn to_file_string(&self) -> String {
        format!("{UNTRUSTED}minisign public key {}\n{}\n", self.key_id, self.to_base64())
    }

    /// Checks `signature` over `message`: key id, the signature over the message, then the
    /// global signature over the trusted comment. Only the prehashed form is accepted.
    pub fn verify(&self, message: &[u8], signature: &SignatureFile) -> Result<(), VerifyFailure> {
        self.verify_with(message, signature, LegacySignatures::Refuse)
    }

    /// [`PublicKey::verify`] for a message hashed while it streamed: prehashed signatures only.
    pub fn verify_prehashed(&self, prehash: &Prehash, signature: &SignatureFile) -> Result<(), VerifyFailure> {
        if signature.key_id != self.key_id {
            return Err(VerifyFailure::KeyIdMismatch);
        }
        if signature.algorithm != Algorithm::Prehashed {
            return Err(VerifyFailure::Legacy);
        }
        let sig = ed25519_dalek::Signature::from_bytes(&signature.signature);
        self.key.verify_strict(&prehash.0, &sig).map_err(|_| VerifyFailure::Message)?;
        let global = ed25519_dalek::Signature::from_bytes(&signature.global_signature);
        self.key
            .verify_strict(&global_message(&signature.signature, &signature.trusted_comment), &global)
            .map_err(|_| VerifyFailure::TrustedComment)
    }

    /// [`PublicKey::verify`], accepting legacy signatures if `legacy` says so. Signatures are
    /// checked strictly (RFC 8032's cofactorless equation with canonical encodings, and no
    /// small-order R), so that one message has one valid signature per key.
    pub fn verify_with(
        &self,
        message: &[u8],
        signature: &SignatureFile,
        legacy: LegacySignatures,
    ) -> Result<(), VerifyFailure> {
        if signature.key_id != self.key_id {
            return Err(VerifyFailure::KeyIdMismatch);
        }
        let sig = ed25519_dalek::Signature::from_bytes(&signature.signature);
        let ok = match (signature.algorithm, legacy) {
            (Algorithm::Prehashed, _) => self.key.verify_strict(&Blake2b512::digest(message), &sig),
            (Algorithm::Legacy, LegacySignatures::Allow) => self.key.verify_strict(message, &sig),
            (Algorithm::Legacy, LegacySignatures::Refuse) => return Err(VerifyFailure::Legacy),
        };
        ok.map_err(|_| VerifyFailure::Message)?;
        let global = ed25519_dalek::Signature::from_bytes(&signature.global_signature);
        self.key
            .verify_strict(&global_message(&signature.signature, &signature.trusted_comment), &global)
            .map_err(|_| VerifyFailure::TrustedComment)
    }
}

fn global_message(signature: &[u8; 64], trusted_comment: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + trusted_comment.len());
    m.extend_from_slice(signature);
    m.extend_from_slice(trusted_comment.as_bytes());
    m
}

/// libsodium's choice of scrypt N, r, p for an opslimit and memlimit (crypto_pwhash_scryptsalsa208sha256).
fn scrypt_params(opslimit: u64, memlimit: u64) -> (u8, u32, u32) {
    let opslimit = opslimit.max(32_768);
    let r: u32 = 8;
    let pick_log_n = |max_n: u64| {
        let mut log_n: u8 = 1;
        while log_n < 63 && (1u64 << log_n) <= max_n / 2 {
            log_n += 1;
        }
        log_n
    };
    if opslimit < memlimit / 32 {
        (pick_log_n(opslimit / (u64::from(r) * 4)), r, 1)
    } else {
        let log_n = pick_log_n(memlimit / (u64::from(r) * 128));
        let max_rp = ((opslimit / 4) >> log_n).min(0x3fff_ffff);
        (log_n, r, ((max_rp as u32) / r).max(1))
    }
}

fn scrypt_keystream(passphrase: &str, salt: &[u8], opslimit: u64, memlimit: u64) -> Result<[u8; 104], String> {
    if memlimit > MAX_MEMLIMIT {
        return Err(format!("the key asks for {memlimit} bytes of scrypt memory; at most {MAX_MEMLIMIT} are allowed"));
    }
    let (log_n, r, p) = scrypt_params(opslimit, memlimit);
    let params = scrypt::Params::new(log_n, r, p, scrypt::Params::RECOMMENDED_LEN)
        .map_err(|e| format!("unusable scrypt parameters: {e}"))?;
    let mut out = [0u8; 104];
    scrypt::scrypt(passphrase.as_bytes(), salt, &params, &mut out).map_err(|e| format!("scrypt failed: {e}"))?;
    Ok(out)
}

fn checksum(key_id: &KeyId, secret: &[u8; 64]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(b"Ed");
    h.update(key_id.0);
    h.update(secret);
    h.finalize().into()
}

/// Why a secret key could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKeyError {
    Malformed(String),
    /// The key is encrypted and the checksum did not match after decryption.
    WrongPassphrase,
    /// The key is encrypted and the passphrase source gave none.
    NoPassphrase(String),
}

impl SecretKey {
    /// A new random key pair.
    pub fn generate() -> crate::base::error::Result<SecretKey> {
        let mut seed = [0u8; 32];
        let mut id = [0u8; 8];
        crate::base::random::fill(&mut seed)?;
        crate::base::random::fill(&mut id)?;
        Ok(SecretKey { key_id: KeyId(id), signing: SigningKey::from_bytes(&seed) })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey { key_id: self.key_id, key: self.signing.verifying_key() }
    }

    fn raw(text: &str) -> Result<Vec<u8>, SecretKeyError> {
        let lines = lines(text.trim_start_matches('\u{feff}'));
        let [comment, b64] = lines.as_slice() else {
            return Err(SecretKeyError::Malformed("expected an \"untrusted comment:\" line and a base64 line".into()));
        };
        if !comment.starts_with(UNTRUSTED) {
            return Err(SecretKeyError::Malformed("the first line is not an \"untrusted comment:\"".into()));
        }
        let raw = decode_base64_line(b64, "the key line").map_err(SecretKeyError::Malformed)?;
        if raw.len() != SECRET_KEY_LEN {
            return Err(SecretKeyError::Malformed(format!(
                "the key is {} bytes, expected {SECRET_KEY_LEN}",
                raw.len()
            )));
        }
        if &raw[..2] != b"Ed" || &raw[4..6] != b"B2" {
            return Err(SecretKeyError::Malformed("not a minisign Ed25519 secret key".into()));
        }
        if &raw[2..4] != b"Sc" && raw[2..4] != [0, 0] {
            return Err(SecretKeyError::Malformed("unknown key derivation algorithm".into()));
        }
        Ok(raw)
    }

    /// Parses a secret key file. `passphrase` is asked only if the key is encrypted.
    pub fn parse(text: &str, passphrase: impl FnOnce() -> Result<String, String>) -> Result<SecretKey, SecretKeyError> {
        let mut raw = Self::raw(text)?;
        let encrypted = &raw[2..4] == b"Sc";
        if encrypted {
            let passphrase = passphrase().map_err(SecretKeyError::NoPassphrase)?;
            let opslimit = u64::from_le_bytes(raw[38..46].try_into().expect("8 bytes"));
            let memlimit = u64::from_le_bytes(raw[46..54].try_into().expect("8 bytes"));
            let stream =
                scrypt_keystream(&passphrase, &raw[6..38], opslimit, memlimit).map_err(SecretKeyError::Malformed)?;
            for (byte, k) in raw[ENCRYPTED_PART].iter_mut().zip(stream) {
                *byte ^= k;
            }
        }
        let key_id = KeyId(raw[54..62].try_into().expect("8 bytes"));
        let secret: [u8; 64] = raw[62..126].try_into().expect("64 bytes");
        let stored_checksum: [u8; 32] = raw[126..158].try_into().expect("32 bytes");
        let unchecked = !encrypted && stored_checksum == [0u8; 32];
        if !unchecked && stored_checksum != checksum(&key_id, &secret) {
            return Err(if encrypted {
                SecretKeyError::WrongPassphrase
            } else {
                SecretKeyError::Malformed("the key checksum does not match".into())
            });
        }
        let signing = SigningKey::from_keypair_bytes(&secret)
            .map_err(|_| SecretKeyError::Malformed("the secret and public halves do not match".into()))?;
        Ok(SecretKey { key_id, signing })
    }

    /// The whole secret key file, encrypted with `passphrase` as minisign does, or not
    /// encrypted at all (as `minisign -G -W`) when it is `None`.
    pub fn to_file_string(&self, passphrase: Option<&str>) -> crate::base::error::Result<String> {
        let secret = self.signing.to_keypair_bytes();
        let mut raw = Vec::with_capacity(SECRET_KEY_LEN);
        raw.extend_from_slice(b"Ed");
        raw.extend_from_slice(if passphrase.is_some() { b"Sc" } else { &[0, 0] });
        raw.extend_from_slice(b"B2");
        let mut salt = [0u8; 32];
        if passphrase.is_some() {
            crate::base::random::fill(&mut salt)?;
        }
        raw.extend_from_slice(&salt);
        let (ops, mem) = if passphrase.is_some() { (DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT) } else { (0, 0) };
        raw.extend_from_slice(&ops.to_le_bytes());
        raw.extend_from_slice(&mem.to_le_bytes());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&secret);
        raw.extend_from_slice(&checksum(&self.key_id, &secret));
        let comment = if let Some(passphrase) = passphrase {
            let stream = scrypt_keystream(passphrase, &salt, ops, mem).map_err(crate::base::error::Error::Invalid)?;
            for (byte, k) in raw[ENCRYPTED_PART].iter_mut().zip(stream) {
                *byte ^= k;
            }
            "minisign encrypted secret key"
        } else {
            "minisign secret key (not encrypted)"
        };
        Ok(format!("{UNTRUSTED}{comment} {}\n{}\n", self.key_id, BASE64.encode(raw)))
    }

    /// Signs `message` in the prehashed form with a trusted comment.
    pub fn sign(
        &self,
        message: &[u8],
        trusted_comment: &str,
        untrusted_comment: &str,
    ) -> Result<SignatureFile, String> {
        self.sign_prehashed(&Prehash::of(message), trusted_comment, untrusted_comment)
    }

    /// Signs a message whose BLAKE2b-512 was computed while it streamed (a CSV export).
    pub fn sign_prehashed(
        &self,
        prehash: &Prehash,
        trusted_comment: &str,
        untrusted_comment: &str,
    ) -> Result<SignatureFile, String> {
        check_comment(trusted_comment, "the trusted comment")?;
        check_comment(untrusted_comment, "the untrusted comment")?;
        let signature = self.signing.sign(&prehash.0).to_bytes();
        let global_signature = self.signing.sign(&global_message(&signature, trusted_comment)).to_bytes();
        Ok(SignatureFile {
            untrusted_comment: untrusted_comment.to_string(),
            algorithm: Algorithm::Prehashed,
            key_id: self.key_id,
            signature,
            trusted_comment: trusted_comment.to_string(),
            global_signature,
        })
    }
}

impl SignatureFile {
    pub fn parse(text: &str) -> Result<SignatureFile, String> {
        let lines = lines(text);
        let [untrusted, sig, trusted, global] = lines.as_slice() else {
            return Err(format!("expected 4 lines, found {}", lines.len()));
        };
        let untrusted_comment =
            untrusted.strip_prefix(UNTRUSTED).ok_or("the first line is not an \"untrusted comment:\"")?;
        let trusted_comment = trusted.strip_prefix(TRUSTED).ok_or("the third line is not a \"trusted comment:\"")?;
        check_comment(trusted_comment, "the trusted comment")?;
        let raw = decode_base64_line(sig, "the signature line")?;
        if raw.len() != 74 {
            return Err(format!("the signature is {} bytes, expected 74", raw.len()));
        }
        let algorithm = match &raw[..2] {
            b"ED" => Algorithm::Prehashed,
            b"Ed" => Algorithm::Legacy,
            _ => return Err("unknown signature algorithm".into()),
        };
        let global = decode_base64_line(global, "the global signature line")?;
        let global_signature: [u8; 64] = global
            .try_into()
            .map_err(|g: Vec<u8>| format!("the global signature is {} bytes, expected 64", g.len()))?;
        Ok(SignatureFile {
            untrusted_comment: untrusted_comment.to_string(),
            algorithm,
            key_id: KeyId(raw[2..10].try_into().expect("8 bytes")),
            signature: raw[10..74].try_into().expect("64 bytes"),
            trusted_comment: trusted_comment.to_string(),
            global_signature,
        })
    }

    pub fn to_file_string(&self) -> String {
        let mut raw = Vec::with_capacity(74);
        raw.extend_from_slice(match self.algorithm {
            Algorithm::Prehashed => b"ED",
            Algorithm::Legacy => b"Ed",
        });
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!(
            "{UNTRUSTED}{}\n{}\n{TRUSTED}{}\n{}\n",
            self.untrusted_comment,
            BASE64.encode(raw),
            self.trusted_comment,
            BASE64.encode(self.global_signature)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsodium_parameters_for_minisign_defaults() {
        // N = 2^20, r = 8, p = 1: 1 GiB, as `minisign -G` uses.
        assert_eq!(scrypt_params(DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT), (20, 8, 1));
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = SecretKey::generate().unwrap();
        let public = PublicKey::parse(&key.public_key().to_file_string()).unwrap();
        let sig = key.sign(b"manifest", "ferry test", "sig").unwrap();
        let parsed = SignatureFile::parse(&sig.to_file_string()).unwrap();
        assert_eq!(parsed, sig);
        public.verify(b"manifest", &parsed).unwrap();
        assert_eq!(public.verify(b"manifesT", &parsed), Err(VerifyFailure::Message));
        let mut edited = parsed.clone();
        edited.trusted_comment.push('!');
        assert_eq!(public.verify(b"manifest", &edited), Err(VerifyFailure::TrustedComment));
        let other = SecretKey::generate().unwrap().public_key();
        assert_eq!(other.verify(b"manifest", &parsed), Err(VerifyFailure::KeyIdMismatch));
    }

    #[test]
    fn unencrypted_secret_key_round_trip_and_zero_checksum() {
        let key = SecretKey::generate().unwrap();
        let text = key.to_file_string(None).unwrap();
        let back = SecretKey::parse(&text, || Err("not asked".into())).unwrap();
        assert_eq!(back.public_key(), key.public_key());

        // `minisign -G -W` has been seen writing a zero checksum: accepted when not encrypted.
        let b64 = text.lines().nth(1).unwrap();
        let mut raw = BASE64.decode(b64).unwrap();
        raw[126..].fill(0);
        let zeroed = format!("untrusted comment: x\n{}\n", BASE64.encode(&raw));
        assert!(SecretKey::parse(&zeroed, || Err("not asked".into())).is_ok());
        raw[126] = 1;
        let corrupt = format!("untrusted comment: x\n{}\n", BASE64.encode(&raw));
        assert!(matches!(SecretKey::parse(&corrupt, || Err("no".into())), Err(SecretKeyError::Malformed(_))));
    }

    #[test]
    fn comments_with_control_characters_are_refused() {
        let key = SecretKey::generate().unwrap();
        assert!(key.sign(b"m", "a\nb", "x").is_err());
        assert!(key.sign(b"m", &"a".repeat(MAX_TRUSTED_COMMENT), "x").is_err());
    }
}
