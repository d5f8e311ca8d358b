//! The storage conformance suite of `tenure-testkit` on PostgreSQL.
//!
//! A store opens asynchronously (it connects and creates its schema), so, as the
//! suite's documentation says, each rule is called here in a test of its own
//! rather than through `conformance!`. Each test gets a fresh schema, dropped
//! afterwards; [`every_rule_of_the_suite_runs_here`] fails if the suite gains a rule
//! this list lacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use tenure_testkit::conformance;

/// One test per rule, each on its own runtime with the worker threads the suite
/// asks for, and the list of the rules run.
macro_rules! rules {
    ($($threads:literal $rule:ident,)+) => {
        $(
            #[test]
            fn $rule() {
                support::run($threads, support::with_store(conformance::$rule));
            }
        )+

        const RULES: &[&str] = &[$(stringify!($rule)),+];
    };
}

rules! {
    1 versioned_compare_and_set,
    1 deletes_check_the_version,
    1 write_set_is_all_or_nothing,
    2 readers_never_see_half_a_set,
    1 list_filters_alone_and_combined,
    1 list_status_is_read_at_query_time,
    1 list_orders_by_created_at_then_id,
    1 list_positions_and_flags,
    1 list_limit_edges,
    1 list_pages_slice_the_listing,
    1 list_walk_survives_concurrent_changes,
    2 engine_walk_survives_concurrent_changes,
    1 engine_rejects_forged_and_foreign_cursors,
    1 expired_grants_in_expiry_order,
    1 expiry_index_follows_status_and_deletion,
    1 tokens_by_digest_and_by_grant,
    1 zones_are_walls,
    1 delete_grant_removes_every_trace,
    1 history_in_append_order,
    1 list_clients_by_id,
    1 count_grants_agrees_with_listing,
    1 personal_grants_by_user_newest_first,
    1 user_codes_are_unique_in_a_zone,
    1 user_codes_are_unique_within_a_write_set,
    1 device_authorizations_by_code_and_expiry,
}

/// The rules `conformance!` expands to, read from the suite's source: the lines
/// `<threads> <rule>,` of its `__conformance_rules!` list.
fn suite_rules() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tenure-testkit/src/conformance.rs"
    );
    let source = std::fs::read_to_string(path).expect("reading the suite's source");
    let start = source
        .find("macro_rules! __conformance_rules")
        .expect("the suite lists its rules in __conformance_rules!");
    let mut rules = BTreeSet::new();
    for line in source[start..].lines().skip(1) {
        let line = line.trim();
        if line.starts_with("($factory:expr;") {
            break;
        }
        let mut words = line.split_whitespace();
        if let (Some(threads), Some(rule), None) = (words.next(), words.next(), words.next()) {
            if threads.parse::<usize>().is_ok() {
                if let Some(rule) = rule.strip_suffix(',') {
                    rules.insert(rule.to_owned());
                }
            }
        }
    }
    rules
}

#[test]
fn every_rule_of_the_suite_runs_here() {
    let suite = suite_rules();
    assert!(
        suite.len() >= 20,
        "found only {} rules in the suite's source; has its layout changed? {suite:?}",
        suite.len()
    );
    let here: BTreeSet<String> = RULES.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(
        here, suite,
        "the rules run here differ from the suite's: add the missing ones to rules!"
    );
}
