//! Authenticode signatures of cabinet files, as Microsoft signs its offline scan catalog
//! (`wsusscn2.cab`), which it serves over plain HTTP: the signature is what makes the file
//! trustworthy, and `fetch` signs whatever digests it lists.
//!
//! A signed cabinet reserves 20 bytes in its header that give the offset and length of a
//! PKCS#7 SignedData blob appended to the file. The blob holds an `SpcIndirectDataContent`
//! with the digest of the cabinet (every byte but the header fields the signature itself
//! changes, and the blob), signed attributes that bind that content, the signer's
//! signature over them, and the certificates up to (not including) a root. Verification
//! here: the layout, the cabinet's digest, the signed attributes, the RSA signature, the
//! code-signing purpose of the signer's certificate, and every certificate's signature up
//! to one of the pinned roots. Not checked: validity periods (Microsoft's signatures are
//! timestamped and outlive their certificates; the timestamp countersignature is not
//! verified) and revocation (the online side may have no CRL access); both are said in
//! docs/feeds.md.

use std::io::{Read, Seek, SeekFrom};

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::Certificate;

/// Microsoft Root Certificate Authority 2011 (SHA-1 thumbprint
/// 8F43288AD272F3103B6FB1428485EA3014C0BCFE): the root of Microsoft's code-signing
/// certificates since 2011, and of the offline scan catalog's.
pub const MICROSOFT_ROOT_2011: &[u8] = include_bytes!("roots/microsoft-root-2011.cer");
/// Microsoft Root Certificate Authority 2010 (SHA-1 thumbprint
/// 3B1EFD3A66EA28B16697394703A72CA340A05BD5): the root of Windows' own signing chain.
pub const MICROSOFT_ROOT_2010: &[u8] = include_bytes!("roots/microsoft-root-2010.crt");

/// The largest signature blob read: Microsoft's are under 30 KiB.
const MAX_SIGNATURE_BYTES: u32 = 1 << 20;
/// The longest certificate chain followed from the signer to a root.
const MAX_CHAIN: usize = 6;

const SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ATTR_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ATTR_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// Who signed a cabinet, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The signing certificate's subject (`CN=Microsoft Corporation, …`).
    pub subject: String,
    /// The root the chain ends at.
    pub root: String,
    /// `sha256` or `sha1`: the digest the signature covers the cabinet with.
    pub digest: &'static str,
}

/// The two digests Authenticode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha1,
    Sha256,
}

