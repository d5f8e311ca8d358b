//! Listing: filters, both orders, cursors both ways, and full walks under change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};

use chrono::Duration;
use tenure::{Actor, AuthorizeRequest, GrantStatus, ListGrants, SortOrder};
use tenure_memory::testing::TestBed;

async fn seeded(n: usize) -> (TestBed, String, Vec<String>) {
    let bed = TestBed::new();
    let client = bed.client(["read"]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        // Several grants share a millisecond, so the id must break ties.
        if i % 3 == 0 {
            bed.clock.advance(Duration::milliseconds(1));
        }
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        ids.push(bed.grant(&client, user, ["read"]).await.unwrap().grant.id);
    }
    (bed, client.id, ids)
}

/// Reads pages from `q` on, following `after_cursor` (forward) or `before_cursor`,
/// calling `between` after each page; returns the ids in listing order.
async fn walk(
    bed: &TestBed,
    q: &ListGrants,
    forward: bool,
    mut between: impl AsyncFnMut(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut q = q.clone();
    let mut pages = 0;
    loop {
        let page = bed.engine.list_grants(bed.zone, &q).await.unwrap();
        let mut ids: Vec<String> = page.items.iter().map(|g| g.id.clone()).collect();
        if !forward {
            ids.reverse();
        }
        seen.extend(ids);
        pages += 1;
        assert!(pages < 1000, "walk does not end");
        between(pages).await;
        let next = if forward {
            page.after_cursor
        } else {
            page.before_cursor
        };
        match next {
            Some(c) if forward => {
                q = ListGrants {
                    after: Some(c),
                    before: None,
                    ..q
                }
            }
            Some(c) => {
                q = ListGrants {
                    before: Some(c),
                    after: None,
                    ..q
                }
            }
            None => break,
        }
    }
    if !forward {
        seen.reverse();
    }
    seen
}

#[tokio::test]
async fn newest_first_by_default_and_oldest_first_when_asked() {
    let (bed, _, ids) = seeded(7).await;
    let page = bed
        .engine
        .list_grants(bed.zone, &ListGrants::default())
        .await
        .unwrap();
    let listed: Vec<_> = page.items.iter().map(|g| g.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert_eq!((page.after_cursor, page.before_cursor), (None, None));
    let page = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                order: SortOrder::Ascending,
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<_> = page.items.iter().map(|g| g.id.clone()).collect();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn cursors_appear_only_when_items_follow_or_precede() {
    let (bed, _, ids) = seeded(5).await;
    let q = ListGrants {
        order: SortOrder::Ascending,
        limit: Some(2),
        ..ListGrants::default()
    };
    let p1 = bed.engine.list_grants(bed.zone, &q).await.unwrap();
    assert!(p1.before_cursor.is_none() && p1.after_cursor.is_some());
    let p2 = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                after: p1.after_cursor.clone(),
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert!(p2.before_cursor.is_some() && p2.after_cursor.is_some());
    assert_eq!(
        p2.items.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        ids[2..4]
    );
    let p3 = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                after: p2.after_cursor.clone(),
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 1);
    assert!(p3.after_cursor.is_none() && p3.before_cursor.is_some());
    // before=C gives the items immediately preceding C, in the same order.
    let back = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                before: p3.before_cursor.clone(),
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(back.items, p2.items);
    assert!(back.after_cursor.is_some());
    let back = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                before: back.before_cursor.clone(),
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(back.items, p1.items);
    assert!(back.before_cursor.is_none());
}

#[tokio::test]
async fn filters_alone_and_combined_with_total_count() {
    let (bed, client_id, _) = seeded(10).await;
    let other = bed.client(["read"]).await.unwrap();
    bed.engine
        .authorize(
            bed.zone,
            AuthorizeRequest::new(other.id.clone(), "alice", "resource-2", ["read"]),
        )
        .await
        .unwrap();
    let all = bed
        .engine
        .list_grants(
            bed.zone,
            &ListGrants {
                limit: Some(100),
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    let revoked_id = all.items[3].id.clone();
    bed.engine
        .revoke_grant(bed.zone, &revoked_id, Actor::Admin)
        .await
        .unwrap();
    let count = |q: ListGrants| {
        let bed = bed.clone();
        async move {
            let page = bed
                .engine
                .list_grants(
                    bed.zone,
                    &ListGrants {
                        total_count: true,
                        limit: Some(100),
                        ..q
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.total_count, Some(page.items.len() as u64));
            page.items
        }
    };
    assert_eq!(count(ListGrants::default()).await.len(), 11);
    let alice = count(ListGrants {
        user_id: Some("alice".into()),
        ..ListGrants::default()
    })
    .await;
    assert_eq!(alice.len(), 6);
    assert!(alice.iter().all(|g| g.user_id == "alice"));
    let r2 = count(ListGrants {
        resource_id: Some("resource-2".into()),
        ..ListGrants::default()
    })
    .await;
    assert_eq!(r2.len(), 1);
    let by_client = count(ListGrants {
        client_id: Some(client_id.clone()),
        ..ListGrants::default()
    })
    .await;
    assert_eq!(by_client.len(), 10);
    let revoked = count(ListGrants {
        status: Some(GrantStatus::Revoked),
        ..ListGrants::default()
    })
    .await;
    assert_eq!(
        revoked.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        vec![revoked_id.clone()]
    );
    let active = count(ListGrants {
        active: true,
        ..ListGrants::default()
    })
    .await;
    assert_eq!(active.len(), 10);
    let combined = count(ListGrants {
        user_id: Some("alice".into()),
        resource_id: Some("resource-1".into()),
        status: Some(GrantStatus::Active),
        ..ListGrants::default()
    })
    .await;
    assert!(combined.iter().all(|g| g.user_id == "alice"
        && g.resource_id == "resource-1"
        && g.status == GrantStatus::Active));
    // `active=true` together with another status matches nothing.
    let none = count(ListGrants {
        active: true,
        status: Some(GrantStatus::Revoked),
        ..ListGrants::default()
    })
    .await;
    assert!(none.is_empty());
    // Status is the status as it reads now.
    bed.clock.advance(Duration::days(31));
    let expired = count(ListGrants {
        status: Some(GrantStatus::Expired),
        ..ListGrants::default()
    })
    .await;
    assert_eq!(expired.len(), 10);
    assert!(
        count(ListGrants {
            active: true,
            ..ListGrants::default()
        })
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn another_zone_lists_nothing_of_this_one() {
    let (bed, _, _) = seeded(3).await;
    let page = bed
        .engine
        .list_grants(
            "zone-2",
            &ListGrants {
                total_count: true,
                ..ListGrants::default()
            },
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.total_count, Some(0));
}

/// The query whose page is the last of the listing: `after` the cursor of the page
/// before it.
async fn last_page_query(bed: &TestBed, q: &ListGrants) -> ListGrants {
    let mut current = q.clone();
    loop {
        let page = bed.engine.list_grants(bed.zone, &current).await.unwrap();
        match page.after_cursor {
            Some(c) => {
                let next = ListGrants {
                    after: Some(c),
                    ..q.clone()
                };
                let probe = bed.engine.list_grants(bed.zone, &next).await.unwrap();
                if probe.after_cursor.is_none() {
                    return next;
                }
                current = next;
            }
            None => return current,
        }
    }
}

/// Walks a listing a page at a time while grants are inserted and deleted between
/// pages; every grant that existed throughout is seen exactly once.
async fn walk_under_change(order: SortOrder, forward: bool) {
    let (bed, client_id, ids) = seeded(40).await;
    let client = bed.engine.get_client(bed.zone, &client_id).await.unwrap();
    // Grants deleted during the walk: every fourth one.
    let doomed: Vec<String> = ids.iter().step_by(4).cloned().collect();
    let stable: BTreeSet<String> = ids
        .iter()
        .filter(|id| !doomed.contains(id))
        .cloned()
        .collect();
    let q = ListGrants {
        order,
        limit: Some(3),
        ..ListGrants::default()
    };
    let start = if forward {
        q
    } else {
        last_page_query(&bed, &q).await
    };
    let mut deleted = 0usize;
    let seen = walk(&bed, &start, forward, async |_| {
        if let Some(id) = doomed.get(deleted) {
            bed.engine.delete_grant(bed.zone, id).await.unwrap();
            deleted += 1;
        }
        bed.grant(&client, "carol", ["read"]).await.unwrap();
    })
    .await;
    assert!(deleted > 5, "the walk should have spanned many changes");
    check_walk(&seen, &stable);
}

fn check_walk(seen: &[String], stable: &BTreeSet<String>) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a grant was visited twice");
    for id in stable {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} not visited exactly once"
        );
    }
}

#[tokio::test]
async fn a_full_forward_walk_under_inserts_and_deletes_sees_each_stable_grant_once() {
    walk_under_change(SortOrder::Descending, true).await;
    walk_under_change(SortOrder::Ascending, true).await;
}

#[tokio::test]
async fn a_full_backward_walk_under_inserts_and_deletes_sees_each_stable_grant_once() {
    walk_under_change(SortOrder::Descending, false).await;
    walk_under_change(SortOrder::Ascending, false).await;
}

#[tokio::test]
async fn a_backward_walk_matches_the_forward_walk() {
    let (bed, _, _) = seeded(23).await;
    let q = ListGrants {
        limit: Some(4),
        ..ListGrants::default()
    };
    let forward = walk(&bed, &q, true, async |_| {}).await;
    let backward = walk(&bed, &last_page_query(&bed, &q).await, false, async |_| {}).await;
    assert_eq!(forward.len(), 23);
    assert_eq!(backward, forward);
}

/// A page after the end of the listing (everything after the cursor was deleted in
/// the meantime) is empty, yet its `before_cursor` leads back to every grant at or
/// before the cursor, the cursor's own grant included, in both orders.
#[tokio::test]
async fn an_empty_page_past_the_end_still_leads_back() {
    for order in [SortOrder::Ascending, SortOrder::Descending] {
        let (bed, _, _) = seeded(6).await;
        let q = ListGrants {
            user_id: Some("alice".into()),
            order,
            limit: Some(2),
            ..ListGrants::default()
        };
        let first = bed.engine.list_grants(bed.zone, &q).await.unwrap();
        let kept: Vec<String> = first.items.iter().map(|g| g.id.clone()).collect();
        let after = first.after_cursor.clone().expect("alice has 3 grants");
        // alice's third grant, the only one after the first page, goes away.
        let all = bed
            .engine
            .list_grants(
                bed.zone,
                &ListGrants {
                    limit: Some(10),
                    ..q.clone()
                },
            )
            .await
            .unwrap();
        let last = all.items.last().unwrap().id.clone();
        bed.engine.delete_grant(bed.zone, &last).await.unwrap();

        let past = ListGrants {
            after: Some(after),
            ..q.clone()
        };
        let empty = bed.engine.list_grants(bed.zone, &past).await.unwrap();
        assert!(empty.items.is_empty(), "{order:?}");
        assert_eq!(empty.after_cursor, None, "{order:?}");
        let back = ListGrants {
            before: empty.before_cursor.clone(),
            ..q.clone()
        };
        assert!(back.before.is_some(), "{order:?}: no way back");
        let page = bed.engine.list_grants(bed.zone, &back).await.unwrap();
        let ids: Vec<String> = page.items.iter().map(|g| g.id.clone()).collect();
        assert_eq!(
            ids, kept,
            "{order:?}: back to the first page, its last grant included"
        );
        assert_eq!(page.before_cursor, None, "{order:?}");
        assert_eq!(
            page.after_cursor, None,
            "{order:?}: nothing follows any more"
        );
    }
}
