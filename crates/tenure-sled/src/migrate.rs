//! Upgrading a store of an older format in place, once, when it is opened.
//!
//! Format 1 stored a token's `spent_at` and no refresh generation, a grant without
//! its refresh chain, and no token expiry index. Format 2 differs in exactly those
//! three things, so the upgrade rewrites every grant and token still in format 1 and
//! gives every token its expiry entry; every other tree, key and record is the same
//! in both formats and is left alone:
//!
//! - a grant gets [`RefreshChain::LEGACY`](tenure::RefreshChain::LEGACY) (generation
//!   1, no family, no current or previous token): its live refresh token reads as
//!   current until the next rotation, which draws a family;
//! - a token gets the generation
//!   [`Token::legacy_generation`](tenure::Token::legacy_generation) gives it (1 if it
//!   was not spent, so it is current under its grant; 0 if it was, so presenting it
//!   again is reuse), and an entry in `token_expiry`, so the sweep prunes it.
//!
//! Versions are kept: a format-2 record of a format-1 record has the same version,
//! so nothing an engine read before the upgrade is stale because of it (no engine
//! can read during it: the store's lock is held and the store is not open yet).
//!
//! # Crash safety
//!
//! The upgrade is resumable rather than one transaction (a store of millions of
//! tokens would not fit one): each record's first byte says its format, so a record
//! is rewritten only while it still starts with 1. Records are rewritten in batches
//! of [`BATCH`], each batch one atomic sled write, a token always in the same
//! transaction as its expiry entry. The store's format marker moves to 2 last, after
//! a flush, so until it does the store still says format 1, and opening it again
//! after a crash at any moment runs the upgrade again, which skips what was done
//! and finishes the rest. Readers never see a half-upgraded store: opening returns
//! only once the marker says 2.

use std::ops::Bound;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional, Tree};

use crate::codec::{GrantV1, Layout, TokenV1, decode, encode, format_of};
use crate::error::StoreError;
use crate::keys::ms;
use crate::trees::{FORMAT_KEY, META_TREE, T, Trees, expiry_key};

/// The format this module upgrades from.
pub(crate) const FORMAT_1: u32 = 1;

/// The format it upgrades to: this build's. A later format adds its own step,
/// from 2, after this one.
const FORMAT_2: u32 = 2;
const _: () = assert!(FORMAT_2 == crate::FORMAT_VERSION);

/// Records rewritten per atomic write.
const BATCH: usize = 1024;

/// Upgrades a store of format 1 to format 2, resuming an upgrade a crash cut short;
/// the format marker says 2 when it returns.
pub(crate) fn from_format_1(db: &sled::Db) -> Result<(), StoreError> {
    let trees = Trees::open(db)?;
    upgrade_grants(&trees)?;
    upgrade_tokens(&trees)?;
    // Every rewritten record is durable before the marker says it is rewritten.
    db.flush()?;
    db.open_tree(META_TREE)?
        .insert(FORMAT_KEY, &FORMAT_2.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

fn upgrade_grants(trees: &Trees) -> Result<(), StoreError> {
    let grants = trees.get(T::Grants);
    in_format_1::<GrantV1>(grants, "grant", |batch| {
        let mut rewrite = sled::Batch::default();
        for (key, value) in batch {
            let grant = decode::<GrantV1>("grant", &value)?.upgrade();
            rewrite.insert(key, encode(&grant)?);
        }
        Ok(grants.apply_batch(rewrite)?)
    })
}

fn upgrade_tokens(trees: &Trees) -> Result<(), StoreError> {
    let (tokens, expiry) = (trees.get(T::Tokens), trees.get(T::TokenExpiry));
    in_format_1::<TokenV1>(tokens, "token", |batch| {
        let mut rewrites = Vec::with_capacity(batch.len());
        for (key, value) in batch {
            let token = decode::<TokenV1>("token", &value)?.upgrade();
            let value = encode(&token)?;
            let token = token.into_record()?.record;
            let entry = expiry_key(
                &token.zone_id,
                ms(&token.expires_at),
                token.digest.as_bytes(),
            );
            rewrites.push((key, value, entry));
        }
        let result = (tokens, expiry).transaction(|(tokens, expiry)| {
            for (key, value, entry) in &rewrites {
                tokens.insert(key, value.as_slice())?;
                expiry.insert(entry.as_slice(), &[])?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    })
}

/// Walks `tree` in key order, [`BATCH`] records at a time, and hands `rewrite` the
/// records of each batch that are still in layout `L`, of format 1.
fn in_format_1<L: Layout>(
    tree: &Tree,
    what: &'static str,
    mut rewrite: impl FnMut(Vec<(IVec, IVec)>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut start = Bound::Unbounded;
    loop {
        let mut legacy = Vec::new();
        let mut last = None;
        let mut seen = 0;
        for item in tree.range::<IVec, _>((start, Bound::Unbounded)).take(BATCH) {
            let (key, value) = item?;
            seen += 1;
            last = Some(key.clone());
            // Only format 1 is rewritten: a record in format 2 was rewritten by an
            // upgrade a crash cut short, and any other byte is left for reads to
            // report.
            if format_of(what, &value)? == L::FORMAT {
                legacy.push((key, value));
            }
        }
        if !legacy.is_empty() {
            rewrite(legacy)?;
        }
        match last {
            Some(key) if seen == BATCH => start = Bound::Excluded(key),
            _ => return Ok(()),
        }
    }
}
