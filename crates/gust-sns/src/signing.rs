//! Message signatures: one RSA key per server, created once and kept as PKCS#8 PEM beside
//! the store, and a self-signed X.509 certificate for it (served at `SigningCertURL`).
//! `SignatureVersion` 1 signs with SHA1withRSA, 2 with SHA256withRSA, over the canonical
//! text of [`crate::message::canonical_notification`].
//!
//! The certificate is derived deterministically from the key (fixed validity, serial from
//! the key's digest), so it is the same after every restart without being stored.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::error::SnsError;

/// Key size, as SNS's.
const KEY_BITS: usize = 2048;

/// The server's signing key and certificate.
pub struct Signer {
    key: RsaPrivateKey,
    certificate_der: Vec<u8>,
    certificate_pem: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

fn internal(what: &str, error: impl std::fmt::Display) -> SnsError {
    tracing::error!(%error, "{what}");
    SnsError::Internal(format!("{what}: {error}"))
}

impl Signer {
    /// Loads the key at `path`, or creates one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, SnsError> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(&pem),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaPrivateKey::new(&mut rand_core::OsRng, KEY_BITS)
                    .map_err(|e| internal("cannot generate the SNS signing key", e))?;
                let pem = key
                    .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                    .map_err(|e| internal("cannot encode the SNS signing key", e))?;
                write_private(path, pem.as_bytes())
                    .map_err(|e| internal("cannot write the SNS signing key", e))?;
                Self::from_key(key)
            }
            Err(error) => Err(internal("cannot read the SNS signing key", error)),
        }
    }

    /// A signer for a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Self, SnsError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| internal("cannot read the SNS signing key", e))?;
        Self::from_key(key)
    }

    fn from_key(key: RsaPrivateKey) -> Result<Self, SnsError> {
        let certificate_der = self_signed_certificate(&key)?;
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&certificate_der);
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Ok(Signer {
            key,
            certificate_der,
            certificate_pem: pem,
        })
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The Base64 signature of `text` for `SignatureVersion` `version` ("2": SHA256,
    /// otherwise SHA1).
    pub fn sign(&self, version: &str, text: &str) -> String {
        let signed = if version == "2" {
            self.key.sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(text.as_bytes()),
            )
        } else {
            self.key.sign(
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(text.as_bytes()),
            )
        };
        match signed {
            Ok(signature) => base64::engine::general_purpose::STANDARD.encode(signature),
            Err(error) => {
                // Cannot happen for a well-formed key and a digest of the right length.
                tracing::error!(%error, "SNS signing failed");
                String::new()
            }
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

// --- A minimal DER writer, enough for one self-signed certificate. ---

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = if trimmed.is_empty() { vec![0] } else { trimmed };
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(0x02, &content)
}

/// `sha256WithRSAEncryption` (1.2.840.113549.1.1.11) with NULL parameters.
fn sha256_with_rsa() -> Vec<u8> {
    let oid = tlv(
        0x06,
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B],
    );
    sequence(&[&oid, &[0x05, 0x00]])
}

fn name() -> Vec<u8> {
    let attribute = |oid_last: u8, value: &str| {
        let oid = tlv(0x06, &[0x55, 0x04, oid_last]);
        tlv(0x31, &sequence(&[&oid, &tlv(0x0C, value.as_bytes())]))
    };
    sequence(&[
        &attribute(0x0A, "Gust"),
        &attribute(0x03, "SimpleNotificationService-gust"),
    ])
}

fn self_signed_certificate(key: &RsaPrivateKey) -> Result<Vec<u8>, SnsError> {
    let spki = RsaPublicKey::from(key)
        .to_public_key_der()
        .map_err(|e| internal("cannot encode the SNS signing key", e))?;
    let spki = spki.as_bytes();
    let mut serial = Sha256::digest(spki)[..16].to_vec();
    serial[0] &= 0x7F;
    serial[0] |= 0x40;
    let version = tlv(0xA0, &tlv(0x02, &[2]));
    let validity = sequence(&[&tlv(0x17, b"250101000000Z"), &tlv(0x18, b"20991231235959Z")]);
    let algorithm = sha256_with_rsa();
    let issuer = name();
    let tbs = sequence(&[
        &version,
        &unsigned_integer(&serial),
        &algorithm,
        &issuer,
        &validity,
        &issuer,
        spki,
    ]);
    let signature = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs))
        .map_err(|e| internal("cannot sign the SNS certificate", e))?;
    let mut bits = vec![0u8];
    bits.extend(signature);
    Ok(sequence(&[&tbs, &algorithm, &tlv(0x03, &bits)]))
}

/// One DER element: `(tag, whole element, content, rest)`.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Reads one DER element.
fn read_element(der: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = der.len() - rest.len();
    Some((tag, &der[..header + len], &rest[..len], &rest[len..]))
}

/// The RSA public key of a certificate (its `subjectPublicKeyInfo`), as a verifier
/// fetching `SigningCertURL` would read it.
pub fn certificate_public_key(der: &[u8]) -> Option<RsaPublicKey> {
    let (0x30, _, certificate, _) = read_element(der)? else {
        return None;
    };
    let (0x30, _, mut tbs, _) = read_element(certificate)? else {
        return None;
    };
    let mut fields = Vec::new();
    while !tbs.is_empty() {
        let (tag, whole, _, rest) = read_element(tbs)?;
        fields.push((tag, whole));
        tbs = rest;
    }
    // version [0], serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
    let skip = usize::from(fields.first()?.0 == 0xA0);
    let (_, spki) = fields.get(skip + 5)?;
    RsaPublicKey::from_public_key_der(spki).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 5]), vec![0x02, 1, 5]);
    }
}
