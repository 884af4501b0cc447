//! The in-memory store (`memory:`): for tests and one-off runs that need no history.
//!
//! One mutex guards everything; no lock is held across an await, and each operation is one
//! short critical section, which is also what makes appends atomic, sequence numbers
//! visible in order and idempotency keys create one job each. Like the SQL stores, an operation runs when its future is polled, not
//! when the method is called. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;

use crate::error::StoreError;
use crate::error::TokenClash;
use crate::store::{
    EventStore, check_events, check_job, check_job_once, check_states, check_token, check_user,
    storable_hash, storable_name,
};
use crate::types::{
    Event, EventQuery, JobId, JobQuery, JobRecord, NewEvent, NewJob, NewToken, NewUser, Seq,
    TokenId, TokenRecord, UserId, UserRecord,
};

/// Jobs and events kept in process memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Job `id` is at index `id - 1`.
    jobs: Vec<JobRecord>,
    /// The events of job `id`, at index `id - 1`, by sequence number ascending.
    events: Vec<Vec<Event>>,
    /// The last sequence number assigned.
    last_seq: Seq,
    /// The job created for each `(project, idempotency key)`.
    job_keys: HashMap<(String, String), JobId>,
    /// Token `id` is at index `id - 1`.
    tokens: Vec<TokenRecord>,
    /// The users, by id ascending (a removed user is gone, its id never used again).
    users: Vec<UserRecord>,
    /// The last user id assigned.
    last_user_id: UserId,
}

impl Inner {
    fn index(&self, id: JobId) -> Option<usize> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        (index < self.jobs.len()).then_some(index)
    }

    fn push_job(&mut self, job: NewJob) -> JobId {
        let id = self.jobs.len() as JobId + 1;
        self.jobs.push(JobRecord::new(id, job));
        self.events.push(Vec::new());
        id
    }
}

impl MemoryStore {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent before it can panic, so a
        // poisoned lock still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create_job_now(&self, job: NewJob) -> Result<JobId, StoreError> {
        check_job(&job)?;
        Ok(self.lock().push_job(job))
    }

    fn create_job_once_now(&self, key: &str, job: NewJob) -> Result<(JobId, bool), StoreError> {
        check_job_once(key, &job)?;
        let mut inner = self.lock();
        let entry = (job.project.clone(), key.to_owned());
        if let Some(&id) = inner.job_keys.get(&entry) {
            return Ok((id, false));
        }
        let id = inner.push_job(job);
        inner.job_keys.insert(entry, id);
        Ok((id, true))
    }

    fn list_jobs_now(&self, query: &JobQuery) -> Vec<JobRecord> {
        let inner = self.lock();
        let start = query
            .after_id
            .map_or(0, |after| usize::try_from(after).unwrap_or(usize::MAX));
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit as usize
        };
        inner
            .jobs
            .iter()
            .skip(start)
            .filter(|job| query.states.is_empty() || query.states.contains(&job.state))
            .filter(|job| query.tags.iter().all(|tag| job.tags.contains(tag)))
            .filter(|job| {
                query
                    .server_id
                    .as_ref()
                    .is_none_or(|id| *id == job.server_id)
            })
            .filter(|job| {
                query
                    .project
                    .as_ref()
                    .is_none_or(|project| *project == job.project)
            })
            .take(limit)
            .cloned()
            .collect()
    }

    fn set_state_now(&self, id: JobId, from: Option<&str>, to: &str) -> Result<bool, StoreError> {
        check_states(from, to)?;
        let mut inner = self.lock();
        let index = inner.index(id).ok_or(StoreError::NotFound(id))?;
        let job = &mut inner.jobs[index];
        if from.is_some_and(|from| from != job.state) {
            return Ok(false);
        }
        to.clone_into(&mut job.state);
        Ok(true)
    }

    fn append_now(&self, events: &[NewEvent]) -> Result<Vec<Seq>, StoreError> {
        check_events(events)?;
        let mut inner = self.lock();
        // Check every job first so that a bad batch writes nothing.
        let mut indexes = Vec::with_capacity(events.len());
        for event in events {
            indexes.push(
                inner
                    .index(event.job_id)
                    .ok_or(StoreError::NotFound(event.job_id))?,
            );
        }
        let mut seqs = Vec::with_capacity(events.len());
        for (event, index) in events.iter().zip(indexes) {
            inner.last_seq += 1;
            let seq = inner.last_seq;
            inner.events[index].push(Event::new(seq, event.clone()));
            seqs.push(seq);
        }
        Ok(seqs)
    }

    fn append_state_now(&self, event: &NewEvent, state: &str) -> Result<Seq, StoreError> {
        check_events(std::slice::from_ref(event))?;
        check_states(None, state)?;
        let mut inner = self.lock();
        let index = inner
            .index(event.job_id)
            .ok_or(StoreError::NotFound(event.job_id))?;
        inner.last_seq += 1;
        let seq = inner.last_seq;
        inner.events[index].push(Event::new(seq, event.clone()));
        state.clone_into(&mut inner.jobs[index].state);
        Ok(seq)
    }

    fn create_token_now(&self, token: NewToken) -> Result<TokenId, StoreError> {
        check_token(&token)?;
        let mut inner = self.lock();
        let clash = if inner.tokens.iter().any(|other| other.hash == token.hash) {
            Some(TokenClash::Hash)
        } else if inner
            .tokens
            .iter()
            .any(|other| other.name == token.name && other.revoked_at_us.is_none())
        {
            Some(TokenClash::Name)
        } else {
            None
        };
        if let Some(clash) = clash {
            return Err(StoreError::DuplicateToken {
                name: token.name,
                clash,
            });
        }
        let id = inner.tokens.len() as TokenId + 1;
        inner.tokens.push(TokenRecord::new(id, token));
        Ok(id)
    }

    fn revoke_token_now(&self, id: TokenId, at_us: i64) -> bool {
        let mut inner = self.lock();
        let token = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .and_then(|index| inner.tokens.get_mut(index));
        match token {
            Some(token) if token.revoked_at_us.is_none() => {
                token.revoked_at_us = Some(at_us);
                true
            }
            _ => false,
        }
    }

    fn events_now(&self, query: &EventQuery) -> Vec<Event> {
        let inner = self.lock();
        let Some(index) = inner.index(query.job_id) else {
            return Vec::new();
        };
        let events = &inner.events[index];
        let start = query
            .after_seq
            .map_or(0, |after| events.partition_point(|e| e.seq <= after));
        let limit = query.limit.map_or(usize::MAX, |limit| limit as usize);
        events[start..]
            .iter()
            .filter(|event| query.names.is_empty() || query.names.contains(&event.name))
            .take(limit)
            .cloned()
            .collect()
    }
}

