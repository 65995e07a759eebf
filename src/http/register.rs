//! `PUT /alcs/loyalty/v1/loyalty-cards/{card-number}` — register a card (contract 5.1).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, json, store_failure, wire};
use crate::domain::Registered;

/// Register a card for a new customer.
///
/// Replaying the same registration (same card, same data, card still waiting for activation)
/// answers the same `CustomerId` again and changes nothing.
#[utoipa::path(
    put,
    path = "/alcs/loyalty/v1/loyalty-cards/{card_number}",
    tag = "cards",
    params(("card_number" = String, Path, description = "The loyalty card number: 1 to 32 digits", pattern = "^[0-9]{1,32}$", example = "99419283746389")),
    request_body(content = super::openapi::RegistrationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Registered (or the same registration replayed)", body = super::wire::CustomerIdBody),
        (status = 409, description = "`CardAlreadyRegistered`: the number is taken, by other data or by a card no longer waiting for activation", body = super::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
pub async fn register(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    JsonBody(body): JsonBody,
) -> Response {
    let language = wire::cashier_language(&body);
    let result = async {
        let (registration, identity) = wire::registration(&body, &card, state.default_country)?;
        match state.service.register(registration, identity).await {
            Ok(Registered::Created(id) | Registered::Replayed(id)) => Ok(json(
                StatusCode::OK,
                &wire::CustomerIdBody {
                    customer_id: id.to_string(),
                },
            )),
            Ok(Registered::AlreadyRegistered) => Err(ApiError::CardAlreadyRegistered),
            Err(e) => Err(store_failure(&e, ApiError::Unknown)),
        }
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(language) = language {
        response.extensions_mut().insert(language);
    }
    response
}
