//! A schema-less parser for the protobuf text format (the `.txt` / `.pbtxt` form of a message).
//!
//! # Design
//!
//! The input is tokenized and parsed into an untyped tree: a [`Message`] is the list of its
//! [`Field`]s in input order, and each field holds either a scalar [`Value`] or a nested
//! [`Message`]. Repeated fields simply appear several times. Nothing here knows a `.proto`
//! schema: the caller (e.g. [`super::p4info`]) maps names onto its own types and checks them,
//! which keeps this module generic and small. Every field and value carries its [`Pos`], so a
//! caller can report schema errors at the right line and column.
//!
//! Accepted syntax (the protobuf text-format language specification):
//! * `name: scalar`, `name { ... }`, `name: { ... }`, `name < ... >`, `name: < ... >`;
//! * lists: `name: [1, 2]`, `name: [{ ... }, { ... }]` and `name [{ ... }]`, flattened into
//!   repeated fields;
//! * scalars: identifiers (enum names, `true`, `inf`...), integers (decimal, `0x` hex, `0`
//!   octal, with an optional `-`), floats (`1.5`, `.5`, `1e3`, `2.0f`, `-inf`), strings in double
//!   or single quotes with C escapes (`\n`, `\NNN` octal, `\xNN` hex, `\uXXXX`, `\UXXXXXXXX`),
//!   adjacent strings concatenated;
//! * extension and `Any` field names in brackets (`[type.googleapis.com/pkg.Msg] { ... }`);
//! * an optional `,` or `;` after each field; `#` comments to the end of the line.
//!
//! # Safety against hostile input
//!
//! The parser never panics: every index is checked, integer overflow is an error, and nesting
//! is limited to [`MAX_DEPTH`] messages so deeply nested input cannot overflow the stack (the
//! parser recurses once per nested message; so do callers that walk the tree).
//!
//! # Limitations
//!
//! * Integer literals must fit in 64 bits of magnitude (a sign plus a `u64`); typing them
//!   further (e.g. `uint32`) is the caller's job.
//! * Strings are kept as bytes (escapes can produce any byte); the caller checks UTF-8 where
//!   its schema says `string`.
//! * Column numbers count Unicode scalar values from 1, not bytes.

use std::fmt;

/// The deepest nesting of messages accepted; deeper input is rejected with an error.
///
/// Real P4Info nests about 10 levels (in `type_info`); 100 leaves room while keeping the
/// recursion far below any thread's stack size.
pub const MAX_DEPTH: usize = 100;

/// A position in the input: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A syntax error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct TextProtoError {
    /// Where the offending token starts.
    pub pos: Pos,
    /// What is wrong, in words.
    pub message: String,
}

/// An integer literal: a sign and a 64-bit magnitude, so that both `u64::MAX` and `i64::MIN`
/// are representable before the caller picks a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Int {
    /// Whether the literal had a leading `-`.
    pub negative: bool,
    /// The absolute value.
    pub magnitude: u64,
}

impl Int {
    /// The value as a `u64`, if it is not negative (`-0` counts as 0).
    pub fn to_u64(self) -> Option<u64> {
        if self.negative && self.magnitude != 0 {
            None
        } else {
            Some(self.magnitude)
        }
    }

    /// The value as a `u32`, if in range.
    pub fn to_u32(self) -> Option<u32> {
        self.to_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// The value as an `i64`, if in range.
    pub fn to_i64(self) -> Option<i64> {
        if self.negative {
            0i64.checked_sub_unsigned(self.magnitude)
        } else {
            i64::try_from(self.magnitude).ok()
        }
    }

    /// The value as an `i32`, if in range.
    pub fn to_i32(self) -> Option<i32> {
        self.to_i64().and_then(|v| i32::try_from(v).ok())
    }
}

/// The value of one field occurrence.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A bare identifier: an enum value name, `true`/`false`, `inf`, `nan`...
    Ident(String),
    /// An integer literal.
    Int(Int),
    /// A floating-point literal (including `-inf`, `-nan`, written with a sign).
    Float(f64),
    /// A string literal, escapes resolved, adjacent literals concatenated. Bytes, not
    /// necessarily UTF-8.
    Str(Vec<u8>),
    /// A nested message.
    Message(Message),
}

