//! Hex sha256 content addresses.
//!
//! Every path the store touches is derived from a digest that passed [`parse`], so the
//! only characters that reach the filesystem are `[0-9a-f]`.

use sha2::{Digest, Sha256};

use crate::StoreError;

/// Length of a hex-encoded sha256 digest.
pub const HEX_LEN: usize = 64;

/// Validates a lowercase hex sha256 digest and returns it unchanged.
pub fn parse(hex_digest: &str) -> Result<&str, StoreError> {
    let ok = hex_digest.len() == HEX_LEN
        && hex_digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(hex_digest)
    } else {
        Err(StoreError::InvalidDigest(
            hex_digest.chars().take(80).collect(),
        ))
    }
}

/// Lowercase hex sha256 of a byte slice.
pub fn of_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_lowercase_hex_of_the_right_length() {
        let good = of_bytes(b"hello");
        assert!(parse(&good).is_ok());
        assert!(parse(&good.to_uppercase()).is_err());
        assert!(parse(&good[1..]).is_err());
        assert!(parse("../../etc/passwd").is_err());
        let mut traversal = good.clone();
        traversal.replace_range(0..3, "../");
        assert!(parse(&traversal).is_err());
    }
}
