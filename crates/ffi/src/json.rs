//! A fast path for the JSON text hosts hand in on every host-run tool call (arguments and
//! result). serde_json stays the judge: [`compact_json`] only says "certainly one compact JSON
//! value" for the common small, single-line text; for anything else (whitespace around it,
//! line breaks, deep nesting, or text that is not JSON) it says "not sure" and the caller goes
//! through [`Data::from_json`], which has the final word and the error message. So what is
//! accepted, rejected and kept is exactly what serde_json decides; only the cost differs
//! (serde_json's generic deserializer is several times slower on a 20-byte object).

use baton::{Data, Payload, Result};

/// The payload for `text` (JSON; `what` names it in errors), as [`Data::from_json`] followed
/// by [`Data::into_payload`] would make it.
pub(crate) fn payload(text: &str, what: &str) -> Result<Payload> {
    if compact_json(text.as_bytes()) {
        // Checked above: one JSON value, no surrounding whitespace, no line break; that is
        // exactly the text Data::from_json would keep.
        return Ok(Payload::from_json_trusted(text.into()));
    }
    Data::from_json(text, what).map(Data::into_payload)
}

/// Checks that `text` is JSON without keeping anything (the unobserved path).
pub(crate) fn check(text: &str, what: &str) -> Result<()> {
    if compact_json(text.as_bytes()) {
        return Ok(());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(drop)
        .map_err(|e| baton::Error::invalid_argument(format!("{what}: invalid JSON: {e}")))
}

/// Deeper nesting is left to serde_json (whose limit is 128).
const MAX_DEPTH: u32 = 64;

/// True when `s` is certainly one JSON value with no whitespace before or after it and no
/// line break anywhere; false when it is not or when this check is not sure.
pub(crate) fn compact_json(s: &[u8]) -> bool {
    let mut r = Reader { s, i: 0 };
    r.value(MAX_DEPTH) && r.i == s.len()
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Spaces and tabs only: a line break sends the text to serde_json.
    fn space(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: u32) -> bool {
        match self.peek() {
            Some(b'{') => depth > 0 && self.object(depth - 1),
            Some(b'[') => depth > 0 && self.array(depth - 1),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: u32) -> bool {
        self.i += 1; // {
        self.space();
        if self.eat(b'}') {
            return true;
        }
        loop {
            if !self.string() {
                return false;
            }
            self.space();
            if !self.eat(b':') {
                return false;
            }
            self.space();
            if !self.value(depth) {
                return false;
            }
            self.space();
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
            self.space();
        }
    }

    fn array(&mut self, depth: u32) -> bool {
        self.i += 1; // [
        self.space();
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            self.space();
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
            self.space();
        }
    }

    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.i += 5;
                        }
                        _ => return false,
                    }
                }
                // Control characters must be escaped; the text is already valid UTF-8.
                Some(c) if c >= 0x20 => self.i += 1,
                _ => return false,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> bool {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i > start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.eat(b'.') && !self.digits() {
            return false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.digits() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_keeps(s: &str) -> bool {
        // What Data::from_json keeps verbatim: valid, no line break, nothing trimmed.
        !s.contains(['\n', '\r']) && serde_json::from_str::<&serde_json::value::RawValue>(s).is_ok_and(|r| r.get() == s)
    }

    #[test]
    fn agrees_with_serde_json() {
        let valid = [
            "{}",
            "[]",
            "null",
            "true",
            "false",
            "0",
            "-0",
            "12",
            "-3.25e+10",
            "1E5",
            "0.5",
            r#"{"a":1,"b":2}"#,
            r#"{ "a" : [1, 2 ,3], "b":{"c":null}}"#,
            "\"\"",
            r#""é \" \\ \/ \b \f \n \r \t \u00e9 \uD834\uDD1E \ud800""#,
            "[[[[[]]]]]",
            "\"\u{7f}\"",
        ];
        for s in valid {
            assert!(compact_json(s.as_bytes()), "{s}");
            assert!(serde_keeps(s), "{s}");
        }
        let not_sure = [
            "",
            " {}",
            "{} ",
            "{}\n",
            "{\n}",
            "\r1",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "tru",
            "nul",
            "truex",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"a\tb\"",
            "\"\u{1}\"",
            "[1 2]",
            "{} {}",
            "NaN",
        ];
        for s in not_sure {
            assert!(!compact_json(s.as_bytes()), "{s:?}");
        }
        // Nesting deeper than MAX_DEPTH is left to serde_json.
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(!compact_json(deep.as_bytes()) && serde_keeps(&deep));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(compact_json(ok.as_bytes()));
    }

    /// Random text over JSON's alphabet: whenever the fast path accepts, serde_json keeps the
    /// same text; and the fast path accepts most compact valid JSON.
    #[test]
    fn never_accepts_what_serde_json_rejects() {
        let alphabet: &[&str] = &[
            "{", "}", "[", "]", ",", ":", "\"", "\"a\"", "1", "0", "-", ".", "e", "+", " ", "\\", "\\u00e9", "\\n", "null", "true", "x",
            "\t", "\n",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut accepted, mut kept) = (0, 0);
        for _ in 0..200_000 {
            let len = (next() % 12) as usize;
            let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let fast = compact_json(s.as_bytes());
            let serde = serde_keeps(&s);
            assert!(!fast || serde, "fast path accepted {s:?}, serde_json does not keep it");
            accepted += usize::from(fast);
            kept += usize::from(serde && s.bytes().filter(|b| *b == b'[' || *b == b'{').count() < 64);
        }
        assert!(accepted > 1000 && accepted * 10 >= kept * 9, "fast path accepted {accepted} of {kept}");
    }

    #[test]
    fn payload_and_check_match_data() {
        for s in [r#"{"a":1}"#, "null", " [1] ", "{\n \"a\": 1\n}", "[1,", ""] {
            let fast = payload(s, "args_json").map(|p| p.as_json().to_string()).map_err(|e| e.to_string());
            let slow = Data::from_json(s, "args_json").map(|d| d.into_payload().as_json().to_string()).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "{s:?}");
            assert_eq!(check(s, "args_json").is_ok(), slow.is_ok(), "{s:?}");
        }
    }
}