impl Value {
    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Ident(_) => "an identifier",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Message(_) => "a message",
        }
    }
}

/// One occurrence of a field in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field name as written; extension names keep their brackets (`[pkg.ext]`).
    pub name: String,
    /// Where the name starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
    /// Where the value starts (for a message, its opening `{` or `<`).
    pub value_pos: Pos,
}

/// A message: its field occurrences in input order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// The fields, in input order; a repeated field appears once per element.
    pub fields: Vec<Field>,
}

impl Message {
    /// The occurrences of the field `name`, in input order.
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }
}

/// Parse a whole text-format message. Empty input (or only comments) is an empty message.
pub fn parse(text: &str) -> Result<Message, TextProtoError> {
    let mut parser = Parser { lexer: Lexer::new(text), peeked: None };
    parser.fields(0, None)
}

/// A token kind. Numbers are lexed without their sign: `-` is its own token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(u64),
    Float(f64),
    Str(Vec<u8>),
    /// One of `{ } < > [ ] : , ; -`.
    Punct(u8),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(_) | Tok::Float(_) => "a number".to_string(),
            Tok::Str(_) => "a string".to_string(),
            Tok::Punct(c) => format!("`{}`", char::from(*c)),
            Tok::Eof => "the end of the input".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    pos: Pos,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, TextProtoError> {
    Err(TextProtoError { pos, message: message.into() })
}

