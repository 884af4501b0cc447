//! Writes a job's events with a fixed header (job, run, test, attempt, step, target), and
//! reads back what a step recorded earlier. The runner and the steps share it; it knows
//! neither.

use std::sync::Arc;

use stampede_api::job::JobState;
use stampede_core::Clock;
use stampede_store::{EventQuery, EventStore, JobId, NewEvent, StoreError};

/// Writes events with a fixed header (job, run, test, attempt, step, target).
#[derive(Clone)]
pub struct Emitter {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    header: NewEvent,
}

impl Emitter {
    pub(crate) fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>, job_id: JobId) -> Emitter {
        Emitter {
            store,
            clock,
            header: NewEvent {
                job_id,
                ..NewEvent::default()
            },
        }
    }

    pub(crate) fn in_run(&self, run: u32) -> Emitter {
        let mut e = self.clone();
        e.header.run = Some(run);
        e
    }

    pub(crate) fn in_test(&self, test: &str, attempt: u32) -> Emitter {
        let mut e = self.clone();
        e.header.test = Some(test.to_string());
        e.header.attempt = Some(attempt);
        e
    }

    pub(crate) fn at(&self, step: Option<&str>, target: Option<&str>) -> Emitter {
        let mut e = self.clone();
        e.header.step = step.map(str::to_string);
        e.header.target = target.map(str::to_string);
        e
    }

    /// The clock events are stamped with.
    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Appends one event with this header; returns when it is durable.
    pub async fn emit(
        &self,
        name: &str,
        payload: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let event = self.event(name, payload);
        self.store.append(std::slice::from_ref(&event)).await?;
        Ok(())
    }

    /// The payloads of this test's, step's and target's events named `name`, from every run
    /// and attempt of the job, in the order they were written: what a step recorded in an
    /// earlier run, or before the job was paused or its process killed.
    pub async fn earlier(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let query = EventQuery {
            job_id: self.header.job_id,
            names: vec![name.to_string()],
            ..EventQuery::default()
        };
        let events = self.store.events(&query).await?;
        let h = &self.header;
        Ok(events
            .into_iter()
            .filter(|e| e.test == h.test && e.step == h.step && e.target == h.target)
            .filter_map(|e| e.payload)
            .collect())
    }

    /// Records a job state: its event and the job's state column, in one transaction.
    pub(crate) async fn state(
        &self,
        state: JobState,
        payload: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let event = self.event(state.event(), payload);
        self.store.append_state(&event, state.name()).await?;
        Ok(())
    }

    fn event(&self, name: &str, payload: Option<serde_json::Value>) -> NewEvent {
        NewEvent {
            name: name.to_string(),
            payload: payload.map(|p| p.to_string()),
            emitted_at_us: self.clock.now_us(),
            ..self.header.clone()
        }
    }
}
