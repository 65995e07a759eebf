//! `PUT /alcs/loyalty/v1/loyalty-cards/{card-number}` — register a card (contract 5.1).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, json, store_failure, wire};
use crate::domain::Registered;

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
