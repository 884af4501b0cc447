//! A job server's policy: what each project's jobs may do on the server ([`Grants`]), how
//! big a job may be ([`Limits`]), and how allowed processes start. Read from the flags
//! (`--allow exec,files:/srv/data,net:10.0.0.0/8`) and a policy file:
//!
//! ```yaml
//! allow: ["net:10.0.0.0/8"]          # every project
//! projects:
//!   teamb:
//!     allow: [exec, "files:/srv/stampede/data", "net:*"]
//!     jobs_running: 2
//! limits: {targets_per_test: 10000, steps_per_test: 100, runs: 1000, requests_per_second: 50000,
//!          connections: 10000, jobs_running: 16, jobs_running_per_project: 8}
//! processes: {run_as: stampede-jobs, memory_mib: 2048, open_files: 1024, timeout: 1h}
//! ```
//!
//! With neither, a project's jobs start no processes, touch no file outside their own
//! working directory, and reach only their targets' hosts. [`Policy::check`] says what a
//! job would need beyond its project's grants, each at its path in the descriptor, with the
//! grant that allows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use stampede_api::job::Target;

use crate::access::{Access, NetRule, Processes, RunAs, host_of};
use crate::descriptor::{Job, Targets};
use crate::step::{Capability, UseKind};

/// One grant, as written after `--allow` or in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Start processes (`exec`).
    Exec,
    /// Read and write under a folder (`files:/srv/data`).
    Files(PathBuf),
    /// Reach a host or network (`net:10.0.0.0/8`, `net:api.internal`, `net:*`).
    Net(NetRule),
    /// Everything (`all`): a server for one trusted team.
    All,
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(text: &str) -> Result<Grant, String> {
        let text = text.trim();
        match text.split_once(':') {
            None if text == "exec" => Ok(Grant::Exec),
            None if text == "all" => Ok(Grant::All),
            Some(("files", dir)) => {
                let dir = Path::new(dir);
                if !dir.is_absolute() || dir.components().any(|c| c.as_os_str() == "..") {
                    return Err(format!(
                        "files:{}: give an absolute folder without `..`",
                        dir.display()
                    ));
                }
                Ok(Grant::Files(dir.to_path_buf()))
            }
            Some(("net", rule)) => rule.parse().map(Grant::Net),
            _ => Err(format!(
                "{text:?} is not a grant: write exec, files:/ABSOLUTE/DIR, net:HOST|ADDRESS|NETWORK|* or all"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Grant, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What one project's jobs may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// They may start processes.
    pub exec: bool,
    /// Folders they may read and write (beyond their own working directory).
    pub files: Vec<PathBuf>,
    /// Hosts and networks they may reach (beyond their targets).
    pub net: Vec<NetRule>,
}

impl Grants {
    /// Adds a grant.
    pub fn add(&mut self, grant: &Grant) {
        match grant {
            Grant::Exec => self.exec = true,
            Grant::Files(dir) => self.files.push(dir.clone()),
            Grant::Net(rule) => self.net.push(rule.clone()),
            Grant::All => {
                self.exec = true;
                self.files.push(PathBuf::from("/"));
                self.net.push(NetRule::Any);
            }
        }
    }

    /// What a job with these grants may touch, in `dir` (`None` before it has one).
    pub fn access(&self, dir: Option<PathBuf>, processes: &Processes) -> Access {
        Access::confined(
            dir,
            self.files.clone(),
            self.net.clone(),
            self.exec.then(|| processes.clone()),
        )
    }
}

/// How big a job may be, and how many run at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Targets per test (a list's length, a synthetic count, a CSV's `max`).
    pub targets_per_test: u64,
    /// Steps per test.
    pub steps_per_test: usize,
    /// Runs per job (and `runs: 0`, until cancelled, is refused).
    pub runs: u32,
    /// Requests per second one step may schedule on one target.
    pub requests_per_second: f64,
    /// Connections (or virtual users) one step may open on one target.
    pub connections: u64,
    /// Jobs running at once on this server; more wait, queued.
    pub jobs_running: usize,
    /// Jobs waiting at once; a submission beyond is answered 429.
    pub jobs_queued: usize,
    /// Tests per job.
    pub tests_per_job: usize,
    /// Retries per test.
    pub retries: u32,
    /// Jobs of one project running at once.
    pub jobs_running_per_project: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            targets_per_test: 10_000,
            steps_per_test: 100,
            runs: 1_000,
            requests_per_second: 50_000.0,
            connections: 10_000,
            jobs_running: 16,
            jobs_queued: 1_000,
            tests_per_job: 100,
            retries: 10,
            jobs_running_per_project: 8,
        }
    }
}

