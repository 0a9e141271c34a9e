//! Tokens: `gpha_` and 32 base64url characters of randomness (192 bits), shown once when made;
//! only their sha256 is stored and replicated, and a presented token is found by comparing
//! its hash with every stored one in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every token (so leaked ones are easy to recognise and scan for).
pub const PREFIX: &str = "gpha_";
/// Random bytes in a token.
pub const RANDOM_BYTES: usize = 24;

/// The stored form of a token: lowercase hex sha256 of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// The hash of a presented secret.
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Whether `self` and `other` are equal, in time independent of where they differ.
    pub fn same(&self, other: &TokenHash) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }

    /// The hash as bytes, when well formed.
    pub fn digest(&self) -> Option<[u8; 32]> {
        if !self.is_valid() {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.0, &mut out).ok()?;
        Some(out)
    }

    /// Whether this is a well-formed hash (64 lowercase hex digits).
    pub fn is_valid(&self) -> bool {
        self.0.len() == 64
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// A token just made: the secret (shown once, never stored) and its hash.
pub struct NewToken {
    /// What the client presents.
    pub secret: String,
    /// What is stored.
    pub hash: TokenHash,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("secret", &"***")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Makes a token from the operating system's randomness.
pub fn generate() -> NewToken {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewToken {
        hash: TokenHash::of(&secret),
        secret,
    }
}

/// The index of the stored hash `secret` hashes to, looking at every one (no early exit).
pub fn find<'a>(secret: &str, stored: impl IntoIterator<Item = &'a TokenHash>) -> Option<usize> {
    let presented = TokenHash::of(secret);
    let mut found = None;
    for (i, hash) in stored.into_iter().enumerate() {
        if hash.same(&presented) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// [`find`] over hashes already decoded to bytes (what [`crate::Grants`] keeps): no hex
/// encoding per request.
pub fn find_digest(secret: &str, stored: &[[u8; 32]]) -> Option<usize> {
    let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let mut found = None;
    for (i, digest) in stored.iter().enumerate() {
        if bool::from(digest.ct_eq(&presented)) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_found_only_by_their_secret() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(PREFIX));
        assert_eq!(a.secret.len(), PREFIX.len() + 32);
        assert!(a.hash.is_valid());
        assert_eq!(TokenHash::of(&a.secret), a.hash);
        // The secret parses as credentials (its characters are the token alphabet).
        let header = format!("Bearer {}", a.secret);
        assert_eq!(
            crate::Credentials::parse(header.as_bytes()).unwrap().token,
            a.secret
        );
        let stored = [b.hash.clone(), a.hash.clone()];
        assert_eq!(find(&a.secret, &stored), Some(1));
        assert_eq!(find(&b.secret, &stored), Some(0));
        assert_eq!(find("gpha_guess", &stored), None);
        assert!(!format!("{a:?}").contains(&a.secret));
        assert!(!TokenHash("xyz".into()).is_valid());
    }
}
