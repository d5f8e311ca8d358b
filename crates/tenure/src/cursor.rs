//! Opaque pagination cursors, bound to the zone and query they came from.
//!
//! A cursor carries a position (a grant's `created_at` and id) and a MAC over the
//! zone, the query's filters and order, and the position, made with HMAC-SHA-256
//! under the engine's cursor key. A cursor that was altered, truncated, made up, or
//! made for another zone or query fails the check and is an
//! [`Error::InvalidCursor`]; it can never reach another zone's records, since the
//! zone of a listing always comes from the caller, not from the cursor.
//!
//! The key is [`EngineBuilder::cursor_key`](crate::EngineBuilder::cursor_key). With
//! the default key, a cursor is tamper-evident but can be computed by anyone who
//! knows this format; such a cursor can still only choose a starting point inside
//! the caller's own zone and query. Set a secret key, the same for every process
//! that serves one store, to make cursors unforgeable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::storage::{GrantFilter, Keyset, SortOrder};

const FORMAT: u8 = 1;
const MAC_LEN: usize = 16;
/// The longest cursor accepted, as in the seed (`maxLength: 255`).
pub const MAX_CURSOR_LEN: usize = 255;

/// The key cursors are signed with.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    /// A key from 32 secret bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        CursorKey(bytes)
    }
}

impl Default for CursorKey {
    fn default() -> Self {
        CursorKey(*b"tenure default cursor key, v1...")
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([redacted])")
    }
}

/// What a cursor walks: grants, or a user's personal grants. Part of the MAC, so a
/// cursor of one listing is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// [`Engine::list_grants`](crate::Engine::list_grants).
    Grants,
    /// [`Engine::list_personal_grants`](crate::Engine::list_personal_grants).
    PersonalGrants,
}

fn mac(
    key: &CursorKey,
    listing: Listing,
    zone_id: &str,
    filter: &GrantFilter,
    order: SortOrder,
    payload: &[u8],
) -> Result<[u8; MAC_LEN]> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(&key.0).map_err(|_| Error::InvalidCursor {
        reason: "cursor key rejected",
    })?;
    let mut field = |value: Option<&str>| {
        match value {
            Some(v) => {
                mac.update(&[1]);
                mac.update(&(v.len() as u64).to_be_bytes());
                mac.update(v.as_bytes());
            }
            None => mac.update(&[0]),
        };
    };
    field(Some(match listing {
        Listing::Grants => "grants",
        Listing::PersonalGrants => "personal-grants",
    }));
    field(Some(zone_id));
    field(filter.user_id.as_deref());
    field(filter.resource_id.as_deref());
    field(filter.client_id.as_deref());
    field(filter.status.map(|s| s.as_str()));
    field(Some(match order {
        SortOrder::Ascending => "asc",
        SortOrder::Descending => "desc",
    }));
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    Ok(out)
}

/// Encodes a position of a listing as an opaque cursor.
pub fn encode(
    key: &CursorKey,
    listing: Listing,
    zone_id: &str,
    filter: &GrantFilter,
    order: SortOrder,
    at: &Keyset,
) -> Result<String> {
    let mut payload = Vec::with_capacity(10 + at.id.len());
    payload.push(FORMAT);
    payload.extend_from_slice(&at.created_at.timestamp_millis().to_be_bytes());
    payload.extend_from_slice(at.id.as_bytes());
    let tag = mac(key, listing, zone_id, filter, order, &payload)?;
    payload.extend_from_slice(&tag);
    Ok(URL_SAFE_NO_PAD.encode(payload))
}

/// Decodes a cursor made by [`encode`] for the same zone, filter and order.
pub fn decode(
    key: &CursorKey,
    listing: Listing,
    zone_id: &str,
    filter: &GrantFilter,
    order: SortOrder,
    cursor: &str,
) -> Result<Keyset> {
    let invalid = |reason| Error::InvalidCursor { reason };
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid("must be 1 to 255 characters"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("not a cursor"))?;
    // Format, time, id (empty at a millisecond's edge), tag.
    if bytes.len() < 1 + 8 + MAC_LEN {
        return Err(invalid("truncated"));
    }
    let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let expected = mac(key, listing, zone_id, filter, order, payload)?;
    // The MAC check runs in constant time.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag)) {
        return Err(invalid("not issued for this zone and query, or altered"));
    }
    if payload[0] != FORMAT {
        return Err(invalid("unknown cursor format"));
    }
    let mut millis = [0u8; 8];
    millis.copy_from_slice(&payload[1..9]);
    let created_at = DateTime::from_timestamp_millis(i64::from_be_bytes(millis))
        .ok_or_else(|| invalid("time out of range"))?;
    let id = std::str::from_utf8(&payload[9..])
        .map_err(|_| invalid("id is not UTF-8"))?
        .to_owned();
    Ok(Keyset { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantStatus;

    fn keyset() -> Keyset {
        Keyset {
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default(),
            id: "0190b3c4-0000-7000-8000-000000000001".into(),
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_zone_and_query() -> Result<()> {
        let key = CursorKey::default();
        let filter = GrantFilter::default();
        let c = encode(
            &key,
            Listing::Grants,
            "z1",
            &filter,
            SortOrder::Descending,
            &keyset(),
        )?;
        assert!(c.len() <= MAX_CURSOR_LEN);
        assert_eq!(
            decode(
                &key,
                Listing::Grants,
                "z1",
                &filter,
                SortOrder::Descending,
                &c
            )?,
            keyset()
        );
        Ok(())
    }

    #[test]
    fn a_cursor_is_refused_for_another_zone_query_order_or_key() -> Result<()> {
        let key = CursorKey::default();
        let filter = GrantFilter::default();
        let c = encode(
            &key,
            Listing::Grants,
            "z1",
            &filter,
            SortOrder::Descending,
            &keyset(),
        )?;
        let other_filter = GrantFilter {
            status: Some(GrantStatus::Active),
            ..GrantFilter::default()
        };
        for result in [
            decode(
                &key,
                Listing::Grants,
                "z2",
                &filter,
                SortOrder::Descending,
                &c,
            ),
            decode(
                &key,
                Listing::Grants,
                "z1",
                &other_filter,
                SortOrder::Descending,
                &c,
            ),
            decode(
                &key,
                Listing::Grants,
                "z1",
                &filter,
                SortOrder::Ascending,
                &c,
            ),
            decode(
                &CursorKey::new([7; 32]),
                Listing::Grants,
                "z1",
                &filter,
                SortOrder::Descending,
                &c,
            ),
            decode(
                &key,
                Listing::PersonalGrants,
                "z1",
                &filter,
                SortOrder::Descending,
                &c,
            ),
        ] {
            assert!(matches!(result, Err(Error::InvalidCursor { .. })));
        }
        Ok(())
    }

    #[test]
    fn truncated_altered_and_garbage_cursors_are_refused() -> Result<()> {
        let key = CursorKey::default();
        let filter = GrantFilter::default();
        let c = encode(
            &key,
            Listing::Grants,
            "z1",
            &filter,
            SortOrder::Descending,
            &keyset(),
        )?;
        let mut altered = c.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap_or_default();
        for bad in [
            &c[..c.len() - 1],
            &c[..10],
            "",
            "!!!",
            &altered,
            &"A".repeat(300),
        ] {
            let r = decode(
                &key,
                Listing::Grants,
                "z1",
                &filter,
                SortOrder::Descending,
                bad,
            );
            assert!(matches!(r, Err(Error::InvalidCursor { .. })), "{bad:?}");
        }
        Ok(())
    }
}