/// How allowed processes start, as written in the policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessPolicy {
    /// The user they run as.
    pub run_as: Option<String>,
    /// Their address space, in MiB.
    pub memory_mib: Option<u64>,
    /// Open files each.
    pub open_files: Option<u64>,
    /// The longest one may run.
    #[serde(deserialize_with = "crate::duration::option")]
    pub timeout: Option<Duration>,
    /// Keep stampede's environment (`false`, the default: only what the job sets).
    pub inherit_env: bool,
}

/// One project's entry in the policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectPolicy {
    /// Its grants, beyond those of every project.
    pub allow: Vec<Grant>,
    /// Its jobs running at once (default: the server's `jobs_running_per_project`).
    pub jobs_running: Option<usize>,
}

/// A job server's policy. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Grants of every project.
    pub allow: Vec<Grant>,
    /// Each project's own.
    pub projects: BTreeMap<String, ProjectPolicy>,
    /// Sizes and concurrency.
    pub limits: Limits,
    /// How allowed processes start.
    pub processes: ProcessPolicy,
}

/// Something a job needs that its project is not granted, or a size over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where in the descriptor (`tests[0].steps[1].exec`).
    pub at: String,
    /// What it needs and why it is refused.
    pub message: String,
    /// The grant that would allow it (`exec`, `files:/srv`), or `None` for a limit.
    pub grant: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.grant {
            Some(grant) => write!(
                f,
                "{}: {} (needs the grant `{grant}`)",
                self.at, self.message
            ),
            None => write!(
                f,
                "{}: {} (a limit of the server's policy)",
                self.at, self.message
            ),
        }
    }
}

/// What an admin does to let `project` run a job refused for `refusals`.
pub fn how_to_allow(project: &str, refusals: &[Refusal]) -> String {
    let mut grants: Vec<&str> = refusals.iter().filter_map(|r| r.grant.as_deref()).collect();
    grants.sort_unstable();
    grants.dedup();
    let mut advice = Vec::new();
    if !grants.is_empty() {
        advice.push(format!(
            "an admin grants it with `stampede server --allow {}` (every project) or under `projects: {{{project}: {{allow: [{}]}}}}` in the server's policy file (--policy)",
            grants.join(","),
            grants.join(", ")
        ));
    }
    if refusals.iter().any(|r| r.grant.is_none()) {
        advice.push(
            "make the job smaller, or raise `limits:` in the server's policy file".to_string(),
        );
    }
    advice.join("; ")
}

