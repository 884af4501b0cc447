//! The step's update streams: each opened once, before the runs, and fanned out to the
//! runners by key with a [`Dispatcher`] (coder's `WorkspaceDispatcher`: a buffer per key,
//! unknown keys dropped, every buffer closed when the source ends, which a waiting
//! runner reads as "update stream closed").

use std::collections::{BTreeMap, HashMap};

use crate::{Ctx, DEFAULT_CAPACITY, Dispatcher, Format, Updates, decoded};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::Call;
use super::config::{ScaleConfig, StreamFormat};
use super::jsonpath::{self, JsonPath};
use super::runner::Plan;
use stampede_job::template::Template;

/// The open streams of one step; dropping them ends them.
pub(crate) struct Streams {
    open: Vec<Open>,
    /// Cancels the dispatchers (the token of the context they were opened with).
    stop: CancellationToken,
}

struct Open {
    name: String,
    dispatcher: Dispatcher<String, Value>,
    /// Each runner's key, by runner index.
    keys: Vec<String>,
    task: JoinHandle<()>,
}

fn render(template: &str, plan: &Plan, saved: &BTreeMap<String, String>) -> Result<String, String> {
    let template = Template::parse(template).map_err(|e| e.to_string())?;
    template
        .render(&plan.context(saved))
        .map_err(|e| e.to_string())
}

/// Opens every stream of `config`; `starting` holds each runner's starting values.
pub(crate) async fn open(
    config: &ScaleConfig,
    plan: &Plan,
    setup: &BTreeMap<String, String>,
    starting: &[BTreeMap<String, String>],
    ctx: &Ctx,
) -> Result<Streams, String> {
    // Built first, so that a stream failing to open ends those opened before it.
    let mut streams = Streams {
        open: Vec::new(),
        stop: ctx.token().clone(),
    };
    for (name, spec) in &config.streams {
        let at = |e: String| format!("stream {name:?}: {e}");
        let mut keys = Vec::with_capacity(starting.len());
        let mut owners: HashMap<String, usize> = HashMap::new();
        for (i, saved) in starting.iter().enumerate() {
            let key = render(&spec.runner_key, plan, saved).map_err(at)?;
            if let Some(other) = owners.insert(key.clone(), i) {
                return Err(at(format!(
                    "runners {other} and {i} both have the key {key:?}; make runner_key differ per runner, e.g. with {{{{ saved.id }}}}"
                )));
            }
            keys.push(key);
        }
        let headers = spec
            .headers
            .iter()
            .map(|(h, v)| Ok((h.clone(), render(v, plan, setup)?)))
            .collect::<Result<Vec<_>, String>>()
            .map_err(at)?;
        let url = render(&spec.url, plan, setup).map_err(at)?;
        plan.may_reach(&url).map_err(at)?;
        let body = Call::get(url, headers).stream().await.map_err(at)?;
        let format = match spec.format {
            StreamFormat::Sse => Format::Sse {
                event: spec.event.clone(),
            },
            StreamFormat::Ndjson => Format::Ndjson,
        };
        let key_path = JsonPath::parse(&spec.key).map_err(at)?;
        let dispatcher =
            Dispatcher::with_capacity(keys.clone(), spec.buffer.unwrap_or(DEFAULT_CAPACITY));
        let source = decoded::<Value, _, _, _>(body, format);
        let key_of =
            move |update: &Value| key_path.get(update).map(jsonpath::text).unwrap_or_default();
        let task = dispatcher
            .start(ctx.clone(), source, key_of)
            .map_err(|e| at(e.to_string()))?;
        streams.open.push(Open {
            name: name.clone(),
            dispatcher,
            keys,
            task,
        });
    }
    Ok(streams)
}

impl Streams {
    /// Runner `index`'s updates from every stream, by stream name.
    pub(crate) fn subscribe(
        &mut self,
        index: usize,
    ) -> Result<HashMap<String, Updates<Value>>, String> {
        self.open
            .iter()
            .map(|stream| {
                let updates = stream
                    .dispatcher
                    .subscribe(&stream.keys[index])
                    .map_err(|e| format!("stream {:?}: {e}", stream.name))?;
                Ok((stream.name.clone(), updates))
            })
            .collect()
    }

    /// Ends every stream and waits for its dispatcher to stop.
    pub(crate) async fn close(mut self) {
        self.stop.cancel();
        for stream in std::mem::take(&mut self.open) {
            let _ = stream.task.await;
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
