//! The user half of the conformance suite: users who log in with a name and a password.

use super::must;
use crate::{EventStore, NewUser, StoreError};

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
}
