//! Which checksum databases a proxy serves: `[[proxy.sumdb]]` entries of name, verifier key
//! and URL (by default sum.golang.org with the key the go command knows).

use serde::{Deserialize, Serialize};

use crate::note::Verifier;

/// sum.golang.org's key, as the go command has it built in.
pub const SUM_GOLANG_ORG_VKEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// One checksum database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Its name, as clients ask for it (`/sumdb/NAME/...`) and as GOSUMDB names it.
    pub name: String,
    /// Its verifier key, `NAME+HASH+KEY`.
    pub vkey: String,
    /// Where it is served (`https://sum.golang.org`; or a proxy's `.../sumdb/NAME`).
    pub url: String,
}

impl Database {
    /// sum.golang.org.
    pub fn sum_golang_org() -> Self {
        Self {
            name: "sum.golang.org".into(),
            vkey: SUM_GOLANG_ORG_VKEY.into(),
            url: "https://sum.golang.org".into(),
        }
    }

    /// Its verifier, if the key is good and names this database.
    pub fn verifier(&self) -> Result<Verifier, String> {
        let verifier = Verifier::parse(&self.vkey).map_err(|e| e.to_string())?;
        if verifier.name() != self.name {
            return Err(format!(
                "the key is for {:?}, not {:?}",
                verifier.name(),
                self.name
            ));
        }
        Ok(verifier)
    }
}

/// Every problem with a list of databases (`at` is where it is configured).
pub fn problems(at: &str, databases: &[Database]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, db) in databases.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if let Err(e) = db.verifier() {
            problems.push(format!("{at}.vkey: {e}"));
        }
        let url_ok = (db.url.starts_with("https://") || db.url.starts_with("http://"))
            && !db.url.contains('@')
            && !db.url.contains(char::is_whitespace);
        if !url_ok {
            problems.push(format!(
                "{at}.url: an http:// or https:// URL without credentials"
            ));
        }
        if databases[..i].iter().any(|other| other.name == db.name) {
            problems.push(format!("{at}.name: {:?} is configured twice", db.name));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_mistakes_are_reported() {
        assert!(problems("proxy.sumdb", &[Database::sum_golang_org()]).is_empty());
        let bad = [
            Database {
                name: "sum.golang.org".into(),
                vkey: "sum.golang.org+033de0ae+AAAA".into(),
                url: "ftp://x".into(),
            },
            Database {
                name: "other.example".into(),
                vkey: SUM_GOLANG_ORG_VKEY.into(),
                url: "https://u:p@other.example".into(),
            },
            Database::sum_golang_org(),
        ];
        let found = problems("proxy.sumdb", &bad).join("\n");
        for needle in [
            "proxy.sumdb[0].vkey",
            "proxy.sumdb[0].url",
            "proxy.sumdb[1].vkey: the key is for \"sum.golang.org\", not \"other.example\"",
            "proxy.sumdb[1].url",
            "proxy.sumdb[2].name: \"sum.golang.org\" is configured twice",
        ] {
            assert!(found.contains(needle), "missing {needle:?} in\n{found}");
        }
    }
}
