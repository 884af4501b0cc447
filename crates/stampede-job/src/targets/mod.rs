//! Target managers: where a test's targets come from. `list` gives the targets written in
//! the descriptor, `csv` reads hosts from a file (ConTest's CSVFileTargetManager),
//! `synthetic` mints N targets for load and scale tests. Targets are acquired once per test
//! attempt and always released; none of these managers holds anything to release, and
//! target locking across jobs is the job server's (one process runs one job here).

pub mod csv;

use stampede_api::job::Target;

use crate::access::Access;
use crate::descriptor::Targets;

/// How many synthetic targets are made between looks at whether the acquire was given up.
const MADE_AT_ONCE: u32 = 10_000;

/// The targets of one test attempt. `seed` orders a shuffled CSV selection; `access`
/// says where a CSV file is and whether the job may read it.
pub(crate) async fn acquire(
    targets: &Targets,
    seed: u64,
    access: &Access,
) -> Result<Vec<Target>, String> {
    match targets {
        Targets::List(list) => Ok(list.clone()),
        Targets::Synthetic(synthetic) => {
            let prefix = synthetic.prefix.as_deref().unwrap_or("target");
            let host = synthetic.host.as_deref().unwrap_or("127.0.0.1");
            let mut made = Vec::new();
            for n in 1..=synthetic.count {
                made.push(Target {
                    id: format!("{prefix}-{n}"),
                    host: host.to_string(),
                    url: synthetic.url.clone().unwrap_or_default(),
                    ..Target::default()
                });
                if n % MADE_AT_ONCE == 0 {
                    // Lets a cancel or the acquire timeout in.
                    tokio::task::yield_now().await;
                }
            }
            Ok(made)
        }
        Targets::Csv(spec) => {
            let file = access.path(&spec.file).map_err(|e| e.to_string())?;
            let text = tokio::fs::read_to_string(&file)
                .await
                .map_err(|e| format!("cannot read the targets file {}: {e}", spec.file))?;
            let hosts = csv::parse_hosts(&text, &spec.file)?;
            let selection = csv::Selection {
                min: spec.min.unwrap_or(1),
                max: spec.max.unwrap_or(usize::MAX),
                host_prefixes: spec.host_prefixes.clone(),
                shuffle: spec.shuffle,
            };
            csv::select(hosts, &selection, seed)
        }
    }
}

/// Gives the targets back. Nothing to do for the built-in managers.
pub(crate) async fn release(_: &Targets, _: &[Target]) -> Result<(), String> {
    Ok(())
}