/// Byte-wise scanner. `i` only ever rests on a character boundary between tokens, because
/// everything outside string literals is ASCII or rejected on sight.
struct Lexer<'a> {
    text: &'a str,
    src: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, src: text.as_bytes(), i: 0, line: 1, col: 1 }
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.i.saturating_add(ahead)).copied()
    }

    /// The character at the cursor, for error messages.
    fn peek_char(&self) -> Option<char> {
        self.text.get(self.i..).and_then(|s| s.chars().next())
    }

    fn bump(&mut self) {
        if let Some(b) = self.peek() {
            self.i += 1;
            if b == b'\n' {
                self.line = self.line.saturating_add(1);
                self.col = 1;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a new character starts here.
                self.col = self.col.saturating_add(1);
            }
        }
    }

    fn skip_blanks(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => self.bump(),
                b'#' => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, TextProtoError> {
        self.skip_blanks();
        let pos = self.pos();
        let Some(b) = self.peek() else {
            return Ok(Token { tok: Tok::Eof, pos });
        };
        let tok = match b {
            b'{' | b'}' | b'<' | b'>' | b'[' | b']' | b':' | b',' | b';' | b'-' => {
                self.bump();
                Tok::Punct(b)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    self.bump();
                }
                Tok::Ident(self.text.get(start..self.i).unwrap_or_default().to_string())
            }
            b'0'..=b'9' => self.number(pos)?,
            b'.' if matches!(self.peek_at(1), Some(b'0'..=b'9')) => self.number(pos)?,
            b'"' | b'\'' => Tok::Str(self.string(b, pos)?),
            _ => {
                let c = self.peek_char().unwrap_or(char::REPLACEMENT_CHARACTER);
                return err(pos, format!("unexpected character {c:?}"));
            }
        };
        Ok(Token { tok, pos })
    }

    /// Lex a number starting at the cursor (a digit, or `.` and a digit).
    ///
    /// The whole run of letters, digits, `_` and `.` is taken first and then classified, so
    /// `12ab` is one bad token rather than `12` followed by an identifier.
    fn number(&mut self, pos: Pos) -> Result<Tok, TextProtoError> {
        let start = self.i;
        let is_hex = self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X'));
        let mut prev = 0u8;
        while let Some(c) = self.peek() {
            let take = c.is_ascii_alphanumeric()
                || c == b'_'
                || c == b'.'
                // An exponent sign, as in `1e-5`; hex digits include `e`, so not there.
                || (matches!(c, b'+' | b'-') && !is_hex && matches!(prev, b'e' | b'E'));
            if !take {
                break;
            }
            prev = c;
            self.bump();
        }
        let s = self.text.get(start..self.i).unwrap_or_default();
        classify_number(s)
            .ok_or_else(|| TextProtoError { pos, message: format!("invalid number `{s}`") })?
            .map_err(|message| TextProtoError { pos, message })
    }

    /// Lex a string literal opened by `quote`; the cursor is on the quote.
    fn string(&mut self, quote: u8, start: Pos) -> Result<Vec<u8>, TextProtoError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return err(start, "unterminated string"),
                Some(b'\\') => {
                    let esc = self.pos();
                    self.bump();
                    self.escape(esc, start, &mut out)?;
                }
                Some(c) => {
                    self.bump();
                    if c == quote {
                        return Ok(out);
                    }
                    out.push(c);
                }
            }
        }
    }

    /// Resolve one escape; the cursor is just after the backslash at `esc`.
    fn escape(&mut self, esc: Pos, start: Pos, out: &mut Vec<u8>) -> Result<(), TextProtoError> {
        let Some(c) = self.peek() else {
            return err(start, "unterminated string");
        };
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0C),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0B),
            b'\\' | b'\'' | b'"' | b'?' => Some(c),
            _ => None,
        };
        if let Some(byte) = simple {
            self.bump();
            out.push(byte);
            return Ok(());
        }
        match c {
            b'0'..=b'7' => {
                let mut v: u32 = 0;
                for _ in 0..3 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.bump();
                        }
                        _ => break,
                    }
                }
                let byte = u8::try_from(v).map_err(|_| TextProtoError {
                    pos: esc,
                    message: format!("octal escape \\{v:o} is above \\377"),
                })?;
                out.push(byte);
            }
            b'x' | b'X' => {
                self.bump();
                let v = self.hex_digits(2);
                match v {
                    // Two hex digits at most, so the value fits in a byte.
                    Some((v, _)) => out.push(u8::try_from(v).unwrap_or(u8::MAX)),
                    None => return err(esc, "`\\x` escape without hex digits"),
                }
            }
            b'u' | b'U' => {
                self.bump();
                let want = if c == b'u' { 4 } else { 8 };
                let ch = match self.hex_digits(want) {
                    Some((v, n)) if n == want => char::from_u32(v),
                    _ => return err(esc, format!("`\\{}` escape needs {want} hex digits", char::from(c))),
                };
                let Some(ch) = ch else {
                    return err(esc, "unicode escape is not a valid character (surrogate or above U+10FFFF)");
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            b'\n' => return err(start, "unterminated string"),
            _ => {
                let ch = self.peek_char().unwrap_or(char::REPLACEMENT_CHARACTER);
                return err(esc, format!("unknown escape `\\{ch}`"));
            }
        }
        Ok(())
    }

    /// Read up to `max` hex digits; returns the value and how many were read, or `None` if
    /// there were none. `max` is at most 8, so the value fits in a `u32`.
    fn hex_digits(&mut self, max: usize) -> Option<(u32, usize)> {
        let mut v: u32 = 0;
        let mut n = 0;
        while n < max {
            let Some(d) = self.peek().and_then(|b| char::from(b).to_digit(16)) else { break };
            v = (v << 4) | d;
            n += 1;
            self.bump();
        }
        (n > 0).then_some((v, n))
    }

    /// After a `[` that opens a field name: read `pkg.ext` or `type.googleapis.com/pkg.Msg`
    /// and the closing `]`; returns the name with its brackets.
    fn extension_name(&mut self, open: Pos) -> Result<String, TextProtoError> {
        self.skip_blanks();
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/')) {
            self.bump();
        }
        let name = self.text.get(start..self.i).unwrap_or_default();
        if name.is_empty() {
            return err(self.pos(), "expected an extension or type URL name after `[`");
        }
        let name = format!("[{name}]");
        self.skip_blanks();
        if self.peek() != Some(b']') {
            return err(self.pos(), format!("expected `]` to close the field name opened at {open}"));
        }
        self.bump();
        Ok(name)
    }
}

