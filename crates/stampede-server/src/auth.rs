//! Tokens: `Authorization: Token SECRET`. A secret is 32 random bytes shown once (hex); the
//! store keeps its SHA-256, looked up by hash and compared in constant time. A token may
//! expire (login tokens do); an expired or revoked one is refused like an unknown one, and
//! the answer never says which it was.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State as Extract};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use stampede_api::testrun::{TokenInfo, TokenValidity, ValidateToken};
use stampede_core::Clock;
use stampede_store::{EventStore, NewToken, TokenRecord};
use subtle::ConstantTimeEq;

use crate::State;
use crate::error::{ApiError, ApiJson};

/// The project a request's token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Project(pub(crate) String);

/// Who a request's token speaks for: the user a login token was issued to, or the name of
/// a token made by hand. Jobs record it as their requestor.
#[derive(Debug, Clone)]
pub(crate) struct Requestor(pub(crate) String);

/// The hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No randomness from the system.
    #[error("cannot draw a random secret: {0}")]
    Random(String),
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] stampede_store::StoreError),
}

/// A token to make: its name, project, how long it lasts and whom it was issued to.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec<'a> {
    /// What it is called (unique among live tokens).
    pub name: &'a str,
    /// The project whose jobs it sees.
    pub project: &'a str,
    /// How long it stays valid; `None` for ever (until revoked).
    pub expires_in: Option<Duration>,
    /// The user it is issued to, for a login token.
    pub user: Option<&'a str>,
}

/// Creates a token for `project` named `name` that never expires and returns its secret
/// (shown once).
pub async fn create_token(
    store: &Arc<dyn EventStore>,
    name: &str,
    project: &str,
) -> Result<String, TokenError> {
    let spec = TokenSpec {
        name,
        project,
        ..TokenSpec::default()
    };
    create_token_with(store, &stampede_core::SystemClock, &spec).await
}

/// Creates the token `spec` describes, as of `clock`'s now, and returns its secret (shown
/// once).
pub async fn create_token_with(
    store: &Arc<dyn EventStore>,
    clock: &dyn Clock,
    spec: &TokenSpec<'_>,
) -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let now = clock.now_us();
    let expires_at_us = spec.expires_in.map(|ttl| {
        let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        now.saturating_add(ttl)
    });
    store
        .create_token(NewToken {
            name: spec.name.to_string(),
            project: spec.project.to_string(),
            hash: hash_secret(&secret),
            created_at_us: now,
            expires_at_us,
            user_name: spec.user.map(str::to_string),
        })
        .await?;
    Ok(secret)
}

/// The token whose secret is `secret`, if it may be used now.
async fn valid_token(state: &State, secret: &str) -> Result<Option<TokenRecord>, ApiError> {
    let hash = hash_secret(secret);
    let token = state.store.token_by_hash(&hash).await?;
    let now = state.clock.now_us();
    Ok(
        token
            .filter(|t| bool::from(t.hash.as_bytes().ct_eq(hash.as_bytes())) && t.is_valid_at(now)),
    )
}

/// Lets a request through only with a token that is neither unknown, revoked nor expired;
/// puts its [`Project`] and [`Requestor`] in the request's extensions.
pub(crate) async fn require_token(
    Extract(state): Extract<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this call needs a token: send 'Authorization: Token SECRET' (create one with `stampede server token create`)",
            )
        })?;
    let secret = header
        .strip_prefix("Token ")
        .or_else(|| header.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("write the header as 'Authorization: Token SECRET'")
        })?;
    let Some(token) = valid_token(&state, secret).await? else {
        return Err(ApiError::unauthorized(
            "this token is not valid: log in again (`stampede login`) or ask for a new token \
             (`stampede server token create`)",
        ));
    };
    let requestor = Requestor(token.identity().to_string());
    request.extensions_mut().insert(Project(token.project));
    request.extensions_mut().insert(requestor);
    Ok(next.run(request).await)
}

/// `POST /v1/validate-token`: whether a token may be used, and whose it is. An unknown,
/// revoked and expired token get the same answer, `invalid`: the endpoint needs no token,
/// so it must not tell a guesser which secrets once existed.
pub(crate) async fn validate_token(
    Extract(state): Extract<Arc<State>>,
    ApiJson(body): ApiJson<ValidateToken>,
) -> Result<Json<TokenValidity>, ApiError> {
    Ok(Json(match valid_token(&state, body.token.trim()).await? {
        Some(t) => TokenValidity {
            is_valid: true,
            message: format!("token {:?} of project {:?}", t.name, t.project),
            token_info: Some(TokenInfo {
                name: t.name,
                project: t.project,
            }),
        },
        None => TokenValidity {
            is_valid: false,
            message: "invalid".to_string(),
            token_info: None,
        },
    }))
}