impl Policy {
    /// Reads a policy file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the policy file {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("policy file {}: {e}", path.display()))
    }

    /// Reads a policy from text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        if text.trim().is_empty() {
            return Ok(Policy::default());
        }
        let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let policy: Policy = serde_path_to_error::deserialize(value).map_err(|e| {
            let at = e.path().to_string();
            format!("{at}: {}", e.into_inner())
        })?;
        let at_least_one = [
            ("limits.jobs_running", policy.limits.jobs_running),
            (
                "limits.jobs_running_per_project",
                policy.limits.jobs_running_per_project,
            ),
        ];
        let projects = policy
            .projects
            .iter()
            .filter_map(|(name, p)| Some((name, p.jobs_running?)));
        let none_would_run = at_least_one
            .iter()
            .map(|(at, n)| (at.to_string(), *n))
            .chain(projects.map(|(name, n)| (format!("projects.{name}.jobs_running"), n)))
            .find(|(_, n)| *n == 0);
        if let Some((at, _)) = none_would_run {
            return Err(format!(
                "{at}: must be at least 1 (0 would queue the jobs for good)"
            ));
        }
        Ok(policy)
    }

    /// What `project`'s jobs may do.
    pub fn grants(&self, project: &str) -> Grants {
        let mut grants = Grants::default();
        let own = self.projects.get(project).map(|p| p.allow.as_slice());
        for grant in self.allow.iter().chain(own.into_iter().flatten()) {
            grants.add(grant);
        }
        grants
    }

    /// How many of `project`'s jobs may run at once.
    pub fn jobs_running(&self, project: &str) -> usize {
        self.projects
            .get(project)
            .and_then(|p| p.jobs_running)
            .unwrap_or(self.limits.jobs_running_per_project)
    }

    /// How allowed processes start (looking up the `run_as` user).
    pub fn processes(&self) -> Result<Processes, String> {
        let rules = &self.processes;
        Ok(Processes {
            run_as: rules.run_as.as_deref().map(RunAs::lookup).transpose()?,
            clean_env: !rules.inherit_env,
            memory: rules.memory_mib.map(|m| m.saturating_mul(1024 * 1024)),
            open_files: rules.open_files,
            timeout: rules.timeout,
        })
    }

    /// What `job` needs beyond `project`'s grants and this policy's limits; empty when it
    /// may run. Paths and hosts written with templates are checked when the job runs.
    pub fn check(&self, job: &Job, project: &str) -> Vec<Refusal> {
        let grants = self.grants(project);
        let access = grants.access(None, &Processes::default());
        let mut refusals = Vec::new();
        let limits = &self.limits;
        if job.runs == 0 || job.runs > limits.runs {
            refusals.push(limit(
                "runs",
                format!(
                    "{} runs: a job on this server runs 1 to {} times",
                    job.runs, limits.runs
                ),
            ));
        }
        if job.tests.len() > limits.tests_per_job {
            refusals.push(limit(
                "tests",
                format!(
                    "{} tests: a job on this server has at most {}",
                    job.tests.len(),
                    limits.tests_per_job
                ),
            ));
        }
        for (i, test) in job.tests.iter().enumerate() {
            let at = format!("tests[{i}]");
            if test.retries > limits.retries {
                refusals.push(limit(
                    format!("{at}.retries"),
                    format!(
                        "{} retries: a test on this server is retried at most {} times",
                        test.retries, limits.retries
                    ),
                ));
            }
            if test.steps.len() > limits.steps_per_test {
                refusals.push(limit(
                    format!("{at}.steps"),
                    format!(
                        "{} steps: a test on this server has at most {}",
                        test.steps.len(),
                        limits.steps_per_test
                    ),
                ));
            }
            if let Some(count) = most_targets(&test.targets)
                && count > limits.targets_per_test
            {
                refusals.push(limit(
                    format!("{at}.targets"),
                    format!(
                        "{count} targets: a test on this server has at most {} (a CSV source needs a `max`)",
                        limits.targets_per_test
                    ),
                ));
            }
            if let Targets::Csv(csv) = &test.targets {
                refusals.extend(path_refusal(
                    &access,
                    &format!("{at}.targets.csv.file"),
                    &csv.file,
                ));
            }
            let hosts = known_hosts(&test.targets);
            for (j, step) in test.steps.iter().enumerate().filter(|(_, s)| !s.disabled) {
                let at = format!("{at}.steps[{j}].{}", step.plugin.key());
                if step.plugin.needs().contains(&Capability::RunProcesses) && !grants.exec {
                    refusals.push(Refusal {
                        at: at.clone(),
                        message: format!(
                            "the `{}` step starts processes on the server",
                            step.plugin.key()
                        ),
                        grant: Some("exec".into()),
                    });
                }
                let demand = step.plugin.demand(&step.config);
                if demand.requests_per_second > limits.requests_per_second {
                    refusals.push(limit(
                        at.clone(),
                        format!(
                            "{} requests per second: a step on this server schedules at most {}",
                            demand.requests_per_second, limits.requests_per_second
                        ),
                    ));
                }
                if demand.connections > limits.connections {
                    refusals.push(limit(
                        at.clone(),
                        format!(
                            "{} connections: a step on this server opens at most {}",
                            demand.connections, limits.connections
                        ),
                    ));
                }
                for used in step.plugin.uses(&step.config) {
                    if used.name.contains("{{") {
                        continue;
                    }
                    let at = crate::step::join(&at, &used.at);
                    match used.kind {
                        UseKind::Read | UseKind::Write => {
                            refusals.extend(path_refusal(&access, &at, &used.name));
                        }
                        UseKind::Connect => {
                            let Some(hosts) = &hosts else { continue };
                            let host = host_of(&used.name);
                            let is_target =
                                hosts.iter().any(|t| access.connect(host, Some(t)).is_ok());
                            if !is_target && let Err(refused) = access.connect(host, None) {
                                refusals.push(Refusal {
                                    at,
                                    message: refused.message,
                                    grant: Some(refused.grant),
                                });
                            }
                        }
                    }
                }
            }
        }
        let reporters = [
            ("run_reporters", &job.run_reporters),
            ("final_reporters", &job.final_reporters),
        ];
        for (list, specs) in reporters {
            for (k, spec) in specs.iter().enumerate() {
                for used in spec.uses() {
                    let at = format!("reporting.{list}[{k}].{}", used.at);
                    refusals.extend(path_refusal(&access, &at, &used.name));
                }
            }
        }
        refusals
    }
}

