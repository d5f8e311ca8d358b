//! The query parameters of the list routes, read strictly: a value outside what the
//! API document allows (an unknown enum value, a malformed or out-of-range number)
//! is refused with 400 naming the parameter, never ignored.

use tenure::validate::MAX_PAGE_LIMIT;

use crate::extract::QueryPairs;
use crate::problem::ApiError;

/// `limit`, if given: a whole number from 1 to [`MAX_PAGE_LIMIT`].
pub(crate) fn limit(q: &QueryPairs) -> Result<Option<usize>, ApiError> {
    let Some(value) = q.one("limit")? else {
        return Ok(None);
    };
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::invalid_parameter(
            "limit",
            format!("expected a whole number from 1 to {MAX_PAGE_LIMIT}"),
        )),
    }
}

/// The value of `name` among `choices` (the parameter's values as the document
/// spells them, and what each means), if given.
pub(crate) fn one_of<T: Copy>(
    q: &QueryPairs,
    name: &'static str,
    choices: &[(&str, T)],
) -> Result<Option<T>, ApiError> {
    let Some(value) = q.one(name)? else {
        return Ok(None);
    };
    match choices.iter().find(|(spelled, _)| *spelled == value) {
        Some((_, meaning)) => Ok(Some(*meaning)),
        None => {
            let expected: Vec<&str> = choices.iter().map(|(spelled, _)| *spelled).collect();
            Err(ApiError::invalid_parameter(
                name,
                format!("expected {}", expected.join(" or ")),
            ))
        }
    }
}

/// The answer to an engine error of a listing whose query parameters are `params`:
/// the engine's refusal of one of them is a 400 naming it, like the route's own
/// checks; anything else (a bad zone id, a cursor, the store) answers as usual.
pub(crate) fn refused(error: tenure::Error, params: &[&str]) -> ApiError {
    match error {
        tenure::Error::InvalidInput { field, reason } if params.contains(&field) => {
            ApiError::invalid_parameter(field, reason)
        }
        other => other.into(),
    }
}