impl Algorithm {
    fn from_oid(oid: &ObjectIdentifier) -> Result<Algorithm, String> {
        if *oid == rfc5912::ID_SHA_256 {
            Ok(Algorithm::Sha256)
        } else if *oid == rfc5912::ID_SHA_1 {
            Ok(Algorithm::Sha1)
        } else {
            Err(format!("digest algorithm {oid} is not SHA-256 or SHA-1"))
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => {
                let mut h = sha2::Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            Algorithm::Sha1 => {
                let mut h = sha1::Sha1::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
        }
    }
}

/// Where a signed cabinet keeps its signature.
struct Layout {
    /// Offset of the first file entry (the end of the folder entries).
    files_at: u32,
    signature_at: u32,
    signature_len: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the header of a cabinet of `len` bytes and where its signature lies.
fn layout(header: &[u8; 60], len: u64) -> Result<Layout, String> {
    const RESERVE_PRESENT: u16 = 0x0004;
    const PREV_OR_NEXT: u16 = 0x0003;
    if &header[..4] != b"MSCF" {
        return Err("not a cabinet (no MSCF signature)".into());
    }
    if u32_at(header, 4) != 0 {
        return Err("the header's first reserved field is not zero".into());
    }
    let flags = u16_at(header, 30);
    if flags & PREV_OR_NEXT != 0 {
        return Err("a cabinet of a multi-cabinet set is not read".into());
    }
    if flags & RESERVE_PRESENT == 0 {
        return Err("the cabinet is not signed (it reserves no room for a signature)".into());
    }
    // cbCFHeader 20, cbCFFolder 0, cbCFData 0: the layout Authenticode writes.
    if u32_at(header, 36) != 20 || u32_at(header, 40) != 0x0010_0000 {
        return Err("the header's reserved area is not an Authenticode signature record".into());
    }
    let (signature_at, signature_len) = (u32_at(header, 44), u32_at(header, 48));
    if signature_len == 0 || signature_len > MAX_SIGNATURE_BYTES {
        return Err(format!("a signature of {signature_len} bytes is not read"));
    }
    if u64::from(signature_at) + u64::from(signature_len) != len {
        return Err(format!(
            "the signature record ({signature_len} bytes at {signature_at}) does not end the {len}-byte file"
        ));
    }
    let folders = u32::from(u16_at(header, 26));
    let files_at = u32_at(header, 16);
    if files_at != 60 + 8 * folders || files_at > signature_at {
        return Err(format!("the first file entry at {files_at} does not follow the {folders} folder entries"));
    }
    Ok(Layout { files_at, signature_at, signature_len })
}

/// The digest Authenticode signs: the header without the fields the signature changes
/// (reserved1, the set index, the reserve sizes and the signature record), then everything
/// up to the signature.
fn cabinet_digest(
    file: &mut (impl Read + Seek),
    header: &[u8; 60],
    layout: &Layout,
    algorithm: Algorithm,
) -> std::io::Result<Vec<u8>> {
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let mut update = |bytes: &[u8]| match algorithm {
        Algorithm::Sha256 => sha256.update(bytes),
        Algorithm::Sha1 => sha1.update(bytes),
    };
    update(&header[..4]);
    update(&header[8..34]);
    update(&header[56..60]);
    file.seek(SeekFrom::Start(60))?;
    let mut rest = (&mut *file).take(u64::from(layout.signature_at) - 60);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = rest.read(&mut buf)?;
        if n == 0 {
            break;
        }
        update(&buf[..n]);
    }
    let _ = layout.files_at;
    Ok(match algorithm {
        Algorithm::Sha256 => sha256.finalize().to_vec(),
        Algorithm::Sha1 => sha1.finalize().to_vec(),
    })
}

/// `SpcIndirectDataContent`'s digest: its second element, a `DigestInfo`.
fn indirect_digest(content: &[u8]) -> Result<(Algorithm, Vec<u8>), String> {
    let bad = |e: der::Error| format!("the signed content is not an SpcIndirectDataContent: {e}");
    let any = der::Any::from_der(content).map_err(bad)?;
    let mut reader = der::SliceReader::new(any.value()).map_err(bad)?;
    let _data = der::Any::decode(&mut reader).map_err(bad)?;
    let info = der::Any::decode(&mut reader).map_err(bad)?;
    let mut info = der::SliceReader::new(info.value()).map_err(bad)?;
    let algorithm = x509_cert::spki::AlgorithmIdentifierOwned::decode(&mut info).map_err(bad)?;
    let digest = der::asn1::OctetString::decode(&mut info).map_err(bad)?;
    Ok((Algorithm::from_oid(&algorithm.oid)?, digest.as_bytes().to_vec()))
}

/// Verifies `signature` over `message` with the RSA key of `spki`.
fn rsa_verify(
    key: &x509_cert::spki::SubjectPublicKeyInfoOwned,
    signature_oid: &ObjectIdentifier,
    digest_hint: Option<Algorithm>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    if key.algorithm.oid != rfc5912::RSA_ENCRYPTION {
        return Err(format!("key algorithm {} is not RSA", key.algorithm.oid));
    }
    let public = rsa::RsaPublicKey::from_pkcs1_der(key.subject_public_key.raw_bytes())
        .map_err(|e| format!("the RSA key cannot be read: {e}"))?;
    let algorithm = if *signature_oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
        Algorithm::Sha256
    } else if *signature_oid == rfc5912::SHA_1_WITH_RSA_ENCRYPTION {
        Algorithm::Sha1
    } else if *signature_oid == rfc5912::RSA_ENCRYPTION {
        digest_hint.ok_or("rsaEncryption names no digest")?
    } else {
        return Err(format!("signature algorithm {signature_oid} is not RSA with SHA-256 or SHA-1"));
    };
    let hashed = algorithm.hash(&[message]);
    let scheme = match algorithm {
        Algorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        Algorithm::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
    };
    public.verify(scheme, &hashed, signature).map_err(|_| "the RSA signature does not verify".to_string())
}

/// Whether `cert` was signed by the holder of `issuer`'s key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    cert.tbs_certificate.issuer == issuer.tbs_certificate.subject
        && cert.tbs_certificate.to_der().is_ok_and(|tbs| {
            rsa_verify(
                &issuer.tbs_certificate.subject_public_key_info,
                &cert.signature_algorithm.oid,
                None,
                &tbs,
                cert.signature.raw_bytes(),
            )
            .is_ok()
        })
}

