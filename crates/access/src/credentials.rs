//! Credentials from the `Authorization` header: `Basic base64(user:token)` (the go command,
//! from `~/.netrc`) or `Bearer token` (GOAUTH). Anything else, or anything too long, is an
//! error the front end answers without looking further.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Longest `Authorization` value accepted (a token is far shorter).
pub const MAX_HEADER: usize = 1024;
/// Longest token accepted.
pub const MAX_TOKEN: usize = 128;

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The token (the Basic password, or the Bearer value).
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// Why an `Authorization` header is refused (never echoes the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Longer than [`MAX_HEADER`].
    #[error("the Authorization header is too long")]
    TooLong,
    /// Not `Basic …` or `Bearer …`.
    #[error("the Authorization scheme must be Basic or Bearer")]
    Scheme,
    /// Not valid base64 of `user:password`, or not UTF-8.
    #[error("malformed Basic credentials")]
    Malformed,
    /// A token with characters or a length no token has.
    #[error("malformed token")]
    BadToken,
}

impl Credentials {
    /// Parses an `Authorization` header value.
    pub fn parse(value: &[u8]) -> Result<Self, CredentialsError> {
        if value.len() > MAX_HEADER {
            return Err(CredentialsError::TooLong);
        }
        let value = std::str::from_utf8(value).map_err(|_| CredentialsError::Malformed)?;
        let (scheme, rest) = value
            .trim()
            .split_once(' ')
            .ok_or(CredentialsError::Scheme)?;
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            rest.trim().to_string()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(rest.trim())
                .map_err(|_| CredentialsError::Malformed)?;
            let decoded = String::from_utf8(decoded).map_err(|_| CredentialsError::Malformed)?;
            let (_user, password) = decoded.split_once(':').ok_or(CredentialsError::Malformed)?;
            password.to_string()
        } else {
            return Err(CredentialsError::Scheme);
        };
        let well_formed = !token.is_empty()
            && token.len() <= MAX_TOKEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(CredentialsError::BadToken);
        }
        Ok(Self { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_give_the_token_and_nothing_else_parses() {
        let basic = format!("Basic {}", STANDARD.encode("ci:gpha_abc-DEF_123"));
        assert_eq!(
            Credentials::parse(basic.as_bytes()).unwrap().token,
            "gpha_abc-DEF_123"
        );
        let lower = format!("basic {}", STANDARD.encode("x:tok"));
        assert_eq!(Credentials::parse(lower.as_bytes()).unwrap().token, "tok");
        assert_eq!(
            Credentials::parse(b"Bearer gpha_tok").unwrap().token,
            "gpha_tok"
        );
        let cases: Vec<(Vec<u8>, CredentialsError)> = vec![
            (b"Bearer".to_vec(), CredentialsError::Scheme),
            (b"Digest abc".to_vec(), CredentialsError::Scheme),
            (b"Basic !!!".to_vec(), CredentialsError::Malformed),
            (
                format!("Basic {}", STANDARD.encode("no-colon")).into_bytes(),
                CredentialsError::Malformed,
            ),
            (
                format!("Basic {}", STANDARD.encode("u:")).into_bytes(),
                CredentialsError::BadToken,
            ),
            (b"Bearer a b".to_vec(), CredentialsError::BadToken),
            (b"Bearer \xff".to_vec(), CredentialsError::Malformed),
            (
                format!("Bearer {}", "a".repeat(MAX_TOKEN + 1)).into_bytes(),
                CredentialsError::BadToken,
            ),
            (vec![b'a'; MAX_HEADER + 1], CredentialsError::TooLong),
        ];
        for (value, expected) in cases {
            assert_eq!(
                Credentials::parse(&value),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&value)
            );
        }
        // The token never shows in debug output.
        let parsed = Credentials::parse(b"Bearer secret123").unwrap();
        assert!(!format!("{parsed:?}").contains("secret123"));
    }
}
