//! Checks on input from callers: ids, scopes, limits.

use crate::error::{Error, Result};

/// The longest id tenure accepts for a record it keeps (grant, client): 128 bytes,
/// so that a cursor carrying one stays within the seed's 255 characters.
pub const MAX_RECORD_ID_LEN: usize = 128;

/// The longest id tenure accepts for a reference to something it does not keep
/// (zone, organization, user, resource, provider, account): 255 bytes.
pub const MAX_REFERENCE_LEN: usize = 255;

/// The longest scope tenure accepts: 255 bytes.
pub const MAX_SCOPE_LEN: usize = 255;

/// The most scopes one grant or client may hold.
pub const MAX_SCOPES: usize = 256;

/// The largest page a listing returns.
pub const MAX_PAGE_LIMIT: usize = 100;

/// The page size when none is asked for.
pub const DEFAULT_PAGE_LIMIT: usize = 50;

fn id_with_max(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_input(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid_input(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks the id of a record tenure keeps.
pub fn record_id(field: &'static str, value: &str) -> Result<()> {
    id_with_max(field, value, MAX_RECORD_ID_LEN)
}

/// Checks a reference to something outside tenure (zone, user, resource, ...).
pub fn reference(field: &'static str, value: &str) -> Result<()> {
    id_with_max(field, value, MAX_REFERENCE_LEN)
}

/// Checks the provider of a grant a user makes: a reference, and not
/// [`STANDING_PROVIDER`](crate::lifecycle::STANDING_PROVIDER), which marks a
/// client's own client-credentials grants and nothing else.
pub fn provider(field: &'static str, value: &str) -> Result<()> {
    reference(field, value)?;
    if value == crate::lifecycle::STANDING_PROVIDER {
        return Err(Error::invalid_input(
            field,
            "is reserved for clients' own client-credentials grants",
        ));
    }
    Ok(())
}

/// Checks one scope against RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn scope(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_input(field, "a scope must not be empty"));
    }
    if value.len() > MAX_SCOPE_LEN {
        return Err(Error::invalid_input(
            field,
            format!("a scope must be at most {MAX_SCOPE_LEN} bytes"),
        ));
    }
    let valid = value
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if !valid {
        return Err(Error::invalid_input(
            field,
            format!(
                "scope {:?} has a character RFC 6749 does not allow (whitespace, control, quote, backslash or non-ASCII)",
                value.escape_debug().to_string()
            ),
        ));
    }
    Ok(())
}

/// Checks a list of scopes and returns it without duplicates, in first-seen order.
pub fn scopes(field: &'static str, values: &[String]) -> Result<Vec<String>> {
    if values.len() > MAX_SCOPES {
        return Err(Error::invalid_input(
            field,
            format!("at most {MAX_SCOPES} scopes"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        scope(field, value)?;
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    Ok(out)
}

/// Splits a space-separated `scope` parameter (RFC 6749 §3.3) and checks it.
pub fn scope_string(field: &'static str, value: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = value.split(' ').map(str::to_owned).collect();
    scopes(field, &parts)
}

/// Checks a page size: 1 to 100.
pub fn limit(value: usize) -> Result<usize> {
    if (1..=MAX_PAGE_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid_input(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_overlong_and_control_characters() {
        assert!(record_id("id", "abc").is_ok());
        assert!(record_id("id", "").is_err());
        assert!(record_id("id", &"x".repeat(129)).is_err());
        assert!(record_id("id", &"x".repeat(128)).is_ok());
        assert!(reference("user_id", &"x".repeat(255)).is_ok());
        assert!(reference("user_id", &"x".repeat(256)).is_err());
        assert!(reference("user_id", "a\u{0}b").is_err());
        assert!(reference("user_id", "a\nb").is_err());
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert!(scope("scopes", "read:all").is_ok());
        for bad in ["", "a b", "a\tb", "a\"b", "a\\b", "é", "a\u{7f}"] {
            assert!(scope("scopes", bad).is_err(), "{bad:?}");
        }
        let deduped = scopes("scopes", &["a".into(), "b".into(), "a".into()]);
        assert_eq!(deduped.ok(), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(scope_string("scope", "a  b").is_err());
    }

    #[test]
    fn limits_are_one_to_one_hundred() {
        assert!(limit(0).is_err());
        assert_eq!(limit(1).ok(), Some(1));
        assert_eq!(limit(100).ok(), Some(100));
        assert!(limit(101).is_err());
    }
}
