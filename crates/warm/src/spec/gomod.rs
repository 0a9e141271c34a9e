//! A main module's `go.mod`: what it requires, excludes and replaces.
//!
//! The same parser reads dependencies' `.mod` files during the walk (which then uses only
//! their requirements, as the go command does). Directives that name nothing to fetch
//! (`go`, `toolchain`, `retract`, `godebug`, `tool`, any future one) are skipped, blocks
//! included, so a newer go.mod still parses.

use goproxy_protocol::path::check_path;

use super::lex::{lex, Tok};
use super::{check_count, check_size, shown, SpecError, Target};

/// The parts of a go.mod that decide what to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoMod {
    /// The `module` directive's path, if any (a main module's path need not be fetchable).
    pub module: Option<String>,
    /// `require` directives, in file order.
    pub requires: Vec<Target>,
    /// `exclude` directives: versions the main module's build never uses.
    pub excludes: Vec<Target>,
    /// `replace` directives, in file order.
    pub replaces: Vec<Replace>,
}

/// One `replace` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The module path replaced.
    pub module: String,
    /// The one version replaced, or `None` for every version.
    pub version: Option<String>,
    /// What replaces it.
    pub with: Replacement,
}

/// The right-hand side of a `replace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Another module version: fetched instead of the replaced one.
    Module(Target),
    /// A local directory (`./x`, `../x`, `/x`): nothing to fetch, and its requirements are
    /// out of reach.
    Dir(String),
}

/// Parses a go.mod. Errors name the line.
pub fn parse_go_mod(text: &str) -> Result<GoMod, SpecError> {
    check_size(text)?;
    let mut go_mod = GoMod::default();
    let mut block: Option<(String, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let toks = lex(raw).map_err(|reason| SpecError::Line { line, reason })?;
        let Some(first) = toks.first() else { continue };
        if let Some((verb, _)) = &block {
            if toks == [Tok::Close] {
                block = None;
            } else {
                go_mod.directive(verb, &toks, line)?;
            }
            continue;
        }
        let Tok::Word(verb) = first else {
            return Err(SpecError::Line {
                line,
                reason: "expected a directive such as `require`".into(),
            });
        };
        match &toks[1..] {
            [Tok::Open] => block = Some((verb.clone(), line)),
            [Tok::Open, Tok::Close] => {}
            args => go_mod.directive(verb, args, line)?,
        }
    }
    if let Some((verb, line)) = block {
        return Err(SpecError::Line {
            line,
            reason: format!("`{}` block is never closed", shown(&verb)),
        });
    }
    Ok(go_mod)
}

impl GoMod {
    fn entries(&self) -> usize {
        self.requires.len() + self.excludes.len() + self.replaces.len()
    }

    fn directive(&mut self, verb: &str, args: &[Tok], line: usize) -> Result<(), SpecError> {
        let usage = |text: &str| SpecError::Line {
            line,
            reason: format!("malformed `{verb}`: expected `{verb} {text}`"),
        };
        match verb {
            "module" => match args {
                [Tok::Word(path)] => self.module = Some(path.clone()),
                _ => return Err(usage("module/path")),
            },
            "require" | "exclude" => {
                let [Tok::Word(path), Tok::Word(version)] = args else {
                    return Err(usage("module/path v1.2.3"));
                };
                check_count(self.entries(), line)?;
                let target = Target::new(path, version).map_err(|e| e.at(line))?;
                match verb {
                    "require" => self.requires.push(target),
                    _ => self.excludes.push(target),
                }
            }
            "replace" => {
                check_count(self.entries(), line)?;
                let replace = parse_replace(args)
                    .ok_or_else(|| usage("module/path [v1.2.3] => other/path v1.2.3 | ./dir"))?
                    .map_err(|e| e.at(line))?;
                self.replaces.push(replace);
            }
            _ => {} // Names nothing to fetch.
        }
        Ok(())
    }
}

/// `None` when the shape is wrong; `Some(Err)` when a path or version is invalid.
fn parse_replace(args: &[Tok]) -> Option<Result<Replace, SpecError>> {
    let arrow = args.iter().position(|t| *t == Tok::Arrow)?;
    let old = words(&args[..arrow])?;
    let new = words(&args[arrow + 1..])?;
    let sides = 1..=2;
    if !sides.contains(&old.len()) || !sides.contains(&new.len()) {
        return None;
    }
    Some(replace(&old, &new))
}

/// Validates both sides of a `replace`, each one or two words.
fn replace(old: &[&str], new: &[&str]) -> Result<Replace, SpecError> {
    let refuse = |text: &str, reason: &str| SpecError::Target {
        text: shown(text),
        reason: reason.into(),
    };
    let module = old[0];
    let version = match old.get(1) {
        Some(version) => Some(Target::new(module, version)?.version),
        None => {
            check_path(module).map_err(|e| refuse(module, &e.to_string()))?;
            None
        }
    };
    let with =
        match (new[0], new.get(1)) {
            (dir, None) if is_dir_path(dir) => Replacement::Dir(dir.to_string()),
            (dir, Some(_)) if is_dir_path(dir) => {
                return Err(refuse(dir, "a directory replacement takes no version"))
            }
            (path, None) => return Err(refuse(
                path,
                "a replacement module needs a version (a directory must start with ./, ../ or /)",
            )),
            (path, Some(version)) => Replacement::Module(Target::new(path, version)?),
        };
    Ok(Replace {
        module: module.to_string(),
        version,
        with,
    })
}

/// The words of a token run, or `None` if it holds punctuation.
fn words(toks: &[Tok]) -> Option<Vec<&str>> {
    toks.iter()
        .map(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect()
}

/// `modfile.IsDirectoryPath`: a local path rather than a module path.
fn is_dir_path(path: &str) -> bool {
    const PREFIXES: [&str; 6] = ["./", "../", "/", ".\\", "..\\", "\\"];
    let drive =
        path.len() >= 2 && path.as_bytes()[0].is_ascii_alphabetic() && path.as_bytes()[1] == b':';
    path == "." || path == ".." || drive || PREFIXES.iter().any(|p| path.starts_with(p))
}
