//! Managing access tokens (`shoal token …`): create, list, remove. A
//! token's text appears only in the answer to its creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState};
use crate::chunk::wall_millis;
use crate::tokens::{NewToken, Scope, TokenInfo};

/// The body of a token creation.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateToken {
    /// The token's name, for people.
    pub name: String,
    /// What it allows.
    pub scope: Scope,
    /// How long it works, in seconds from now; forever if absent.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

/// `POST /v1/tokens`: a new token.
pub async fn create(
    State(state): State<ApiState>,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    let expires_ms = match body.expires_in_s {
        None => None,
        Some(secs) => Some(
            secs.checked_mul(1000)
                .and_then(|ms| wall_millis().checked_add(ms))
                .ok_or_else(|| ApiError::BadRequest("expires_in_s is too large".into()))?,
        ),
    };
    let token = state
        .tokens
        .create(&body.name, body.scope, expires_ms)
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// `GET /v1/tokens`: every token, never its text.
pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(state.tokens.list().await?))
}

/// `DELETE /v1/tokens/{name}`: removes a token everywhere, for good.
pub async fn remove(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.tokens.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
