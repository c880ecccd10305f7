//! UUIDv7 identifiers for scopes and marks.
//!
//! Ids are generated on every managed call, so generation is a thread-local xoshiro256++ step
//! seeded once per thread from the platform's entropy, not a syscall per id.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::platform;

/// A 128-bit UUID (Baton creates version 7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(u128);

impl Uuid {
    /// A new UUIDv7: 48 bits of Unix milliseconds, then random bits.
    pub fn now_v7() -> Uuid {
        Uuid::v7_at(platform::now_micros())
    }

    /// A UUIDv7 for a timestamp the caller already read (saves a second clock read).
    pub fn v7_at(micros: i64) -> Uuid {
        let ms = (micros / 1000) as u128 & 0xFFFF_FFFF_FFFF;
        let r = next_random() as u128 | ((next_random() as u128) << 64);
        let mut v = (ms << 80) | (r & ((1u128 << 80) - 1));
        v = (v & !(0xF << 76)) | (0x7 << 76); // version 7
        v = (v & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
        Uuid(v)
    }
    pub const fn from_u128(v: u128) -> Uuid {
        Uuid(v)
    }
    pub const fn as_u128(self) -> u128 {
        self.0
    }
    /// The 32 lowercase hex digits without dashes (the W3C trace id form).
    pub fn simple_hex(self) -> String {
        format!("{:032x}", self.0)
    }
    /// The last 8 bytes as 16 hex digits (the W3C span id form).
    pub fn span_hex(self) -> String {
        format!("{:016x}", self.0 as u64)
    }
}

impl Uuid {
    /// Writes the hyphenated lowercase form into `buf` and returns it. Every event carries one
    /// or two ids, so this is two table lookups per byte rather than `core::fmt` machinery,
    /// reading the bytes once (shifting a `u128` per digit is several instructions per step on
    /// 32-bit targets such as wasm32).
    pub fn encode(self, buf: &mut [u8; 36]) -> &str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.0.to_be_bytes();
        let mut at = 0;
        // A plain counted loop: the size-optimized wasm build keeps an iterator's `next` as a
        // call per step.
        let mut i = 0;
        while i < 16 {
            if matches!(i, 4 | 6 | 8 | 10) {
                buf[at] = b'-';
                at += 1;
            }
            buf[at] = HEX[usize::from(bytes[i] >> 4)];
            buf[at + 1] = HEX[usize::from(bytes[i] & 0xF)];
            at += 2;
            i += 1;
        }
        // Only ASCII hex digits and dashes were written.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0; 36]))
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Uuid {
    type Err = Error;
    /// Accepts the hyphenated 8-4-4-4-12 form (any case).
    fn from_str(s: &str) -> Result<Uuid, Error> {
        let bad = || Error::invalid_argument(format!("'{s}' is not a UUID (expected 8-4-4-4-12 hex digits)"));
        let b = s.as_bytes();
        if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return Err(bad());
        }
        let mut v: u128 = 0;
        for (i, c) in s.chars().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            let d = c.to_digit(16).ok_or_else(bad)?;
            v = (v << 4) | d as u128;
        }
        Ok(Uuid(v))
    }
}

impl serde::Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.encode(&mut [0; 36]))
    }
}

thread_local! {
    static RNG: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

/// One xoshiro256++ step from the thread's generator.
pub(crate) fn next_random() -> u64 {
    RNG.with(|cell| {
        let mut s = cell.get();
        if s == [0; 4] {
            let mut seed = [0u8; 32];
            platform::fill_random(&mut seed);
            for (i, w) in s.iter_mut().enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
                *w = platform::splitmix64(u64::from_le_bytes(b) ^ i as u64);
            }
        }
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        cell.set(s);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_has_version_and_variant_and_round_trips() {
        let a = Uuid::now_v7();
        let s = a.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "7");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(s.parse::<Uuid>().unwrap(), a);
        assert_ne!(Uuid::now_v7(), a);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "not-a-uuid", "0190a8f2-7c3e-7000-8000-00000000000g", "0190a8f27c3e70008000000000000000"] {
            let e = bad.parse::<Uuid>().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn encode_is_the_hex_digits_with_dashes() {
        let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for v in [0, u128::MAX, 1, 1 << 127, x] {
            let hex = format!("{v:032x}");
            let want = format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
            assert_eq!(Uuid(v).encode(&mut [0; 36]), want);
        }
        for _ in 0..1000 {
            x = x.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15).wrapping_add(0x9e37_79b9);
            let u = Uuid(x);
            assert_eq!(u.encode(&mut [0; 36]).parse::<Uuid>().unwrap(), u);
            assert_eq!(u.encode(&mut [0; 36]).replace('-', ""), u.simple_hex());
        }
    }

    #[test]
    fn trace_and_span_forms() {
        let u: Uuid = "0190a8f2-7c3e-7abc-8def-0123456789ab".parse().unwrap();
        assert_eq!(u.simple_hex(), "0190a8f27c3e7abc8def0123456789ab");
        assert_eq!(u.span_hex(), "8def0123456789ab");
    }
}
