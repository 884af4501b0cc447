//! The token half of the conformance suite: API tokens as the job server keeps them (by
//! hash, revoked rather than deleted, names unique among live tokens).

use super::must;
use crate::{EventStore, NewToken, StoreError, TokenClash, TokenId, TokenRecord};

/// A token named `name` in `project` whose secret hashes to `hash`.
fn new_token(name: &str, project: &str, hash: &str) -> NewToken {
    NewToken {
        name: name.to_owned(),
        project: project.to_owned(),
        hash: hash.to_owned(),
        created_at_us: 1_700_000_000_000_000,
        expires_at_us: None,
        user_name: None,
    }
}

/// The hex SHA-256 shape of a hash, different for each `n`.
fn hash(n: u32) -> String {
    format!("{n:064x}")
}

async fn create_token(store: &dyn EventStore, token: NewToken) -> TokenId {
    must(store.create_token(token).await, "create_token")
}

async fn tokens(store: &dyn EventStore) -> Vec<TokenRecord> {
    must(store.list_tokens().await, "list_tokens")
}

/// Token ids start at 1 and increase; every field (expiry and user too) comes back as
/// written, from the list and by hash; an unknown hash (or one the store could not even
/// keep) finds nothing.
pub async fn token_round_trip(store: &dyn EventStore) {
    assert_eq!(tokens(store).await, [], "a new store's tokens");
    let written = [
        new_token("ci", "alpha", &hash(1)),
        NewToken {
            created_at_us: i64::MIN,
            ..new_token("Zürich — 東京 — 🚀 'quoted' $1 ?; --", "ünïcödé", "H")
        },
        NewToken {
            created_at_us: i64::MAX,
            ..new_token("", "", "")
        },
        NewToken {
            expires_at_us: Some(1_700_000_000_000_001),
            user_name: Some("Zoë 🚀".to_owned()),
            ..new_token("login-zoe-1", "alpha", &hash(4))
        },
        NewToken {
            expires_at_us: Some(i64::MIN),
            user_name: Some(String::new()),
            ..new_token("expired", "alpha", &hash(5))
        },
    ];
    let mut expected = Vec::new();
    for token in written {
        let id = create_token(store, token.clone()).await;
        expected.push(TokenRecord::new(id, token));
    }
    assert_eq!(expected[0].id, 1, "the first token id");
    assert!(
        expected.windows(2).all(|pair| pair[0].id < pair[1].id),
        "token ids {expected:?}"
    );
    assert_eq!(tokens(store).await, expected, "the tokens listed");
    for token in &expected {
        let found = must(store.token_by_hash(&token.hash).await, "token_by_hash");
        assert_eq!(found.as_ref(), Some(token), "token {} by hash", token.id);
    }
    for unknown in [
        hash(2),
        "h".to_owned(),
        format!("{} ", hash(1)),
        "\0".to_owned(),
    ] {
        let found = must(store.token_by_hash(&unknown).await, "token_by_hash");
        assert_eq!(found, None, "hash {unknown:?}");
    }
}

/// A token whose hash any token has, or whose name a token that is not revoked has (in
/// any project), is [`StoreError::DuplicateToken`] and writes nothing; once the token of
/// that name is revoked, the name is free again, but its hash never is.
pub async fn duplicate_tokens_are_refused(store: &dyn EventStore) {
    let first = create_token(store, new_token("ci", "alpha", &hash(1))).await;
    let before = tokens(store).await;
    let cases = [
        (new_token("ci", "alpha", &hash(2)), TokenClash::Name),
        (new_token("ci", "beta", &hash(2)), TokenClash::Name),
        (new_token("deploy", "alpha", &hash(1)), TokenClash::Hash),
        (new_token("ci", "alpha", &hash(1)), TokenClash::Hash),
    ];
    let check = async |cases: &[(NewToken, TokenClash)]| {
        for (token, clash) in cases {
            match store.create_token(token.clone()).await {
                Err(StoreError::DuplicateToken { name, clash: found }) => {
                    assert_eq!((&name, found), (&token.name, *clash), "{token:?}");
                }
                other => panic!("creating {token:?} gave {other:?}"),
            }
        }
    };
    check(&cases).await;
    assert_eq!(tokens(store).await, before, "a refused token was written");
    assert!(must(store.revoke_token(first, 5).await, "revoke_token"));

    let second = create_token(store, new_token("ci", "beta", &hash(2))).await;
    assert!(second > first, "token ids {first}, {second}");
    check(&[
        (new_token("other", "alpha", &hash(1)), TokenClash::Hash),
        (new_token("ci", "alpha", &hash(3)), TokenClash::Name),
    ])
    .await;
    assert!(must(store.revoke_token(second, 6).await, "revoke_token"));
    let third = create_token(store, new_token("ci", "gamma", &hash(3))).await;
    let listed = tokens(store).await;
    let names: Vec<(TokenId, &str, Option<i64>)> = listed
        .iter()
        .map(|token| (token.id, token.project.as_str(), token.revoked_at_us))
        .collect();
    assert_eq!(
        names,
        [
            (first, "alpha", Some(5)),
            (second, "beta", Some(6)),
            (third, "gamma", None)
        ],
        "three tokens named ci, two revoked"
    );
}

