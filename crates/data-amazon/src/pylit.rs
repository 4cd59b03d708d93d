//! A parser for the Python literals in the raw Amazon 2014 metadata files.
//!
//! Each line of `meta_<Category>.json.gz` is the `repr` of a Python dict, not JSON: single-quoted
//! strings, `True`/`False`/`None`, tuples. This parses that subset (dicts, lists, tuples, strings
//! with Python escapes and optional `u`/`b`/`r` prefixes, ints, floats, booleans, None) into
//! `serde_json::Value`, with an error that says where the text stopped making sense.

use serde_json::{Map, Number, Value};

/// A literal that could not be parsed: what was expected and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: expected {expected}")]
pub struct LiteralError {
    /// Byte offset into the text.
    pub offset: usize,
    /// What the parser expected there.
    pub expected: &'static str,
}

/// Parses one Python literal; the whole text must be consumed (trailing whitespace allowed).
pub fn parse(text: &str) -> Result<Value, LiteralError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("end of the literal"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &'static str) -> LiteralError {
        LiteralError {
            offset: self.i,
            expected,
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, LiteralError> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'[') => self.seq(b']').map(Value::Array),
            Some(b'(') => self.seq(b')').map(Value::Array),
            Some(b'\'' | b'"') => self.string(false).map(Value::String),
            Some(b'u' | b'U' | b'b' | b'B' | b'r' | b'R')
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                let raw = matches!(self.peek(), Some(b'r' | b'R'));
                self.i += 1;
                self.string(raw).map(Value::String)
            }
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number(),
            Some(_) => self.word(),
            None => Err(self.err("a value")),
        }
    }

    fn dict(&mut self) -> Result<Value, LiteralError> {
        self.i += 1; // '{'
        let mut map = Map::new();
        loop {
            self.ws();
            if self.eat(b'}') {
                return Ok(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => return Err(self.err("a string or number dict key")),
            };
            self.ws();
            if !self.eat(b':') {
                return Err(self.err("`:` after a dict key"));
            }
            let value = self.value()?;
            map.insert(key, value);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            self.ws();
            if self.eat(b'}') {
                return Ok(Value::Object(map));
            }
            return Err(self.err("`,` or `}` in a dict"));
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Value>, LiteralError> {
        self.i += 1; // '[' or '('
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat(close) {
                return Ok(out);
            }
            out.push(self.value()?);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(close) {
                return Ok(out);
            }
            return Err(self.err(if close == b']' {
                "`,` or `]` in a list"
            } else {
                "`,` or `)` in a tuple"
            }));
        }
    }

    fn string(&mut self, raw: bool) -> Result<String, LiteralError> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != quote && self.s[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(&self.text[start..self.i]);
            match self.peek() {
                None => return Err(self.err("the closing quote of a string")),
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => {
                    // Backslash.
                    self.i += 1;
                    let Some(c) = self.peek() else {
                        return Err(self.err("an escaped character"));
                    };
                    if raw {
                        out.push('\\');
                        let start = self.i;
                        self.i += utf8_len(c);
                        out.push_str(&self.text[start..self.i]);
                        continue;
                    }
                    self.i += 1;
                    match c {
                        b'\\' => out.push('\\'),
                        b'\'' => out.push('\''),
                        b'"' => out.push('"'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'a' => out.push('\x07'),
                        b'b' => out.push('\x08'),
                        b'f' => out.push('\x0c'),
                        b'v' => out.push('\x0b'),
                        b'0'..=b'7' => {
                            let mut v = u32::from(c - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(
                                char::from_u32(v)
                                    .ok_or_else(|| self.err("a valid octal escape"))?,
                            );
                        }
                        b'x' => out.push(self.hex_escape(2)?),
                        b'u' => out.push(self.hex_escape(4)?),
                        b'U' => out.push(self.hex_escape(8)?),
                        b'\n' => {} // line continuation
                        other => {
                            // Python keeps unknown escapes as written.
                            out.push('\\');
                            let start = self.i - 1;
                            self.i = start + utf8_len(other);
                            out.push_str(&self.text[start..self.i]);
                        }
                    }
                }
            }
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, LiteralError> {
        let end = self.i + digits;
        let hex = self
            .text
            .get(self.i..end)
            .ok_or_else(|| self.err("hex digits of an escape"))?;
        let v = u32::from_str_radix(hex, 16).map_err(|_| self.err("hex digits of an escape"))?;
        self.i = end;
        char::from_u32(v).ok_or_else(|| self.err("a valid unicode escape"))
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'_'
            )
        {
            self.i += 1;
        }
        let text = self.text[start..self.i].replace('_', "");
        if let Ok(v) = text.parse::<i64>() {
            return Ok(Value::Number(v.into()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.i = start;
                Err(self.err("a number"))
            }
        }
    }

    fn word(&mut self) -> Result<Value, LiteralError> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        match &self.text[start..self.i] {
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            "None" => Ok(Value::Null),
            // `nan`/`inf` appear as float('nan') only in exotic dumps; JSON has no place for them.
            _ => {
                self.i = start;
                Err(self.err("a value (dict, list, tuple, string, number, True, False or None)"))
            }
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_meta_line() {
        let line = r#"{'asin': '0000031852', 'title': 'Girls Ballet Tutu Zebra Hot Pink', 'price': 3.17, 'related': {'also_bought': ['B00JHONN1S', 'B002BZX8Z6']}, 'salesRank': {'Sports &amp; Outdoors': 8547}, 'categories': [['Sports & Outdoors', 'Other Sports', 'Dance']], 'flag': True, 'none': None, 'tup': (1, -2.5e3,)}"#;
        let v = parse(line).unwrap();
        assert_eq!(
            v,
            json!({
                "asin": "0000031852", "title": "Girls Ballet Tutu Zebra Hot Pink", "price": 3.17,
                "related": {"also_bought": ["B00JHONN1S", "B002BZX8Z6"]},
                "salesRank": {"Sports &amp; Outdoors": 8547},
                "categories": [["Sports & Outdoors", "Other Sports", "Dance"]],
                "flag": true, "none": null, "tup": [1, -2500.0]
            })
        );
    }

    #[test]
    fn string_escapes_and_prefixes() {
        assert_eq!(parse(r#"'it\'s'"#).unwrap(), json!("it's"));
        assert_eq!(parse(r#""say \"hi\"\n""#).unwrap(), json!("say \"hi\"\n"));
        assert_eq!(
            parse(r#"u'caf\xe9 \u2019 \U0001F600'"#).unwrap(),
            json!("café ’ 😀")
        );
        assert_eq!(parse(r#"r'a\d'"#).unwrap(), json!("a\\d"));
        assert_eq!(parse(r#"'a\qb'"#).unwrap(), json!("a\\qb"));
        assert_eq!(parse("'naïve “quotes”'").unwrap(), json!("naïve “quotes”"));
        assert_eq!(parse(r#""it's""#).unwrap(), json!("it's"));
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("{'a': 1 'b': 2}").unwrap_err();
        assert_eq!(e.expected, "`,` or `}` in a dict");
        assert_eq!(e.offset, 8);
        assert!(parse("{'a': 'unterminated}").is_err());
        assert!(parse("{'a': nope}").is_err());
        assert!(parse("{'a': 1} extra").is_err());
        assert!(parse("").is_err());
    }
}
