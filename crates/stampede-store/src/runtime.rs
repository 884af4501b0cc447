//! [`on_runtime`]: a store whose every operation runs on one tokio runtime, whichever runtime
//! calls it.
//!
//! A PostgreSQL connection of the pool is registered with the runtime that opened it; if that
//! runtime ends (a job's own current-thread runtime, say), the connection breaks for every
//! later user ("a Tokio 1.x context was found, but it is being shutdown"). A process that
//! calls the store from several runtimes wraps it once, with the handle of its long-lived
//! runtime, and all I/O stays there.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::runtime::Handle;

use crate::error::StoreError;
use crate::store::EventStore;
use crate::types::{
    Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, NewToken, NewUser, Seq,
    TokenId, TokenRecord, UserId, UserRecord,
};

/// `store`, with every operation run on the runtime behind `handle`.
pub fn on_runtime(store: Arc<dyn EventStore>, handle: Handle) -> Arc<dyn EventStore> {
    Arc::new(OnRuntime { store, handle })
}

struct OnRuntime {
    store: Arc<dyn EventStore>,
    handle: Handle,
}

impl OnRuntime {
    /// Runs `operation` on the store's runtime and waits for it from any runtime.
    fn run<'a, T, F>(&'a self, operation: F) -> BoxFuture<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn EventStore>) -> BoxFuture<'static, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let task = self.handle.spawn(operation(self.store.clone()));
        Box::pin(async move { task.await.map_err(|e| StoreError::Runtime(e.to_string()))? })
    }
}

impl EventStore for OnRuntime {
    fn create_job(&self, job: NewJob) -> BoxFuture<'_, Result<JobId, StoreError>> {
        self.run(move |s| Box::pin(async move { s.create_job(job).await }))
    }

    fn create_job_once<'a>(
        &'a self,
        key: &'a str,
        job: NewJob,
    ) -> BoxFuture<'a, Result<(JobId, bool), StoreError>> {
        let key = key.to_string();
        self.run(move |s| Box::pin(async move { s.create_job_once(&key, job).await }))
    }

    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobRecord>, StoreError>> {
        self.run(move |s| Box::pin(async move { s.job(id).await }))
    }

    fn list_jobs<'a>(
        &'a self,
        query: &'a JobQuery,
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        let query = query.clone();
        self.run(move |s| Box::pin(async move { s.list_jobs(&query).await }))
    }

    fn set_state<'a>(
        &'a self,
        id: JobId,
        from: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (from, to) = (from.map(str::to_string), to.to_string());
        self.run(move |s| Box::pin(async move { s.set_state(id, from.as_deref(), &to).await }))
    }

    fn append_state<'a>(
        &'a self,
        event: &'a NewEvent,
        state: &'a str,
    ) -> BoxFuture<'a, Result<Seq, StoreError>> {
        let (event, state) = (event.clone(), state.to_string());
        self.run(move |s| Box::pin(async move { s.append_state(&event, &state).await }))
    }

    fn append<'a>(&'a self, events: &'a [NewEvent]) -> BoxFuture<'a, Result<Vec<Seq>, StoreError>> {
        let events = events.to_vec();
        self.run(move |s| Box::pin(async move { s.append(&events).await }))
    }

    fn events<'a>(
        &'a self,
        query: &'a EventQuery,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        let query = query.clone();
        self.run(move |s| Box::pin(async move { s.events(&query).await }))
    }

    fn create_token(&self, token: NewToken) -> BoxFuture<'_, Result<TokenId, StoreError>> {
        self.run(move |s| Box::pin(async move { s.create_token(token).await }))
    }

    fn token_by_hash<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        let hash = hash.to_string();
        self.run(move |s| Box::pin(async move { s.token_by_hash(&hash).await }))
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        self.run(move |s| Box::pin(async move { s.list_tokens().await }))
    }

    fn revoke_token(&self, id: TokenId, at_us: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.run(move |s| Box::pin(async move { s.revoke_token(id, at_us).await }))
    }

    fn create_user(&self, user: NewUser) -> BoxFuture<'_, Result<UserId, StoreError>> {
        self.run(move |s| Box::pin(async move { s.create_user(user).await }))
    }

    fn user_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        let name = name.to_owned();
        self.run(move |s| Box::pin(async move { s.user_by_name(&name).await }))
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        self.run(move |s| Box::pin(async move { s.list_users().await }))
    }

    fn remove_user<'a>(
        &'a self,
        name: &'a str,
        at_us: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        let name = name.to_owned();
        self.run(move |s| Box::pin(async move { s.remove_user(&name, at_us).await }))
    }
}