fn has_code_signing_purpose(cert: &Certificate) -> bool {
    let Some(extensions) = &cert.tbs_certificate.extensions else { return false };
    extensions.iter().filter(|e| e.extn_id == rfc5912::ID_CE_EXT_KEY_USAGE).any(|e| {
        x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
            .is_ok_and(|eku| eku.0.contains(&CODE_SIGNING))
    })
}

fn attribute(signer: &SignerInfo, oid: ObjectIdentifier) -> Result<&der::Any, String> {
    let attrs = signer.signed_attrs.as_ref().ok_or("the signer has no signed attributes")?;
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let attr = found.next().ok_or_else(|| format!("signed attribute {oid} is missing"))?;
    if found.next().is_some() || attr.values.len() != 1 {
        return Err(format!("signed attribute {oid} is not given exactly once"));
    }
    Ok(attr.values.get(0).expect("one value"))
}

/// Verifies the Authenticode signature of the cabinet `file` of `len` bytes against
/// `roots` (DER certificates: the pinned Microsoft roots, and any the user adds).
pub fn verify_cabinet(file: &mut (impl Read + Seek), len: u64, roots: &[Vec<u8>]) -> Result<Signer, String> {
    let io = |e: std::io::Error| format!("cannot be read: {e}");
    let mut header = [0u8; 60];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.read_exact(&mut header).map_err(|_| "is too short for a cabinet".to_string())?;
    let layout = layout(&header, len)?;
    let mut blob = vec![0u8; layout.signature_len as usize];
    file.seek(SeekFrom::Start(u64::from(layout.signature_at))).map_err(io)?;
    file.read_exact(&mut blob).map_err(io)?;

    // The record may be padded to a multiple of 8 bytes after the DER blob.
    let mut reader = der::SliceReader::new(&blob).map_err(|e| e.to_string())?;
    let info = <ContentInfo as der::Decode>::decode(&mut reader)
        .map_err(|e| format!("the signature is not a PKCS#7 structure: {e}"))?;
    let rest = &blob[usize::try_from(der::Reader::position(&reader)).unwrap_or(blob.len())..];
    if rest.iter().any(|b| *b != 0) {
        return Err("bytes follow the signature".into());
    }
    if info.content_type != ID_SIGNED_DATA {
        return Err(format!("the signature is of type {}, not SignedData", info.content_type));
    }
    let signed: SignedData = info.content.decode_as().map_err(|e| format!("the SignedData cannot be read: {e}"))?;
    if signed.encap_content_info.econtent_type != SPC_INDIRECT_DATA {
        return Err("the signed content is not Authenticode's (SpcIndirectDataContent)".into());
    }
    let content = signed.encap_content_info.econtent.as_ref().ok_or("the signed content is empty")?;
    let content_der = content.to_der().map_err(|e| e.to_string())?;
    let (algorithm, signed_digest) = indirect_digest(&content_der)?;
    let actual = cabinet_digest(file, &header, &layout, algorithm).map_err(io)?;
    if actual != signed_digest {
        return Err(format!(
            "the cabinet's {} digest is not the one signed: it was changed after signing",
            algorithm.name()
        ));
    }

    let [signer] = signed.signer_infos.0.as_slice() else {
        return Err(format!("{} signers; exactly one is read", signed.signer_infos.0.len()));
    };
    let signer_algorithm = Algorithm::from_oid(&signer.digest_alg.oid)?;
    let content_type = attribute(signer, ATTR_CONTENT_TYPE)?
        .decode_as::<ObjectIdentifier>()
        .map_err(|e| format!("the content-type attribute: {e}"))?;
    if content_type != SPC_INDIRECT_DATA {
        return Err("the signed attributes name another content type".into());
    }
    let message_digest = attribute(signer, ATTR_MESSAGE_DIGEST)?
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| format!("the message-digest attribute: {e}"))?;
    // Authenticode digests the content's value without its outer tag and length.
    if signer_algorithm.hash(&[content.value()]) != message_digest.as_bytes() {
        return Err("the signed attributes do not bind the signed content".into());
    }

    let certificates: Vec<&Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let SignerIdentifier::IssuerAndSerialNumber(id) = &signer.sid else {
        return Err("the signer is named by key identifier; Authenticode names it by issuer and serial".into());
    };
    let leaf = certificates
        .iter()
        .find(|c| c.tbs_certificate.issuer == id.issuer && c.tbs_certificate.serial_number == id.serial_number)
        .ok_or("the signer's certificate is not in the signature")?;
    let attributes = signer.signed_attrs.as_ref().expect("checked above").to_der().map_err(|e| e.to_string())?;
    rsa_verify(
        &leaf.tbs_certificate.subject_public_key_info,
        &signer.signature_algorithm.oid,
        Some(signer_algorithm),
        &attributes,
        signer.signature.as_bytes(),
    )
    .map_err(|e| format!("the signer's signature: {e}"))?;
    if !has_code_signing_purpose(leaf) {
        return Err("the signer's certificate is not for code signing".into());
    }

    let roots: Vec<Certificate> = roots.iter().filter_map(|r| Certificate::from_der(r).ok()).collect();
    let mut current: &Certificate = leaf;
    for _ in 0..MAX_CHAIN {
        if let Some(root) = roots.iter().find(|r| signed_by(current, r)) {
            return Ok(Signer {
                subject: leaf.tbs_certificate.subject.to_string(),
                root: root.tbs_certificate.subject.to_string(),
                digest: algorithm.name(),
            });
        }
        current =
            certificates.iter().find(|c| !std::ptr::eq(**c, current) && signed_by(current, c)).ok_or_else(|| {
                format!(
                    "the chain from {} ends at {}, which no trusted root signed",
                    leaf.tbs_certificate.subject, current.tbs_certificate.issuer
                )
            })?;
    }
    Err("the certificate chain is longer than ferry follows".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u16, reserve: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 36];
        h[..4].copy_from_slice(b"MSCF");
        h[24] = 3;
        h[25] = 1;
        h[26] = 1; // one folder
        h[30..32].copy_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(reserve);
        h.resize(200, 0);
        h
    }

    fn refusal(bytes: &[u8]) -> String {
        verify_cabinet(&mut std::io::Cursor::new(bytes), bytes.len() as u64, &[]).unwrap_err()
    }

    #[test]
    fn the_pinned_roots_are_microsofts() {
        for (der, name) in [(MICROSOFT_ROOT_2011, "2011"), (MICROSOFT_ROOT_2010, "2010")] {
            let cert = Certificate::from_der(der).unwrap();
            let subject = cert.tbs_certificate.subject.to_string();
            assert!(subject.contains(&format!("CN=Microsoft Root Certificate Authority {name}")), "{subject}");
            let thumbprint: String = sha1::Sha1::digest(der).iter().map(|b| format!("{b:02X}")).collect();
            let expected = if name == "2011" {
                "8F43288AD272F3103B6FB1428485EA3014C0BCFE"
            } else {
                "3B1EFD3A66EA28B16697394703A72CA340A05BD5"
            };
            assert_eq!(thumbprint, expected);
        }
    }

    #[test]
    fn layouts_that_are_not_a_signed_cabinet_are_refused() {
        assert!(
            refusal(b"PK\x03\x04 and more than sixty bytes of something that is not a cabinet at all....")
                .contains("not a cabinet")
        );
        assert!(refusal(&header(0, &[])).contains("not signed"));
        assert!(refusal(&header(0x0001, &[])).contains("multi-cabinet"));
        let mut reserve = vec![20, 0, 0, 0, 0, 0, 0x10, 0];
        reserve.extend_from_slice(&150u32.to_le_bytes());
        reserve.extend_from_slice(&100u32.to_le_bytes());
        assert!(refusal(&header(0x0004, &reserve)).contains("does not end the 200-byte file"));
    }
}
