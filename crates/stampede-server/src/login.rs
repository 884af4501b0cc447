//! Users and `POST /v1/login`: a name and a password for a token that expires.
//!
//! A password check is Argon2id at 19 MiB and some tens of milliseconds of CPU, so logins
//! are the cheapest way to exhaust the server. In the order they are checked:
//!
//! 1. per client address (the TCP peer) and 2. per user name, a [`Rate`]: a burst, then a
//!    steady rate, and a doubling wait after repeated failures (429 with `Retry-After`);
//! 3. the [`Gate`]: at most [`LoginLimits::concurrency`] checks at once, a short queue
//!    behind them, and 429 for the rest. Memory held by password checks is therefore at most
//!    `concurrency × 19 MiB`, whatever the number of clients or addresses.
//!
//! An unknown user costs the same check as a wrong password, so neither the answer nor its
//! timing tells which. Failures count against the address and the name alike; a success
//! clears the name's failures (not the address's: one good account must not let an address
//! keep guessing others).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::Json;
use axum::extract::{ConnectInfo, State as Extract};
use stampede_api::testrun::{LoggedIn, Login};
use stampede_store::{EventStore, NewUser};

use crate::State;
use crate::auth::{TokenSpec, create_token_with};
use crate::error::{ApiError, ApiJson};
use crate::limiter::{Gate, Limiter, Rate};

/// How logins are limited, and how long their tokens last.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// How long a token from `POST /v1/login` stays valid.
    pub token_ttl: Duration,
    /// Password checks at once (default: the CPUs this process may use).
    pub concurrency: usize,
    /// Logins that may wait for a check; past them, 429 at once.
    pub queue: usize,
    /// How long a login waits for a check before it is answered 429.
    pub max_wait: Duration,
    /// The limit per client address.
    pub per_address: Rate,
    /// The limit per user name (known or not).
    pub per_user: Rate,
}

impl Default for LoginLimits {
    fn default() -> LoginLimits {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        LoginLimits {
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            concurrency: cpus,
            queue: 8 * cpus,
            max_wait: Duration::from_secs(2),
            per_address: Rate {
                burst: 20,
                every: Duration::from_secs(1),
                free_failures: 10,
                max_backoff: Duration::from_secs(300),
            },
            per_user: Rate {
                burst: 10,
                every: Duration::from_secs(6),
                free_failures: 5,
                max_backoff: Duration::from_secs(900),
            },
        }
    }
}

/// The login limits in force: the server state's part.
#[derive(Debug)]
pub(crate) struct Logins {
    ttl: Duration,
    per_address: Limiter,
    per_user: Limiter,
    gate: Gate,
}

impl Logins {
    pub(crate) fn new(limits: &LoginLimits) -> Logins {
        Logins {
            ttl: limits.token_ttl,
            per_address: Limiter::new(limits.per_address),
            per_user: Limiter::new(limits.per_user),
            gate: Gate::new(limits.concurrency, limits.queue, limits.max_wait),
        }
    }
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

/// A hash of a password nobody has, for the unknown user to be checked against.
const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3RhbXBlZGVkZWNveQ$1L6bpOEUhgCTJjjUdI8jdHYnB+3xaDNfIGVGeJtrx9Q";

fn too_many(what: &str, wait: Duration) -> ApiError {
    ApiError::too_many_requests(
        format!(
            "too many logins {what}; try again in {} s",
            wait.as_secs().max(1)
        ),
        wait,
    )
}

/// `POST /v1/login`: a user's name and password for a new token of their project (k6's
/// login), valid for the server's login token lifetime.
pub(crate) async fn login(
    Extract(state): Extract<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    let logins = &state.logins;
    let address = address_key(peer.ip());
    let now = state.clock.now_us();
    logins
        .per_address
        .attempt(&address, now)
        .map_err(|wait| too_many(&format!("from {address}"), wait))?;
    logins
        .per_user
        .attempt(&body.email, now)
        .map_err(|wait| too_many("for this user name", wait))?;
    let user = state.store.user_by_name(&body.email).await?;
    let stored = user
        .as_ref()
        .map_or(DECOY, |u| u.password_hash.as_str())
        .to_string();
    let password = body.password;
    let matches = logins
        .gate
        .run(move || {
            PasswordHash::new(&stored).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
        })
        .await
        .map_err(|_| {
            ApiError::too_many_requests(
                "the server is checking as many passwords as it can; try again in 1 s",
                Duration::from_secs(1),
            )
        })?;
    let now = state.clock.now_us();
    let Some(user) = user.filter(|_| matches) else {
        logins.per_address.failed(&address, now);
        logins.per_user.failed(&body.email, now);
        return Err(ApiError::unauthorized(
            "wrong user name or password (users are made with `stampede server user create`)",
        ));
    };
    logins.per_user.succeeded(&body.email, now);
    let mut tag = [0u8; 4];
    getrandom::fill(&mut tag).map_err(|e| ApiError::internal(e.to_string()))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("login-{}-{tag}", user.name);
    let spec = TokenSpec {
        name: &name,
        project: &user.project,
        expires_in: Some(logins.ttl),
        user: Some(&user.name),
    };
    let token = create_token_with(&state.store, &*state.clock, &spec)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(LoggedIn { token }))
}

/// The key an address is limited by: an IPv4 address (also one mapped into IPv6) as it is,
/// an IPv6 address by its /64, which one client usually holds whole.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_host_or_ipv6_prefix() {
        for (ip, key) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::ffff:10.0.0.7", "10.0.0.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ] {
            assert_eq!(address_key(ip.parse().unwrap()), key, "{ip}");
        }
    }

    /// The decoy is a valid PHC string with the parameters new hashes get, so that checking
    /// an unknown user costs what checking a real one does.
    #[test]
    fn the_decoy_costs_what_a_real_hash_does() {
        let real = hash_password("correct horse").unwrap();
        let params = |phc: &str| phc.split('$').nth(3).unwrap().to_string();
        assert_eq!(params(DECOY), params(&real));
        assert!(PasswordHash::new(DECOY).is_ok());
    }
}
