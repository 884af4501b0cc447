//! Tokens: `Authorization: Token SECRET`. A secret is 32 random bytes shown once (hex); the
//! store keeps its SHA-256, looked up by hash and compared in constant time.

use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::Json;
use axum::extract::{Request, State as Extract};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use stampede_api::testrun::{LoggedIn, Login, TokenInfo, TokenValidity, ValidateToken};
use stampede_store::{EventStore, NewToken, NewUser};
use subtle::ConstantTimeEq;

use crate::State;
use crate::error::{ApiError, ApiJson};

/// The project a request's token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Project(pub(crate) String);

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

/// Why a user could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The password is too short to be one.
    #[error("the password must be at least {MIN_PASSWORD} characters")]
    ShortPassword,
    /// No randomness, or the hasher failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] stampede_store::StoreError),
}

/// The shortest password accepted.
const MIN_PASSWORD: usize = 8;

fn hash_password(password: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Creates a user who logs in with `name` and `password` for tokens of `project`; the
/// store keeps the password's Argon2id hash only.
pub async fn create_user(
    store: &Arc<dyn EventStore>,
    name: &str,
    project: &str,
    password: &str,
) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::ShortPassword);
    }
    store
        .create_user(NewUser {
            name: name.to_string(),
            project: project.to_string(),
            password_hash: hash_password(password)?,
            created_at_us: stampede_core::Clock::now_us(&stampede_core::SystemClock),
        })
        .await?;
    Ok(())
}

/// `POST /v1/login`: a user's name and password for a new token of their project (k6's
/// login). An unknown user costs the same hashing as a wrong password, so the answer's
/// timing does not tell which.
pub(crate) async fn login(
    Extract(state): Extract<Arc<State>>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    let user = state.store.user_by_name(&body.email).await?;
    // A hash of a password nobody has, for the unknown user to be checked against.
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3RhbXBlZGVkZWNveQ$1L6bpOEUhgCTJjjUdI8jdHYnB+3xaDNfIGVGeJtrx9Q";
    let stored = user.as_ref().map_or(DECOY, |u| u.password_hash.as_str());
    let password = body.password;
    let stored_owned = stored.to_string();
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored_owned).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        return Err(ApiError::unauthorized(
            "wrong user name or password (users are made with `stampede server user create`)",
        ));
    };
    let mut tag = [0u8; 4];
    getrandom::fill(&mut tag).map_err(|e| ApiError::internal(e.to_string()))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("login-{}-{tag}", user.name);
    let token = create_token(&state.store, &name, &user.project)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(LoggedIn { token }))
}

/// Creates a token named `name` for `project` and returns its secret (shown once).
pub async fn create_token(
    store: &Arc<dyn EventStore>,
    name: &str,
    project: &str,
) -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    store
        .create_token(NewToken {
            name: name.to_string(),
            project: project.to_string(),
            hash: hash_secret(&secret),
            created_at_us: stampede_core::Clock::now_us(&stampede_core::SystemClock),
        })
        .await?;
    Ok(secret)
}

/// Lets a request through only with a valid, unrevoked token; puts its project in the
/// request's extensions.
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
    let hash = hash_secret(secret);
    let token = state.store.token_by_hash(&hash).await?;
    let valid = token.filter(|t| {
        t.revoked_at_us.is_none() && bool::from(t.hash.as_bytes().ct_eq(hash.as_bytes()))
    });
    let Some(token) = valid else {
        return Err(ApiError::unauthorized(
            "this token is not valid (unknown or revoked)",
        ));
    };
    request.extensions_mut().insert(Project(token.project));
    Ok(next.run(request).await)
}

/// `POST /v1/validate-token`: whether a token may be used, and whose it is.
pub(crate) async fn validate_token(
    Extract(state): Extract<Arc<State>>,
    ApiJson(body): ApiJson<ValidateToken>,
) -> Result<Json<TokenValidity>, ApiError> {
    let hash = hash_secret(body.token.trim());
    let token = state.store.token_by_hash(&hash).await?;
    let token = token.filter(|t| bool::from(t.hash.as_bytes().ct_eq(hash.as_bytes())));
    Ok(Json(match token {
        Some(t) if t.revoked_at_us.is_none() => TokenValidity {
            is_valid: true,
            message: format!("token {:?} of project {:?}", t.name, t.project),
            token_info: Some(TokenInfo {
                name: t.name,
                project: t.project,
            }),
        },
        Some(t) => TokenValidity {
            is_valid: false,
            message: format!("token {:?} was revoked", t.name),
            token_info: None,
        },
        None => TokenValidity {
            is_valid: false,
            message: "no such token".to_string(),
            token_info: None,
        },
    }))
}
