//! Signed notes: a text followed by a blank line and `— NAME BASE64` signature lines, where
//! BASE64 is a 4-byte key hash and an ed25519 signature of the text. A verifier key is
//! `NAME+HASH+BASE64(0x01 || public key)` (the form in GOSUMDB).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Algorithm byte of ed25519 keys.
const ALG_ED25519: u8 = 1;
/// Signatures looked at per note.
const MAX_SIGNATURES: usize = 100;
/// Longest note accepted.
pub const MAX_NOTE: usize = 64 << 10;

/// Why a key or a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key is not `name+hash+key`, or its hash does not match.
    #[error("malformed verifier key: {0}")]
    BadKey(&'static str),
    /// The note breaks the format (control characters, no signature block, bad lines).
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A known key's signature does not verify: someone else wrote this note.
    #[error("invalid signature by {name}")]
    BadSignature {
        /// The key's name.
        name: String,
    },
    /// No signature by a known key.
    #[error("no signature by {expected} (signed only by: {found})")]
    Unverified {
        /// The known key.
        expected: String,
        /// Who did sign.
        found: String,
    },
}

/// A checksum database's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses `NAME+HASH+KEY`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected name+hash+key"));
        };
        if !valid_name(name) {
            return Err(NoteError::BadKey("bad name"));
        }
        if hash.len() != 8 {
            return Err(NoteError::BadKey("the hash is 8 hex digits"));
        }
        let hash = u32::from_str_radix(hash, 16).map_err(|_| NoteError::BadKey("bad hash"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| NoteError::BadKey("bad base64"))?;
        if key_hash(name, &key) != hash {
            return Err(NoteError::BadKey("the hash does not match the key"));
        }
        let (&alg, raw) = key.split_first().ok_or(NoteError::BadKey("empty key"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::BadKey("unknown algorithm"));
        }
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| NoteError::BadKey("an ed25519 key is 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&raw).map_err(|_| NoteError::BadKey("bad ed25519 key"))?;
        Ok(Self {
            name: name.to_string(),
            hash,
            key,
        })
    }

    /// The database's name (`sum.golang.org`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's hash, as in its signatures.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }
}

/// A note whose signature by the expected key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text (ends with a newline).
    pub text: String,
}

/// Opens `msg`, requiring a valid signature by `verifier`. Signatures by other keys are
/// ignored; a signature by this key that does not verify refuses the note.
pub fn open(msg: &[u8], verifier: &Verifier) -> Result<Note, NoteError> {
    if msg.len() > MAX_NOTE {
        return Err(NoteError::Malformed("too long"));
    }
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control characters"));
    }
    let split = msg
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no signature block"))?;
    let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signature block must end with a newline",
        ));
    }
    let mut found = Vec::new();
    let mut verified = false;
    for (i, line) in sigs.lines().enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        let line = line
            .strip_prefix("\u{2014} ")
            .ok_or(NoteError::Malformed("a signature line starts with \"— \""))?;
        let (name, b64) = line.split_once(' ').ok_or(NoteError::Malformed(
            "a signature line is \"— name signature\"",
        ))?;
        let sig = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::Malformed("bad signature base64"))?;
        if !valid_name(name) || sig.len() < 5 {
            return Err(NoteError::Malformed("bad signature line"));
        }
        let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        if name != verifier.name || hash != verifier.hash {
            found.push(name.to_string());
            continue;
        }
        let signature = Signature::from_slice(&sig[4..]).map_err(|_| NoteError::BadSignature {
            name: name.to_string(),
        })?;
        verifier
            .key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| NoteError::BadSignature {
                name: name.to_string(),
            })?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::Unverified {
            expected: verifier.name.clone(),
            found: if found.is_empty() {
                "nobody".into()
            } else {
                found.join(", ")
            },
        });
    }
    Ok(Note {
        text: text.to_string(),
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::tests::vectors;

    /// sum.golang.org's published key, as the go command knows it.
    const SUM_GOLANG_ORG: &str =
        "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    #[test]
    fn keys_parse_as_the_go_command_parses_them() {
        let v = Verifier::parse(SUM_GOLANG_ORG).unwrap();
        assert_eq!((v.name(), v.key_hash()), ("sum.golang.org", 0x033de0ae));
        let test = Verifier::parse(&vectors().vkey).unwrap();
        assert_eq!(test.name(), "sum.test.example");
        for bad in [
            "",
            "sum.golang.org",
            "sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            "sum.golang.org+33de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            "sum golang+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            "sum.golang.org+033de0ae+!!!",
        ] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn notes_signed_by_go_verify_and_tampering_is_refused() {
        let v = vectors();
        let key = Verifier::parse(&v.vkey).unwrap();
        assert_eq!(open(v.signed.as_bytes(), &key).unwrap().text, v.text);
        assert_eq!(
            open(v.signed_by_both.as_bytes(), &key).unwrap().text,
            v.text
        );
        let other = Verifier::parse(&v.other_vkey).unwrap();
        assert_eq!(
            open(v.signed_by_both.as_bytes(), &other).unwrap().text,
            v.text
        );

        // Signed by someone else only.
        match open(v.signed.as_bytes(), &other) {
            Err(NoteError::Unverified { found, .. }) => assert_eq!(found, "sum.test.example"),
            other => panic!("{other:?}"),
        }
        // One changed byte of text.
        let forged = v.signed.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            open(forged.as_bytes(), &key),
            Err(NoteError::BadSignature { .. })
        ));
        for malformed in [
            v.text.clone(),
            v.signed.trim_end().to_string(),
            v.signed.replace('\u{2014}', "-"),
            format!("\u{1}{}", v.signed),
        ] {
            assert!(
                matches!(
                    open(malformed.as_bytes(), &key),
                    Err(NoteError::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
    }
}
