//! How a desk operation's failure is answered, the same by the API and by the console.

use crate::domain::Refusal;
use crate::http::error::ApiError;
use crate::http::{apply_failure, store_failure};
use crate::service::ApplyError;

/// A refused or failed desk change. A card that does not exist is a 404 here (the desk names
/// a resource), where ALCS's contract answers 400.
pub(super) fn desk_failure(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Refused(Refusal::CardNotFound) => ApiError::CardNotFoundOnRead,
        e => apply_failure(e, ApiError::Unknown),
    }
}

/// A desk read that failed.
pub(super) fn read_failure(e: &crate::service::Failure) -> ApiError {
    store_failure(e, ApiError::Unknown)
}