/// `revoke_token` revokes once: it returns `true` and records the time the first time,
/// `false` for a token already revoked (keeping the first time) or unknown. A revoked token
/// is still found by its hash, and other tokens are untouched.
pub async fn revoke_token_once(store: &dyn EventStore) {
    let a = create_token(store, new_token("a", "alpha", &hash(1))).await;
    let b = create_token(store, new_token("b", "alpha", &hash(2))).await;
    let revoked_at = |of: String| async move {
        must(store.token_by_hash(&of).await, "token_by_hash")
            .unwrap_or_else(|| panic!("the token with hash {of} is missing"))
            .revoked_at_us
    };
    assert_eq!(
        revoked_at(hash(1)).await,
        None,
        "a new token is not revoked"
    );
    assert!(must(store.revoke_token(a, i64::MIN).await, "revoke_token"));
    assert_eq!(revoked_at(hash(1)).await, Some(i64::MIN), "after revoking");
    assert!(
        !must(store.revoke_token(a, 42).await, "revoke_token"),
        "revoking twice"
    );
    assert_eq!(
        revoked_at(hash(1)).await,
        Some(i64::MIN),
        "after revoking twice"
    );
    assert_eq!(revoked_at(hash(2)).await, None, "the other token");
    for unknown in [0, b + 1, 999, 1 << 63, u64::MAX] {
        assert!(
            !must(store.revoke_token(unknown, 1).await, "revoke_token"),
            "revoking unknown token {unknown}"
        );
    }
    assert!(must(store.revoke_token(b, i64::MAX).await, "revoke_token"));
    let times: Vec<Option<i64>> = tokens(store)
        .await
        .iter()
        .map(|token| token.revoked_at_us)
        .collect();
    assert_eq!(
        times,
        [Some(i64::MIN), Some(i64::MAX)],
        "listed revocations"
    );
}

/// A token with a NUL character in any text is refused, and nothing is written.
pub async fn token_text_with_nul_is_refused(store: &dyn EventStore) {
    for token in [
        new_token("a\0", "alpha", &hash(1)),
        new_token("a", "\0", &hash(1)),
        new_token("a", "alpha", "\0"),
        NewToken {
            user_name: Some("a\0".to_owned()),
            ..new_token("a", "alpha", &hash(1))
        },
    ] {
        let error = store
            .create_token(token.clone())
            .await
            .expect_err("a token with NUL must be refused");
        assert!(
            matches!(error, StoreError::NulInText { .. }),
            "{token:?}: {error}"
        );
    }
    assert_eq!(tokens(store).await, [], "a refused token was written");
}

/// Tokens are durable and shared: a second handle on the same store (another server) and a
/// reopened one see them, their revocations and their names.
pub async fn tokens_survive_reopen(store: &dyn EventStore, url: &str) {
    let a = create_token(store, new_token("ci", "alpha", &hash(1))).await;
    let again = must(crate::open(url).await, "opening the store again");
    assert_eq!(
        tokens(&*again).await,
        tokens(store).await,
        "a second handle's tokens"
    );
    let error = again
        .create_token(new_token("ci", "beta", &hash(2)))
        .await
        .expect_err("the name is taken through the first handle");
    assert!(
        matches!(error, StoreError::DuplicateToken { .. }),
        "{error}"
    );
    assert!(must(again.revoke_token(a, 7).await, "revoke_token"));
    let b = create_token(&*again, new_token("ci", "beta", &hash(2))).await;
    assert!(b > a, "token ids keep increasing across handles");
    let written = tokens(store).await;
    assert_eq!(written.len(), 2, "the first handle's view: {written:?}");
    assert_eq!(
        written[0].revoked_at_us,
        Some(7),
        "the first handle sees the revocation"
    );
    drop(again);

    let third = must(crate::open(url).await, "reopening the store after closing");
    assert_eq!(tokens(&*third).await, written, "tokens after reopening");
}
