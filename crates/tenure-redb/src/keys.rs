//! Keys: byte strings whose lexicographic order (the order redb keeps `&[u8]` keys
//! in) is the order of the index they belong to.
//!
//! A key is a sequence of components:
//!
//! - a string is escaped (`0x00` becomes `0x00 0xFF`) and terminated with
//!   `0x00 0x01`. That keeps the order of strings (a shorter string sorts before
//!   its extensions, because the terminator sorts before any escaped or plain byte)
//!   and makes the encoding prefix-free, so zone `a` and zone `ab`, or `a` and
//!   `a\0`, never share a prefix;
//! - a time is its milliseconds since the epoch as a big-endian `i64` with the sign
//!   bit flipped, so negative times sort before positive ones;
//! - a digest is its 32 bytes;
//! - the last component of a key may be a raw string (a record id): nothing follows
//!   it, so it needs no terminator, and raw bytes order exactly as Rust's `str` does.

use chrono::{DateTime, Utc};

const ESCAPE: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// A key under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn new() -> Self {
        Key(Vec::with_capacity(64))
    }

    /// A key starting with one byte (a kind tag).
    pub(crate) fn tagged(tag: u8) -> Self {
        let mut key = Key::new();
        key.0.push(tag);
        key
    }

    /// Appends an escaped, terminated string.
    pub(crate) fn str(mut self, s: &str) -> Self {
        for &b in s.as_bytes() {
            self.0.push(b);
            if b == 0 {
                self.0.push(ESCAPE);
            }
        }
        self.0.push(0);
        self.0.push(TERMINATOR);
        self
    }

    /// Appends a time, to the millisecond.
    pub(crate) fn millis(mut self, ms: i64) -> Self {
        self.0.extend_from_slice(&encode_millis(ms));
        self
    }

    /// Appends raw bytes: a digest, a fixed-width number, or a final raw string.
    pub(crate) fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A time's milliseconds, ordered as bytes.
pub(crate) fn encode_millis(ms: i64) -> [u8; 8] {
    // Flipping the sign bit maps i64 order onto u64 order.
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`encode_millis`].
pub(crate) fn decode_millis(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The milliseconds of a time, as indexes order it.
pub(crate) fn ms(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The smallest key greater than every key starting with `prefix`; `None` if no
/// such key exists (the prefix is all `0xFF`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads an escaped, terminated string from the front of `bytes`; returns it and
/// the rest. `None` if `bytes` does not start with one.
pub(crate) fn take_str(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *bytes.get(i)?;
        if b == 0 {
            match *bytes.get(i + 1)? {
                ESCAPE => out.push(0),
                TERMINATOR => {
                    let s = String::from_utf8(out).ok()?;
                    return Some((s, &bytes[i + 2..]));
                }
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// Reads a time from the front of `bytes`.
pub(crate) fn take_millis(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((decode_millis(*head), rest))
}

/// Reads a digest from the front of `bytes`.
pub(crate) fn take_digest(bytes: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<32>()?;
    Some((*head, rest))
}

/// Reads the final raw string of a key.
pub(crate) fn rest_str(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn any_str() -> impl Strategy<Value = String> {
        // Bias towards NULs and short strings, where escaping could go wrong.
        prop::collection::vec(
            prop_oneof![Just('\0'), Just('a'), Just('b'), any::<char>()],
            0..6,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #[test]
        fn strings_keep_their_order_and_never_prefix_each_other(a in any_str(), b in any_str()) {
            let ka = Key::new().str(&a).into_vec();
            let kb = Key::new().str(&b).into_vec();
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), ka.cmp(&kb));
            if a != b {
                prop_assert!(!ka.starts_with(&kb) && !kb.starts_with(&ka));
            }
            let (back, rest) = take_str(&ka).unwrap();
            prop_assert_eq!(back, a);
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn composite_keys_order_component_by_component(
            a in (any_str(), any::<i64>(), any_str()),
            b in (any_str(), any::<i64>(), any_str()),
        ) {
            let key = |(z, t, id): &(String, i64, String)| {
                Key::new().str(z).millis(*t).raw(id.as_bytes()).into_vec()
            };
            let natural = (a.0.as_bytes(), a.1, a.2.as_bytes()).cmp(&(b.0.as_bytes(), b.1, b.2.as_bytes()));
            prop_assert_eq!(natural, key(&a).cmp(&key(&b)));
            let ka = key(&a);
            let (z, rest) = take_str(&ka).unwrap();
            let (t, rest) = take_millis(rest).unwrap();
            prop_assert_eq!((z, t, rest_str(rest).unwrap()), a);
        }

        #[test]
        fn prefix_end_bounds_exactly_the_prefixed_keys(p in prop::collection::vec(any::<u8>(), 0..4), k in prop::collection::vec(any::<u8>(), 0..6)) {
            if let Some(end) = prefix_end(&p) {
                prop_assert_eq!(k.starts_with(&p) || k < p, k < end);
            } else {
                prop_assert!(p.iter().all(|b| *b == 0xFF));
            }
        }
    }

    #[test]
    fn zone_a_and_zone_ab_do_not_collide() {
        let a = Key::new().str("a").into_vec();
        let ab = Key::new().str("ab").into_vec();
        let a_nul = Key::new().str("a\0").into_vec();
        assert!(!ab.starts_with(&a));
        assert!(!a_nul.starts_with(&a));
        assert!(a < a_nul && a < ab);
    }

    #[test]
    fn times_order_across_the_sign() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 1_893_456_000_000, i64::MAX];
        for w in times.windows(2) {
            assert!(encode_millis(w[0]) < encode_millis(w[1]));
            assert_eq!(decode_millis(encode_millis(w[0])), w[0]);
        }
    }

    #[test]
    fn malformed_strings_are_refused() {
        assert_eq!(take_str(b"abc"), None, "no terminator");
        assert_eq!(take_str(b"a\0\x02"), None, "bad escape");
        assert_eq!(take_str(b"\xFF\0\x01"), None, "not UTF-8");
    }
}
