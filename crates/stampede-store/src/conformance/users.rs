//! The user half of the conformance suite: users who log in with a name and a password.

use super::must;
use crate::{EventStore, NewToken, NewUser, StoreError};

fn new_user(name: &str, project: &str, hash: &str) -> NewUser {
    NewUser {
        name: name.to_owned(),
        project: project.to_owned(),
        password_hash: hash.to_owned(),
        created_at_us: 1_700_000_000_000_000,
    }
}

/// User ids start at 1 and increase (a refused user may use one up); every field comes back as written; an unknown name
/// (or one the store could not even keep) finds nothing; a second user of the same name is
/// refused and writes nothing.
pub async fn user_round_trip_and_duplicates(store: &dyn EventStore) {
    let ann = new_user(
        "ann",
        "alpha",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
    );
    let zed = new_user("Zürich 🚀 'quoted'", "ünïcödé", "h");
    assert_eq!(must(store.create_user(ann.clone()).await, "create_user"), 1);
    assert_eq!(must(store.create_user(zed.clone()).await, "create_user"), 2);
    for (id, user) in [(1, &ann), (2, &zed)] {
        let found = must(store.user_by_name(&user.name).await, "user_by_name").expect("found");
        assert_eq!(found.id, id);
        assert_eq!(found.name, user.name);
        assert_eq!(found.project, user.project);
        assert_eq!(found.password_hash, user.password_hash);
        assert_eq!(found.created_at_us, user.created_at_us);
    }
    for unknown in ["bob", "ANN", "a\0b", ""] {
        let found = must(store.user_by_name(unknown).await, "user_by_name");
        assert_eq!(found, None, "{unknown:?}");
    }
    let again = store.create_user(new_user("ann", "beta", "other")).await;
    assert!(
        matches!(&again, Err(StoreError::DuplicateUser { name }) if name == "ann"),
        "{again:?}"
    );
    let kept = must(store.user_by_name("ann").await, "user_by_name").expect("found");
    assert_eq!(kept.project, "alpha", "the refused user wrote nothing");
    let nul = store.create_user(new_user("a\0b", "p", "h")).await;
    assert!(matches!(nul, Err(StoreError::NulInText { .. })), "{nul:?}");
    // A refused user may use up an id (PostgreSQL's identity does); ids still increase.
    let id = must(
        store.create_user(new_user("cy", "p", "h")).await,
        "create_user",
    );
    assert!(id > 2, "{id}");
    let names: Vec<String> = must(store.list_users().await, "list_users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", &zed.name, "cy"], "users listed by id");
}

/// A token issued to `user` (or made by hand, for `None`) with a hash unique to `n`.
fn token_of(name: &str, user: Option<&str>, n: u32) -> NewToken {
    NewToken {
        name: name.to_owned(),
        project: "alpha".to_owned(),
        hash: format!("{n:064x}"),
        created_at_us: 1,
        expires_at_us: None,
        user_name: user.map(str::to_owned),
    }
}

/// `remove_user` removes the user and revokes the live tokens issued to it (and only
/// those: not a revoked one, whose time stays, nor another user's, nor a hand-made token
/// that merely shares the name); it says how many it revoked, `None` for no such user. The
/// name is free again afterwards, for a user with a new id.
pub async fn remove_user_revokes_its_tokens(store: &dyn EventStore) {
    let ann = must(
        store.create_user(new_user("ann", "alpha", "h")).await,
        "create_user",
    );
    must(
        store.create_user(new_user("bob", "alpha", "h")).await,
        "create_user",
    );
    let create = async |token: NewToken| must(store.create_token(token).await, "create_token");
    let first = create(token_of("login-ann-1", Some("ann"), 1)).await;
    let old = create(token_of("login-ann-0", Some("ann"), 2)).await;
    assert!(must(store.revoke_token(old, 3).await, "revoke_token"));
    create(token_of("login-ann-2", Some("ann"), 3)).await;
    create(token_of("login-bob-1", Some("bob"), 4)).await;
    create(token_of("ann", None, 5)).await;

    assert_eq!(
        must(store.remove_user("ann", 9).await, "remove_user"),
        Some(2),
        "ann's two live tokens"
    );
    let revoked: Vec<(String, Option<i64>)> = must(store.list_tokens().await, "list_tokens")
        .into_iter()
        .map(|t| (t.name, t.revoked_at_us))
        .collect();
    assert_eq!(
        revoked,
        [
            ("login-ann-1".to_owned(), Some(9)),
            ("login-ann-0".to_owned(), Some(3)),
            ("login-ann-2".to_owned(), Some(9)),
            ("login-bob-1".to_owned(), None),
            ("ann".to_owned(), None),
        ],
        "tokens after removing ann (first was {first})"
    );
    assert_eq!(must(store.user_by_name("ann").await, "user_by_name"), None);
    let names: Vec<String> = must(store.list_users().await, "list_users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["bob"], "the users left");
    for unknown in ["ann", "nobody", "a\0b"] {
        assert_eq!(
            must(store.remove_user(unknown, 10).await, "remove_user"),
            None,
            "removing {unknown:?}"
        );
    }
    let again = must(
        store.create_user(new_user("ann", "beta", "h")).await,
        "create_user",
    );
    assert!(again > ann, "a new ann gets a new id: {again} after {ann}");
}