/// Classify a number token. `None` means malformed; `Some(Err)` carries a specific message.
fn classify_number(s: &str) -> Option<Result<Tok, String>> {
    let b = s.as_bytes();
    if b.len() > 2 && b[0] == b'0' && matches!(b[1], b'x' | b'X') {
        let digits = s.get(2..)?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        return Some(u64::from_str_radix(digits, 16).map(Tok::Int).map_err(|_| out_of_range(s)));
    }
    if b.iter().all(u8::is_ascii_digit) {
        if b.len() > 1 && b[0] == b'0' {
            if !b.iter().all(|c| matches!(c, b'0'..=b'7')) {
                return None;
            }
            return Some(u64::from_str_radix(s, 8).map(Tok::Int).map_err(|_| out_of_range(s)));
        }
        return Some(s.parse::<u64>().map(Tok::Int).map_err(|_| out_of_range(s)));
    }
    // A float: digits [. digits] [e [+-] digits] [f], with at least one mantissa digit.
    let body = s.strip_suffix(['f', 'F']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (body.get(..at)?, Some(body.get(at + 1..)?)),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) || int_part.len() + frac_part.len() == 0 {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !all_digits(e) {
            return None;
        }
    }
    Some(body.parse::<f64>().map(Tok::Float).map_err(|_| format!("invalid number `{s}`")))
}

fn out_of_range(s: &str) -> String {
    format!("integer literal `{s}` does not fit in 64 bits")
}

