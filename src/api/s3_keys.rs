//! Managing S3 access keys (`shoal s3 key …`): create, import, list,
//! remove. Secrets appear only in the answer to a create or an import.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState};
use crate::s3::{KeyInfo, NewKey};

/// The body of a key creation.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateKey {
    /// The key's name, for people.
    pub name: String,
}

/// The body of a key import.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportKey {
    /// The key's name, for people.
    pub name: String,
    /// The access key id to keep.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
}

/// `POST /v1/s3/keys`: a new key with a random id and secret.
pub async fn create(
    State(state): State<ApiState>,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let key = state.keys.create(&body.name).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `POST /v1/s3/keys/import`: a key made elsewhere.
pub async fn import(
    State(state): State<ApiState>,
    Json(body): Json<ImportKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let key = state
        .keys
        .import(&body.access_key_id, &body.secret_access_key, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /v1/s3/keys`: every key, never a secret.
pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    Ok(Json(state.keys.list().await?))
}

/// `DELETE /v1/s3/keys/{id}`: removes a key everywhere, for good.
pub async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.keys.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
