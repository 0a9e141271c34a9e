//! Tokens of one go.mod line, as `golang.org/x/mod/modfile` reads them: words separated by
//! white space, `(` and `)` as punctuation, `=>`, `"…"` and `` `…` `` strings, and `//`
//! comments to the end of the line. Other punctuation (`[`, `,` in `retract` ranges) stays
//! inside words: only ignored directives use it.

use std::iter::Peekable;
use std::str::CharIndices;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A bare word or the contents of a quoted string.
    Word(String),
    /// `=>` in a replace directive.
    Arrow,
    /// `(` opening a block.
    Open,
    /// `)` closing a block.
    Close,
}

/// Splits one line into tokens; the error says what is malformed.
pub(super) fn lex(line: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if line[start..].starts_with("//") {
            break;
        } else if c == '(' || c == ')' {
            chars.next();
            toks.push(if c == '(' { Tok::Open } else { Tok::Close });
        } else if c == '"' {
            chars.next();
            toks.push(Tok::Word(interpreted(&mut chars)?));
        } else if c == '`' {
            chars.next();
            toks.push(Tok::Word(raw(&mut chars)?));
        } else {
            toks.push(word(line, &mut chars));
        }
    }
    Ok(toks)
}

/// A bare word, up to white space, punctuation, a quote or a comment.
fn word(line: &str, chars: &mut Peekable<CharIndices<'_>>) -> Tok {
    let start = chars.peek().map_or(line.len(), |&(i, _)| i);
    let mut end = line.len();
    while let Some(&(i, c)) = chars.peek() {
        let ends =
            c.is_whitespace() || matches!(c, '(' | ')' | '"' | '`') || line[i..].starts_with("//");
        if ends {
            end = i;
            break;
        }
        chars.next();
    }
    match &line[start..end] {
        "=>" => Tok::Arrow,
        text => Tok::Word(text.to_string()),
    }
}

/// The rest of a `"…"` string (opening quote consumed), with Go's simple escapes.
fn interpreted(chars: &mut Peekable<CharIndices<'_>>) -> Result<String, String> {
    let mut out = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => return Err(format!("unsupported escape \\{other} in string")),
                None => break,
            },
            other => out.push(other),
        }
    }
    Err("unterminated quoted string".into())
}

/// The rest of a `` `…` `` string (opening quote consumed), taken literally.
fn raw(chars: &mut Peekable<CharIndices<'_>>) -> Result<String, String> {
    let mut out = String::new();
    for (_, c) in chars.by_ref() {
        if c == '`' {
            return Ok(out);
        }
        out.push(c);
    }
    Err("unterminated raw string".into())
}