impl EventStore for MemoryStore {
    fn create_job(&self, job: NewJob) -> BoxFuture<'_, Result<JobId, StoreError>> {
        Box::pin(async move { self.create_job_now(job) })
    }

    fn create_job_once<'a>(
        &'a self,
        key: &'a str,
        job: NewJob,
    ) -> BoxFuture<'a, Result<(JobId, bool), StoreError>> {
        Box::pin(async move { self.create_job_once_now(key, job) })
    }

    fn job(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobRecord>, StoreError>> {
        Box::pin(async move {
            let inner = self.lock();
            Ok(inner.index(id).map(|index| inner.jobs[index].clone()))
        })
    }

    fn list_jobs<'a>(
        &'a self,
        query: &'a JobQuery,
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move { Ok(self.list_jobs_now(query)) })
    }

    fn set_state<'a>(
        &'a self,
        id: JobId,
        from: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { self.set_state_now(id, from, to) })
    }

    fn append_state<'a>(
        &'a self,
        event: &'a NewEvent,
        state: &'a str,
    ) -> BoxFuture<'a, Result<Seq, StoreError>> {
        Box::pin(std::future::ready(self.append_state_now(event, state)))
    }

    fn append<'a>(&'a self, events: &'a [NewEvent]) -> BoxFuture<'a, Result<Vec<Seq>, StoreError>> {
        Box::pin(async move { self.append_now(events) })
    }

    fn events<'a>(
        &'a self,
        query: &'a EventQuery,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(async move { Ok(self.events_now(query)) })
    }

    fn create_token(&self, token: NewToken) -> BoxFuture<'_, Result<TokenId, StoreError>> {
        Box::pin(async move { self.create_token_now(token) })
    }

    fn token_by_hash<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        Box::pin(async move {
            if !storable_hash(hash) {
                return Ok(None);
            }
            let inner = self.lock();
            Ok(inner
                .tokens
                .iter()
                .find(|token| token.hash == hash)
                .cloned())
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        Box::pin(async move { Ok(self.lock().tokens.clone()) })
    }

    fn revoke_token(&self, id: TokenId, at_us: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.revoke_token_now(id, at_us)) })
    }

    fn create_user(&self, user: NewUser) -> BoxFuture<'_, Result<UserId, StoreError>> {
        Box::pin(async move {
            check_user(&user)?;
            let mut inner = self.lock();
            if inner.users.iter().any(|other| other.name == user.name) {
                return Err(StoreError::DuplicateUser { name: user.name });
            }
            inner.last_user_id += 1;
            let id = inner.last_user_id;
            inner.users.push(UserRecord::new(id, user));
            Ok(id)
        })
    }

    fn user_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Box::pin(async move {
            if !storable_name(name) {
                return Ok(None);
            }
            Ok(self.lock().users.iter().find(|u| u.name == name).cloned())
        })
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        Box::pin(async move { Ok(self.lock().users.clone()) })
    }

    fn remove_user<'a>(
        &'a self,
        name: &'a str,
        at_us: i64,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let mut inner = self.lock();
            let Some(index) = inner.users.iter().position(|u| u.name == name) else {
                return Ok(None);
            };
            inner.users.remove(index);
            let mut revoked = 0;
            for token in &mut inner.tokens {
                if token.user_name.as_deref() == Some(name) && token.revoked_at_us.is_none() {
                    token.revoked_at_us = Some(at_us);
                    revoked += 1;
                }
            }
            Ok(Some(revoked))
        })
    }
}