fn limit(at: impl Into<String>, message: String) -> Refusal {
    Refusal {
        at: at.into(),
        message,
        grant: None,
    }
}

fn path_refusal(access: &Access, at: &str, path: &str) -> Option<Refusal> {
    if path.contains("{{") {
        return None;
    }
    access.admits_path(path).err().map(|refused| Refusal {
        at: at.to_string(),
        message: refused.message,
        grant: Some(refused.grant),
    })
}

/// The most targets `targets` can give, when known before acquiring them.
fn most_targets(targets: &Targets) -> Option<u64> {
    match targets {
        Targets::List(list) => Some(list.len() as u64),
        Targets::Synthetic(synthetic) => Some(u64::from(synthetic.count)),
        Targets::Csv(csv) => Some(csv.max.map_or(u64::MAX, |m| m as u64)),
    }
}

/// The most distinct target hosts a submission is checked against (names may be resolved);
/// beyond, hosts are checked per target when the job runs.
const MOST_KNOWN_HOSTS: usize = 64;

/// Targets whose hosts are known before acquiring them (`None` for a CSV file's, or too
/// many to look up): a host among them may be reached.
fn known_hosts(targets: &Targets) -> Option<Vec<Target>> {
    match targets {
        Targets::List(list) => {
            let mut seen = std::collections::BTreeSet::new();
            let distinct: Vec<Target> = list
                .iter()
                .filter(|t| seen.insert((t.host.clone(), t.id.clone(), t.url.clone())))
                .cloned()
                .collect();
            (distinct.len() <= MOST_KNOWN_HOSTS).then_some(distinct)
        }
        Targets::Synthetic(synthetic) => Some(vec![Target {
            id: synthetic.prefix.clone().unwrap_or_default(),
            host: synthetic.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
            url: synthetic.url.clone().unwrap_or_default(),
            ..Target::default()
        }]),
        Targets::Csv(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::steps;

    fn registry() -> Registry {
        Registry::new()
            .with(steps::Echo)
            .with(steps::Exec)
            .with(steps::WaitPort)
    }

    fn check(policy: &Policy, project: &str, yaml: &str) -> Vec<Refusal> {
        let access = policy.grants(project).access(None, &Processes::default());
        let job = Job::parse_in(yaml, "j.yaml", &access, &registry()).unwrap();
        policy.check(&job, project)
    }

    const EXEC: &str = "name: j\ntests: [{name: t, steps: [{name: s, exec: {command: id}}]}]\n";

    #[test]
    fn a_new_server_refuses_processes_and_says_how_to_grant_them() {
        let refusals = check(&Policy::default(), "teamb", EXEC);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].at, "tests[0].steps[0].exec");
        assert_eq!(refusals[0].grant.as_deref(), Some("exec"));
        let advice = how_to_allow("teamb", &refusals);
        assert!(advice.contains("--allow exec"), "{advice}");
        assert!(
            advice.contains("projects: {teamb: {allow: [exec]}}"),
            "{advice}"
        );
    }

    #[test]
    fn grants_are_per_project_and_add_to_everyones() {
        let policy = Policy::parse(
            "allow: [\"net:10.0.0.0/8\"]\nprojects:\n  teamb: {allow: [exec, \"files:/srv/data\"]}\n",
        )
        .unwrap();
        assert!(check(&policy, "teamb", EXEC).is_empty());
        assert_eq!(check(&policy, "teama", EXEC).len(), 1);
        let grants = policy.grants("teamb");
        assert!(grants.exec);
        assert_eq!(grants.files, [PathBuf::from("/srv/data")]);
        assert_eq!(grants.net, ["10.0.0.0/8".parse::<NetRule>().unwrap()]);
    }

    #[test]
    fn paths_outside_the_job_and_its_grants_are_refused_where_they_are_written() {
        let yaml = "name: j
tests:
  - name: t
    targets: {csv: {file: ../../../../etc/passwd, max: 5}}
    steps: [{name: s, echo: {text: hi}}]
reporting:
  final_reporters: [{junit: {path: /any/where.xml}}, {json: {path: out/status.json}}]
";
        let refusals = check(&Policy::default(), "default", yaml);
        let at: Vec<_> = refusals.iter().map(|r| r.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "tests[0].targets.csv.file",
                "reporting.final_reporters[0].junit.path"
            ],
            "a relative path inside the job's directory is fine: {refusals:?}"
        );
        assert_eq!(refusals[1].grant.as_deref(), Some("files:/any"));
        let granted = Policy::parse("allow: [\"files:/any\"]").unwrap();
        assert_eq!(check(&granted, "default", yaml).len(), 1);
    }

    #[test]
    fn hosts_must_be_targets_or_granted() {
        let yaml = "name: j
tests:
  - name: t
    targets: {list: [{id: web, host: 10.1.2.3}]}
    steps:
      - {name: a, wait_port: {host: 10.1.2.3, port: 8080}}
      - {name: b, wait_port: {host: 169.254.169.254, port: 80}}
      - {name: c, wait_port: {host: '{{ target.host }}', port: 22}}
";
        let refusals = check(&Policy::default(), "default", yaml);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].at, "tests[0].steps[1].wait_port.host");
        assert_eq!(refusals[0].grant.as_deref(), Some("net:169.254.169.254"));
        let granted = Policy::parse("allow: [\"net:169.254.0.0/16\"]").unwrap();
        assert!(check(&granted, "default", yaml).is_empty());
    }

    #[test]
    fn sizes_beyond_the_limits_are_refused() {
        let yaml = "name: j\nruns: 0\ntests: [{name: t, retries: {count: 11}, targets: {synthetic: {count: 1000000000}}, steps: [{name: s, echo: {text: hi}}]}]\n";
        let refusals = check(&Policy::default(), "default", yaml);
        let at: Vec<_> = refusals.iter().map(|r| r.at.as_str()).collect();
        assert_eq!(at, ["runs", "tests[0].retries", "tests[0].targets"]);
        assert!(refusals.iter().all(|r| r.grant.is_none()));
        assert!(
            refusals[2].message.contains("1000000000 targets"),
            "{refusals:?}"
        );
    }

    #[test]
    fn a_policy_file_with_a_mistake_says_where() {
        let wrong = Policy::parse("projects:\n  teamb: {allow: [shell]}\n").unwrap_err();
        assert!(wrong.starts_with("projects.teamb.allow[0]"), "{wrong}");
        assert!(wrong.contains("not a grant"), "{wrong}");
        let unknown = Policy::parse("limits: {targets: 5}\n").unwrap_err();
        assert!(unknown.contains("unknown field"), "{unknown}");
        assert!(Policy::parse("allow: [\"files:relative/dir\"]").is_err());
        let none = Policy::parse("projects: {teamb: {jobs_running: 0}}").unwrap_err();
        assert!(
            none.starts_with("projects.teamb.jobs_running: must be at least 1"),
            "{none}"
        );
        assert_eq!(Policy::parse("").unwrap(), Policy::default());
    }
}