/// Recursive-descent parser over the lexer, with one token of look-ahead.
struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, TextProtoError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => err(self.lexer.pos(), "internal error: no token"),
        }
    }

    fn next(&mut self) -> Result<Token, TextProtoError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn peek_punct(&mut self) -> Result<Option<u8>, TextProtoError> {
        Ok(match self.peek()?.tok {
            Tok::Punct(c) => Some(c),
            _ => None,
        })
    }

    /// Parse fields up to `close` (`}` or `>`, consumed) or, at top level (`close == None`),
    /// up to the end of the input. `open` is where the enclosing message was opened.
    fn fields(&mut self, depth: usize, close: Option<(u8, Pos)>) -> Result<Message, TextProtoError> {
        let mut msg = Message::default();
        loop {
            let t = self.peek()?;
            match (&t.tok, close) {
                (Tok::Eof, None) => return Ok(msg),
                (Tok::Eof, Some((c, open))) => {
                    return err(
                        t.pos,
                        format!(
                            "unexpected end of input: expected `{}` to close the message opened at {open}",
                            char::from(c)
                        ),
                    )
                }
                (Tok::Punct(c), Some((want, _))) if *c == want => {
                    self.next()?;
                    return Ok(msg);
                }
                _ => self.field(depth, &mut msg.fields)?,
            }
            if matches!(self.peek_punct()?, Some(b',' | b';')) {
                self.next()?;
            }
        }
    }

    /// Parse one field (name, optional `:`, value or list) and append its occurrences.
    fn field(&mut self, depth: usize, out: &mut Vec<Field>) -> Result<(), TextProtoError> {
        let name_tok = self.next()?;
        let pos = name_tok.pos;
        let name = match name_tok.tok {
            Tok::Ident(s) => s,
            // The `[` was the only token looked at, so the lexer sits right after it.
            Tok::Punct(b'[') => self.lexer.extension_name(pos)?,
            other => return err(pos, format!("expected a field name, found {}", other.describe())),
        };
        let colon = self.peek_punct()? == Some(b':');
        if colon {
            self.next()?;
        }
        let t = self.peek()?;
        let value_pos = t.pos;
        match t.tok {
            Tok::Punct(b'{' | b'<') => {
                let value = Value::Message(self.message(depth)?);
                out.push(Field { name, pos, value, value_pos });
            }
            Tok::Punct(b'[') => self.list(depth, name, pos, colon, out)?,
            _ if colon => {
                let value = self.scalar()?;
                out.push(Field { name, pos, value, value_pos });
            }
            ref other => {
                return err(
                    value_pos,
                    format!("expected `:` or `{{` after field name `{name}`, found {}", other.describe()),
                )
            }
        }
        Ok(())
    }

    /// Parse a nested message; the look-ahead token is its opening `{` or `<`.
    fn message(&mut self, depth: usize) -> Result<Message, TextProtoError> {
        let open = self.next()?;
        let close = if open.tok == Tok::Punct(b'<') { b'>' } else { b'}' };
        if depth >= MAX_DEPTH {
            return err(open.pos, format!("messages nested deeper than {MAX_DEPTH} levels"));
        }
        self.fields(depth + 1, Some((close, open.pos)))
    }

    /// Parse `[a, b, ...]` as repeated occurrences of `name`. Without a `:` before the list,
    /// protobuf only allows messages in it.
    fn list(
        &mut self,
        depth: usize,
        name: String,
        pos: Pos,
        colon: bool,
        out: &mut Vec<Field>,
    ) -> Result<(), TextProtoError> {
        let open = self.next()?.pos;
        if self.peek_punct()? == Some(b']') {
            self.next()?;
            return Ok(());
        }
        loop {
            let t = self.peek()?;
            let value_pos = t.pos;
            let value = match t.tok {
                Tok::Punct(b'{' | b'<') => Value::Message(self.message(depth)?),
                _ if colon => self.scalar()?,
                ref other => {
                    return err(
                        value_pos,
                        format!("expected a message in the list of `{name}` (no `:`), found {}", other.describe()),
                    )
                }
            };
            out.push(Field { name: name.clone(), pos, value, value_pos });
            let t = self.next()?;
            match t.tok {
                Tok::Punct(b',') => {}
                Tok::Punct(b']') => return Ok(()),
                other => {
                    return err(
                        t.pos,
                        format!("expected `,` or `]` in the list opened at {open}, found {}", other.describe()),
                    )
                }
            }
        }
    }

    /// Parse a scalar value, with an optional leading `-` and string concatenation.
    fn scalar(&mut self) -> Result<Value, TextProtoError> {
        let t = self.next()?;
        Ok(match t.tok {
            Tok::Ident(s) => Value::Ident(s),
            Tok::Int(magnitude) => Value::Int(Int { negative: false, magnitude }),
            Tok::Float(f) => Value::Float(f),
            Tok::Str(mut s) => {
                while let Tok::Str(_) = self.peek()?.tok {
                    if let Ok(Token { tok: Tok::Str(more), .. }) = self.next() {
                        s.extend_from_slice(&more);
                    }
                }
                Value::Str(s)
            }
            Tok::Punct(b'-') => {
                let n = self.next()?;
                match n.tok {
                    Tok::Int(magnitude) => Value::Int(Int { negative: true, magnitude }),
                    Tok::Float(f) => Value::Float(-f),
                    Tok::Ident(s) if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") => {
                        Value::Float(f64::NEG_INFINITY)
                    }
                    Tok::Ident(s) if s.eq_ignore_ascii_case("nan") => Value::Float(f64::NAN),
                    other => return err(n.pos, format!("expected a number after `-`, found {}", other.describe())),
                }
            }
            other => return err(t.pos, format!("expected a value, found {}", other.describe())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Message {
        match parse(text) {
            Ok(m) => m,
            Err(e) => panic!("parse of {text:?} failed: {e}"),
        }
    }

    fn e(text: &str) -> TextProtoError {
        match parse(text) {
            Ok(m) => panic!("parse of {text:?} should fail, got {m:?}"),
            Err(e) => e,
        }
    }

    /// The single value of a one-field message.
    fn one(text: &str) -> Value {
        let m = p(text);
        assert_eq!(m.fields.len(), 1, "{text:?}");
        m.fields.into_iter().next().map(|f| f.value).unwrap_or(Value::Int(Int::default()))
    }

    fn int(negative: bool, magnitude: u64) -> Value {
        Value::Int(Int { negative, magnitude })
    }

    fn at(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn empty_and_comment_only_inputs_are_empty_messages() {
        assert_eq!(p(""), Message::default());
        assert_eq!(p("  \n\t\r\n"), Message::default());
        assert_eq!(p("# just a comment\n# another"), Message::default());
    }

    #[test]
    fn scalars_of_every_kind() {
        assert_eq!(one("a: FOO"), Value::Ident("FOO".into()));
        assert_eq!(one("a: 0"), int(false, 0));
        assert_eq!(one("a: 42"), int(false, 42));
        assert_eq!(one("a: -42"), int(true, 42));
        assert_eq!(one("a: 0x1F"), int(false, 31));
        assert_eq!(one("a: 0XfF"), int(false, 255));
        assert_eq!(one("a: -0x10"), int(true, 16));
        assert_eq!(one("a: 017"), int(false, 15));
        assert_eq!(one("a: 18446744073709551615"), int(false, u64::MAX));
        assert_eq!(one("a: 1.5"), Value::Float(1.5));
        assert_eq!(one("a: .25"), Value::Float(0.25));
        assert_eq!(one("a: 3."), Value::Float(3.0));
        assert_eq!(one("a: 1e3"), Value::Float(1000.0));
        assert_eq!(one("a: 2.5E-1"), Value::Float(0.25));
        assert_eq!(one("a: 2.0f"), Value::Float(2.0));
        assert_eq!(one("a: 7F"), Value::Float(7.0));
        assert_eq!(one("a: -1.5"), Value::Float(-1.5));
        assert_eq!(one("a: -inf"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(one("a: -Infinity"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(one("a: inf"), Value::Ident("inf".into()));
        assert!(matches!(one("a: -nan"), Value::Float(f) if f.is_nan()));
        assert_eq!(one("a: true"), Value::Ident("true".into()));
        assert_eq!(one("a: \"x\""), Value::Str(b"x".to_vec()));
        assert_eq!(one("a: 'y'"), Value::Str(b"y".to_vec()));
    }

    #[test]
    fn int_conversions_check_ranges() {
        let i = |negative, magnitude| Int { negative, magnitude };
        assert_eq!(i(false, 5).to_u32(), Some(5));
        assert_eq!(i(false, u64::from(u32::MAX) + 1).to_u32(), None);
        assert_eq!(i(true, 5).to_u32(), None);
        assert_eq!(i(true, 0).to_u32(), Some(0));
        assert_eq!(i(true, 1 << 63).to_i64(), Some(i64::MIN));
        assert_eq!(i(true, (1 << 63) + 1).to_i64(), None);
        assert_eq!(i(false, 1 << 63).to_i64(), None);
        assert_eq!(i(true, 1 << 31).to_i32(), Some(i32::MIN));
        assert_eq!(i(false, 1 << 31).to_i32(), None);
        assert_eq!(i(false, u64::MAX).to_u64(), Some(u64::MAX));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(one(r#"s: "a\n\t\r\\\"\'\?b""#), Value::Str(b"a\n\t\r\\\"'?b".to_vec()));
        assert_eq!(one(r#"s: "\a\b\f\v""#), Value::Str(vec![7, 8, 12, 11]));
        // Octal: one to three digits; a fourth digit is a plain character.
        assert_eq!(one(r#"s: "\0\12\101\1012""#), Value::Str(vec![0, 10, b'A', b'A', b'2']));
        assert_eq!(one(r#"s: "\377""#), Value::Str(vec![0xFF]));
        // Hex: one or two digits.
        assert_eq!(one(r#"s: "\x9\x41\x414""#), Value::Str(vec![9, b'A', b'A', b'4']));
        assert_eq!(one(r#"s: "\u00e9\U0001F600""#), Value::Str("é😀".as_bytes().to_vec()));
        // Raw UTF-8 passes through; single quotes may hold double quotes.
        assert_eq!(one("s: 'é\"'"), Value::Str("é\"".as_bytes().to_vec()));
    }

    #[test]
    fn adjacent_strings_concatenate() {
        assert_eq!(one("s: \"ab\" 'cd'\n  \"ef\" # c\n \"\""), Value::Str(b"abcdef".to_vec()));
    }

    /// The message with every position zeroed, to compare shapes.
    fn shape(mut m: Message) -> Message {
        for f in &mut m.fields {
            f.pos = Pos::default();
            f.value_pos = Pos::default();
            if let Value::Message(inner) = &mut f.value {
                *inner = shape(std::mem::take(inner));
            }
        }
        m
    }

    #[test]
    fn nested_messages_in_all_spellings() {
        let want = shape(p("m { x: 1 }"));
        for text in ["m: { x: 1 }", "m <x: 1>", "m: <x: 1>", "m{x:1}", "m:{x:1;}"] {
            assert_eq!(shape(p(text)), want, "{text:?}");
        }
        let m = p("outer { inner < deep { v: 'z' } > }");
        let Value::Message(outer) = &m.fields[0].value else { panic!("not a message") };
        let Value::Message(inner) = &outer.fields[0].value else { panic!("not a message") };
        let Value::Message(deep) = &inner.fields[0].value else { panic!("not a message") };
        assert_eq!(deep.fields[0].name, "v");
        assert_eq!(deep.fields[0].value, Value::Str(b"z".to_vec()));
    }

    #[test]
    fn separators_and_repeated_fields() {
        let m = p("a: 1, a: 2; b { c: 3; d: 4, }; a: 5");
        let names: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "a", "b", "a"]);
        let a: Vec<&Value> = m.get("a").map(|f| &f.value).collect();
        assert_eq!(a, [&int(false, 1), &int(false, 2), &int(false, 5)]);
        // Fields need no separator at all, even on one line.
        assert_eq!(p("a: 1 b: 2 c {} d: x").fields.len(), 4);
    }

    #[test]
    fn lists_flatten_into_repeated_fields() {
        let m = p("ids: [1, 0x2, -3] msgs [{ x: 1 }, < x: 2 >] more: [{}] none: []");
        let ids: Vec<&Value> = m.get("ids").map(|f| &f.value).collect();
        assert_eq!(ids, [&int(false, 1), &int(false, 2), &int(true, 3)]);
        assert_eq!(m.get("msgs").count(), 2);
        assert_eq!(m.get("more").count(), 1);
        assert_eq!(m.get("none").count(), 0);
    }

    #[test]
    fn positions_of_fields_and_values() {
        let m = p("# header\n  alpha: 7\nbeta {\n  gamma: 'é' delta: 1\n}\n");
        assert_eq!(m.fields[0].pos, at(2, 3));
        assert_eq!(m.fields[0].value_pos, at(2, 10));
        assert_eq!(m.fields[1].pos, at(3, 1));
        assert_eq!(m.fields[1].value_pos, at(3, 6));
        let Value::Message(beta) = &m.fields[1].value else { panic!("not a message") };
        assert_eq!(beta.fields[0].pos, at(4, 3));
        // Columns count characters: `é` is two bytes but one column.
        assert_eq!(beta.fields[1].pos, at(4, 14));
    }

    #[test]
    fn extension_and_any_names_in_brackets() {
        let m = p("other_properties { [type.googleapis.com/p4.v1.Foo] { x: 1 } [pkg.ext]: 2 }");
        let Value::Message(inner) = &m.fields[0].value else { panic!("not a message") };
        assert_eq!(inner.fields[0].name, "[type.googleapis.com/p4.v1.Foo]");
        assert_eq!(inner.fields[1].name, "[pkg.ext]");
        assert_eq!(inner.fields[1].value, int(false, 2));
    }

    #[test]
    fn comments_anywhere_between_tokens() {
        let m = p("a # c1\n : # c2\n 5 # c3\n m # c4\n { # c5\n } # c6");
        assert_eq!(m.fields[0].value, int(false, 5));
        assert_eq!(m.fields[1].value, Value::Message(Message::default()));
        // `#` inside a string is not a comment.
        assert_eq!(one("s: '#not a comment'"), Value::Str(b"#not a comment".to_vec()));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let cases: &[(&str, Pos, &str)] = &[
            ("a: 1\nb: @", at(2, 4), "unexpected character '@'"),
            ("a: \"abc\nb: 1", at(1, 4), "unterminated string"),
            ("a: 'abc", at(1, 4), "unterminated string"),
            ("a: '\\q'", at(1, 5), "unknown escape `\\q`"),
            ("a: '\\400'", at(1, 5), "above \\377"),
            ("a: '\\xZZ'", at(1, 5), "without hex digits"),
            ("a: '\\u12'", at(1, 5), "needs 4 hex digits"),
            ("a: '\\uD800'", at(1, 5), "not a valid character"),
            ("a: 12ab", at(1, 4), "invalid number `12ab`"),
            ("a: 0x", at(1, 4), "invalid number `0x`"),
            ("a: 09", at(1, 4), "invalid number `09`"),
            ("a: 1.2.3", at(1, 4), "invalid number"),
            ("a: 1e", at(1, 4), "invalid number"),
            ("a: 18446744073709551616", at(1, 4), "does not fit in 64 bits"),
            ("a: 0x10000000000000000", at(1, 4), "does not fit in 64 bits"),
            ("a 1", at(1, 3), "expected `:` or `{`"),
            ("a:", at(1, 3), "expected a value, found the end of the input"),
            ("a: }", at(1, 4), "expected a value, found `}`"),
            ("a: -x", at(1, 5), "expected a number after `-`"),
            ("m {\n a: 1\n", at(3, 1), "expected `}` to close the message opened at 1:3"),
            ("m { a: 1 >", at(1, 10), "expected a field name, found `>`"),
            ("m < a: 1 }", at(1, 10), "expected a field name, found `}`"),
            ("}", at(1, 1), "expected a field name, found `}`"),
            ("5: 1", at(1, 1), "expected a field name, found a number"),
            ("a: 1,, b: 2", at(1, 6), "expected a field name, found `,`"),
            ("a: [1 2]", at(1, 7), "expected `,` or `]`"),
            ("a [1]", at(1, 4), "expected a message in the list"),
            ("[ ] {}", at(1, 3), "expected an extension"),
            ("[a.b {}", at(1, 6), "expected `]`"),
            ("a: \u{1F600}", at(1, 4), "unexpected character"),
        ];
        for (text, pos, needle) in cases {
            let got = e(text);
            assert_eq!(got.pos, *pos, "position for {text:?}: {got}");
            assert!(got.message.contains(needle), "message for {text:?}: {got}");
            assert!(got.to_string().starts_with(&format!("{pos}: ")), "display for {text:?}: {got}");
        }
    }

    #[test]
    fn nesting_limit_is_enforced_without_stack_overflow() {
        let nest = |n: usize| format!("{}{}", "m { ".repeat(n), "} ".repeat(n));
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        let got = e(&nest(MAX_DEPTH + 1));
        assert_eq!(got.pos, at(1, 4 * MAX_DEPTH as u32 + 3));
        assert!(got.message.contains("nested deeper than 100"), "{got}");
        // Far deeper input, in both bracket styles and unclosed, fails just as cleanly.
        assert!(parse(&"m <".repeat(1_000_000)).is_err());
        assert!(parse(&"m: [{".repeat(100_000)).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_syntax_soup(s in "[a-z0-9 {}<>\\[\\]:;,\\-.'\"\\\\#\n]{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn decimal_integers_round_trip(v in any::<u64>(), neg in any::<bool>()) {
            let text = format!("a: {}{v}", if neg { "-" } else { "" });
            prop_assert_eq!(one(&text), int(neg, v));
        }

        #[test]
        fn escaped_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let escaped: String = bytes.iter().map(|b| format!("\\{b:03o}")).collect();
            prop_assert_eq!(one(&format!("s: \"{escaped}\"")), Value::Str(bytes));
        }
    }
}
