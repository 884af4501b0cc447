//! Errors as k6's envelope: the status, a message that says what to fix, details.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stampede_api::server::{ErrorBody, ErrorDetail};

/// An API error: its status and body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    details: BTreeMap<String, Vec<String>>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: BTreeMap::new(),
            retry_after: None,
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no token, or not a valid one.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the token's project may not do this, with each reason and how an admin allows
    /// it.
    pub fn forbidden(message: impl Into<String>, reasons: Vec<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::FORBIDDEN, message);
        error.details.insert("refused".into(), reasons);
        error
    }

    /// 404: no such thing (for this token).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the path exists, but not with this method.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message)
    }

    /// 409: the request does not fit the job's state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 422: a descriptor that parses but is invalid, with every problem.
    pub fn invalid(message: impl Into<String>, problems: Vec<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
        error.details.insert("problems".into(), problems);
        error
    }

    /// 422: the request is well formed but cannot be taken as it is.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429: too many requests; try again after `retry_after` (sent as `Retry-After`).
    pub fn too_many_requests(message: impl Into<String>, retry_after: Duration) -> ApiError {
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
        error.retry_after = Some(retry_after);
        error
    }

    /// 500: the store failed (never a bad request).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An extractor's rejection (a query string that does not parse, a body too large),
    /// with the rejection's status.
    pub(crate) fn rejected(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<stampede_store::StoreError> for ApiError {
    fn from(e: stampede_store::StoreError) -> ApiError {
        match e {
            // Text the store cannot keep is the request's fault, not the store's.
            stampede_store::StoreError::NulInText { .. } => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(format!("the event store failed: {e}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.status.as_u16(),
                message: self.message,
                details: self.details,
                field_errors: BTreeMap::new(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

/// axum's `Query`, rejecting a bad query string with the envelope rather than plain text.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(query)) => Ok(ApiQuery(query)),
            Err(e) => Err(ApiError::rejected(e.status(), e.body_text())),
        }
    }
}

/// A JSON body, rejected with the envelope (what is wrong and where) rather than plain text.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::rejected(e.status(), e.body_text()))?;
        if body.is_empty() {
            return Err(ApiError::bad_request(
                "send a JSON object as the request body (/v1/openapi.json describes it)",
            ));
        }
        serde_json::from_slice(&body).map(ApiJson).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not what this call takes: {e}; /v1/openapi.json describes it"
            ))
        })
    }
}

/// Answers 503 when a request takes longer than `timeout`.
pub(crate) async fn with_timeout(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} ms; try again",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
