//! The `go help private` pattern syntax (GOPRIVATE, GONOPROXY): a comma-separated list of
//! `path.Match` globs, each matching a *prefix* of the module path made of as many path
//! elements as the glob has.
//!
//! `corp.example` matches `corp.example/anything`; `*.corp.example` matches
//! `git.corp.example/team/repo`; `corp.example/*/internal` matches
//! `corp.example/team/internal/x` but not `corp.example/internal`. In a glob, `*` is any run
//! of characters other than `/`, `?` one such character, `[a-z]`/`[^a-z]` a class, and `\`
//! escapes the next character. A malformed glob is an error here (the go command silently
//! ignores it, which would make a rule never match without anyone noticing).

use std::fmt;

/// A malformed pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The list has no glob at all.
    #[error("the pattern list is empty")]
    Empty,
    /// A glob that `path.Match` would reject.
    #[error("{glob:?} is not a valid glob: {why}")]
    Bad {
        /// The glob as written.
        glob: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// One character, compared exactly.
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// One glob of a pattern list, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
    /// Path elements the glob spans, minus one.
    slashes: usize,
}

impl Glob {
    /// Compiles one glob (a trailing `/` is dropped, as the go command does).
    pub fn parse(glob: &str) -> Result<Self, PatternError> {
        let source = glob.strip_suffix('/').unwrap_or(glob).to_string();
        let bad = |why| PatternError::Bad {
            glob: glob.to_string(),
            why,
        };
        let mut tokens = Vec::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '\\' => match chars.next() {
                    Some(escaped) => tokens.push(Token::Literal(escaped)),
                    None => return Err(bad("it ends with a lone \\")),
                },
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        match chars.peek() {
                            None => return Err(bad("a [ class is not closed")),
                            Some(']') if !ranges.is_empty() => {
                                chars.next();
                                break;
                            }
                            _ => {}
                        }
                        let lo = class_char(&mut chars).map_err(bad)?;
                        let hi = if chars.next_if_eq(&'-').is_some() {
                            class_char(&mut chars).map_err(bad)?
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        let slashes = source.matches('/').count();
        Ok(Self {
            source,
            tokens,
            slashes,
        })
    }

    /// The glob as written (without a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this glob matches the leading path elements of `module` (as many elements
    /// as the glob has; a module with fewer elements does not match).
    pub fn matches_prefix(&self, module: &str) -> bool {
        let mut elements = module.match_indices('/').map(|(i, _)| i);
        let prefix = match elements.nth(self.slashes) {
            Some(end) => &module[..end],
            None if module.matches('/').count() == self.slashes => module,
            None => return false,
        };
        self.matches(prefix)
    }

    /// `path.Match(glob, name)` for a well-formed glob.
    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // reach[i]: the tokens so far can consume exactly name[..i].
        let mut reach = vec![false; name.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; name.len() + 1];
            match token {
                Token::Star => {
                    let mut open = false;
                    for i in 0..=name.len() {
                        open = reach[i] || (open && name[i - 1] != '/');
                        next[i] = open;
                    }
                }
                single => {
                    for i in 0..name.len() {
                        if reach[i] && single_matches(single, name[i]) {
                            next[i + 1] = true;
                        }
                    }
                }
            }
            reach = next;
            if !reach.contains(&true) {
                return false;
            }
        }
        reach[name.len()]
    }
}

/// Reads one (possibly escaped) character inside a class.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, &'static str> {
    let c = match chars.next() {
        None => return Err("a [ class is not closed"),
        Some('-') => return Err("a - in a class must be escaped or between two characters"),
        Some(']') => return Err("a ] in a class must be escaped"),
        Some('\\') => chars.next().ok_or("it ends with a lone \\")?,
        Some(c) => c,
    };
    if chars.peek().is_none() {
        return Err("a [ class is not closed");
    }
    Ok(c)
}

fn single_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::One => c != '/',
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
        Token::Star => unreachable!("stars are handled by the caller"),
    }
}

/// A comma-separated list of globs, as GOPRIVATE takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPatterns {
    globs: Vec<Glob>,
}

impl PathPatterns {
    /// Parses `a.example/*,b.example` (empty elements are skipped, as the go command does;
    /// a list with none left is an error).
    pub fn parse(list: &str) -> Result<Self, PatternError> {
        let globs = list
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty() && *g != "/")
            .map(Glob::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if globs.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Self { globs })
    }

    /// The first glob that matches `module`, if any.
    pub fn first_match(&self, module: &str) -> Option<&Glob> {
        self.globs.iter().find(|g| g.matches_prefix(module))
    }

    /// Whether any glob matches `module`.
    pub fn matches(&self, module: &str) -> bool {
        self.first_match(module).is_some()
    }
}

impl fmt::Display for PathPatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.globs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(g.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_matches(glob: &str, name: &str) -> Result<bool, PatternError> {
        Glob::parse(glob).map(|g| g.matches(name))
    }

    /// The cases of Go's own `path.Match` tests, answers and errors as Go gives them.
    #[test]
    fn single_globs_match_as_path_match_does() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[-x]", "x", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a/b[", "x", None),
            ("*x", "xxx", Some(true)),
        ];
        for (glob, name, want) in cases {
            let got = glob_matches(glob, name).ok();
            assert_eq!(got, *want, "path.Match({glob:?}, {name:?})");
        }
    }

    #[test]
    fn a_glob_matches_as_many_leading_elements_as_it_has() {
        let p = PathPatterns::parse("corp.example,*.internal.example/team,x.example/*/v2").unwrap();
        for (module, want) in [
            ("corp.example", true),
            ("corp.example/lib/sub", true),
            ("corp.example.evil.com/lib", false),
            ("notcorp.example", false),
            ("git.internal.example/team/repo", true),
            ("git.internal.example/team", true),
            ("git.internal.example/other/repo", false),
            ("git.internal.example", false),
            ("x.example/a/v2", true),
            ("x.example/a/v2/pkg", true),
            ("x.example/a/v3", false),
            ("x.example/a", false),
            ("github.com/gin-gonic/gin", false),
        ] {
            assert_eq!(p.matches(module), want, "{module}");
        }
        assert_eq!(
            p.first_match("git.internal.example/team/repo")
                .map(Glob::as_str),
            Some("*.internal.example/team")
        );
    }

    #[test]
    fn lists_skip_empty_elements_and_trailing_slashes() {
        let p = PathPatterns::parse(" corp.example/ ,, other.example ").unwrap();
        assert_eq!(p.to_string(), "corp.example,other.example");
        assert!(p.matches("corp.example/x"));
        assert_eq!(PathPatterns::parse(" , ,"), Err(PatternError::Empty));
        assert!(matches!(
            PathPatterns::parse("good.example,[bad"),
            Err(PatternError::Bad { .. })
        ));
    }

    #[test]
    fn long_hostile_module_paths_are_matched_in_bounded_time() {
        let p = PathPatterns::parse("a*a*a*a*a*a*a*a*a*b").unwrap();
        let module = "a".repeat(4000);
        let started = std::time::Instant::now();
        assert!(!p.matches(&module));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
