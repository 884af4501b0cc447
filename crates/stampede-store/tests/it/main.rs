//! The store's integration tests: every conformance behaviour against every backend (one
//! test each, named `<backend>::<behaviour>`), plus what `open` does with URLs and files
//! and with stores written by earlier versions.
//!
//! PostgreSQL tests need `STAMPEDE_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each runs in a schema of its own. Without it
//! they print a notice and check nothing, or fail when `CI` is set.

mod fixture;
mod open;
mod upgrade;

use fixture::{Backend, run};
use stampede_store::conformance;

/// One `#[tokio::test]` per behaviour for one backend. `shared!` behaviours take the store
/// as an `Arc` (to hand it to spawned tasks). `reopen` lists the behaviours that also need
/// the store's URL (to open it again), which only durable backends run.
macro_rules! conformance_tests {
    ($module:ident, $backend:expr, reopen: [$($reopen:ident)*]) => {
        mod $module {
            use super::*;

            macro_rules! check {
                ($behaviour:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $behaviour() {
                        run($backend, async |store, _url| conformance::$behaviour(&**store).await).await;
                    }
                };
            }

            macro_rules! shared {
                ($behaviour:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $behaviour() {
                        run($backend, async |store, _url| conformance::$behaviour(store.clone()).await).await;
                    }
                };
            }

            check!(ids_increase);
            check!(job_round_trip);
            check!(text_with_nul_is_refused);
            check!(list_filters);
            check!(set_state_is_compare_and_set);
            check!(set_state_race_has_one_winner);
            check!(append_state_writes_the_event_and_the_column_together);
            check!(append_assigns_increasing_seqs);
            check!(append_is_atomic);
            check!(large_batches_span_statements);
            check!(events_query);
            check!(concurrent_appenders);
            check!(projects_scope_jobs);
            check!(create_job_once_is_idempotent);
            shared!(create_job_once_race_has_one_winner);
            check!(token_round_trip);
            check!(duplicate_tokens_are_refused);
            check!(revoke_token_once);
            check!(token_text_with_nul_is_refused);
            check!(user_round_trip_and_duplicates);
            check!(remove_user_revokes_its_tokens);

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $reopen() {
                    run($backend, async |store, url| conformance::$reopen(&**store, url).await).await;
                }
            )*
        }
    };
}

// `memory:` has nothing to reopen, so it skips the `reopen` behaviours (and only those).
conformance_tests!(memory, Backend::Memory, reopen: []);
conformance_tests!(sqlite, Backend::Sqlite, reopen: [
    reopen_reads_everything job_keys_survive_reopen tokens_survive_reopen
]);
conformance_tests!(postgres, Backend::Postgres, reopen: [
    reopen_reads_everything job_keys_survive_reopen tokens_survive_reopen
]);
