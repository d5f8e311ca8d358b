//! What the vendor dialects ([SailPoint](crate::sailpoint),
//! [Storyden](crate::storyden)) share: they read and answer in a vendor's words,
//! and call the same engine operations as tenure's own routes, so no rule exists
//! twice.

use axum::http::StatusCode;
use tenure::validate::MAX_PAGE_LIMIT;
use tenure::{Client, Engine};

/// The status a vendor's API gives what tenure answers with `status`: neither
/// vendor documents 409 or 422, and both answer a request whose content is
/// refused with 400.
pub(crate) fn vendor_status(status: StatusCode) -> StatusCode {
    match status {
        StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    }
}

/// Every client of the zone, by id: both vendors list clients in one answer.
pub(crate) async fn all_clients(engine: &Engine, zone_id: &str) -> tenure::Result<Vec<Client>> {
    let mut clients = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = engine
            .list_clients_page(zone_id, after.as_deref(), MAX_PAGE_LIMIT)
            .await?;
        clients.extend(page.items);
        match page.after_cursor {
            Some(cursor) => after = Some(cursor),
            None => return Ok(clients),
        }
    }
}
