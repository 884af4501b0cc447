//! The command line, declared once with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load, scale and robustness testing.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Diagnostic logs (on standard error) from this level up: error, warn, info, debug or
    /// trace; `RUST_LOG`, when set, wins.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub(crate) log_level: String,
    /// Diagnostic log lines as text or as JSON objects, one a line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How diagnostic log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-12-07T18:00:00Z  INFO stampede_server::jobs: job started job=1`.
    Text,
    /// `{"timestamp":...,"level":"INFO","fields":{"message":"job started","job":1},...}`.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ad-hoc load on one URL (no file needed).
    Quick(QuickArgs),
    /// Run a job (native or ConTest descriptor) locally, with live progress, a summary and
    /// reports; or resume a paused one.
    Run(RunArgs),
    /// Check a job descriptor: every problem, with its place in the file.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the native job descriptor.
    Schema,
    /// Start the built-in system under test and load it: a complete run on one machine.
    Demo(DemoArgs),
    /// Start the built-in system under test.
    Sut(SutArgs),
    /// Start the job server (REST API under /v1), or manage its tokens.
    Server(ServerArgs),
    /// Check a server and a token and remember them for `cloud` and `jobs`.
    Login(LoginArgs),
    /// Run a job on a server and follow it (k6 cloud style).
    #[command(subcommand)]
    Cloud(CloudCommand),
    /// Manage jobs on a server.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

/// Which server, with which token. Later wins: defaults < config file (`stampede login`) <
/// the descriptor's `cloud:` < STAMPEDE_SERVER / STAMPEDE_TOKEN / STAMPEDE_TIMEOUT < these
/// flags.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ConnArgs {
    /// The server's URL, e.g. http://127.0.0.1:6565.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// The API token.
    #[arg(long, global = true, value_name = "SECRET")]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Log in as this user for a new token (instead of --token); the password is read from
    /// STAMPEDE_PASSWORD, or else from the first line of standard input.
    #[arg(long, conflicts_with = "token")]
    pub(crate) user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CloudCommand {
    /// Submit a job, print its URL, follow its progress every 2 s; Ctrl-C cancels it.
    Run {
        /// The job descriptor (YAML or JSON; native or ConTest).
        file: PathBuf,
        #[command(flatten)]
        conn: ConnArgs,
        /// Write the final status as JSON to this file.
        #[arg(long, value_name = "PATH")]
        summary_json: Option<PathBuf>,
    },
    /// A job's status.
    Status {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job.
    Stop {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// List jobs.
    List {
        /// Only jobs in this state (repeatable: any of them).
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only jobs with this tag (repeatable: all of them).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A job's status, rebuilt from its events.
    Status {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A job's events.
    Events {
        /// The job's id.
        id: u64,
        /// Only events after this sequence number.
        #[arg(long)]
        after: Option<u64>,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a running job.
    Pause {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Resume a paused job.
    Resume {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Cancel a running job.
    Cancel {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Run a finished (or paused) job again as a new job.
    Retry {
        /// The job's id.
        id: u64,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Where the server keeps its jobs, events and tokens.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatabaseArg {
    /// sqlite://PATH (created on first use) or postgres://USER@HOST:PORT/DB.
    #[arg(long, default_value = "sqlite://stampede.db", value_name = "URL")]
    pub(crate) database: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ServerCommand>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6565")]
    pub(crate) addr: std::net::SocketAddr,
    #[command(flatten)]
    pub(crate) database: DatabaseArg,
    /// This server's id (default: the host name); it runs and resumes only its own jobs.
    #[arg(long)]
    pub(crate) server_id: Option<String>,
    /// An internal tag (`_name`) added to every job this server creates; it then recovers
    /// only jobs that carry it.
    #[arg(long)]
    pub(crate) instance_tag: Option<String>,
    /// How long a token from a login (`stampede login --user`) stays valid.
    #[arg(long, default_value = "30d", value_parser = parse_positive_duration)]
    pub(crate) login_token_ttl: std::time::Duration,
    /// Connections served at once; further ones wait to be accepted until one closes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,
    /// How long a request's head may take to arrive; also how long an idle keep-alive
    /// connection is kept open.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) header_read_timeout: std::time::Duration,
    /// Let every project's jobs do more than the default (no processes, no files outside
    /// the job's own directory, only the targets' hosts): `exec`, `files:/ABSOLUTE/DIR`,
    /// `net:HOST|ADDRESS|NETWORK|*`, or `all`; comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "GRANT", value_parser = parse_grant)]
    pub(crate) allow: Vec<stampede_job::policy::Grant>,
    /// The policy file: grants per project, limits, how processes start (see
    /// docs/server-security.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// Run the processes of jobs allowed `exec` as this user (the server must be able to
    /// switch to it); overrides the policy file's `processes.run_as`.
    #[arg(long, value_name = "USER")]
    pub(crate) run_as: Option<String>,
    /// Where jobs get their working directories (default: stampede-jobs-SERVER_ID in the
    /// system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) jobs_dir: Option<PathBuf>,
}

fn parse_grant(text: &str) -> Result<stampede_job::policy::Grant, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServerCommand {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Users, who log in with a name and a password (`stampede login --user`).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; the password is read from STAMPEDE_PASSWORD, or else from the first
    /// line of standard input.
    Create {
        /// The name the user logs in with.
        #[arg(long)]
        name: String,
        /// The project whose jobs the user's tokens see.
        #[arg(long, default_value = "default")]
        project: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List the users (never their passwords).
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Remove a user and revoke every token it got by logging in.
    Remove {
        /// The user's name (from `list`).
        name: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print its secret (shown once).
    Create {
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// The project whose jobs it sees.
        #[arg(long, default_value = "default")]
        project: String,
        /// Make it expire after this long (e.g. 90d); without it, it lasts until revoked.
        #[arg(long, value_parser = parse_positive_duration)]
        expires_in: Option<std::time::Duration>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List the tokens (never their secrets): id, name, project, state, expiry, user.
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id (from `list`).
        id: u64,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

/// How to load, for `quick`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// Open model: requests per second.
    #[arg(long, conflicts_with = "vus")]
    pub(crate) rate: Option<f64>,
    /// Closed model: virtual users, each sending again as soon as it has an answer (50 when
    /// neither --rate nor --vus is given).
    #[arg(long)]
    pub(crate) vus: Option<u64>,
    /// How long to send (10s, 1m30s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: std::time::Duration,
    /// Most requests in flight at once; a tick that finds them all busy is dropped and
    /// counted (default 1000 in the open model).
    #[arg(long)]
    pub(crate) max_in_flight: Option<u64>,
    /// Connections to open (default: --vus in the closed model, up to 100 in the open one).
    #[arg(long)]
    pub(crate) connections: Option<u64>,
    /// Engine threads (default: the CPUs this process may use).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub(crate) method: String,
    /// A request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    pub(crate) body: Option<String>,
    /// Speak HTTP/2 (h2c on http://, ALPN h2 on https://).
    #[arg(long)]
    pub(crate) http2: bool,
    /// Accept any TLS certificate.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Pass even when requests fail (by default any failed request fails the run, unless
    /// an `errors` threshold decides).
    #[arg(long)]
    pub(crate) allow_errors: bool,
    /// Per-request timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) timeout: std::time::Duration,
    /// An accepted status (repeatable; default 200-399).
    #[arg(long = "expect-status", value_name = "CODE")]
    pub(crate) expect_status: Vec<u16>,
    /// Text every response body must contain.
    #[arg(long)]
    pub(crate) body_contains: Option<String>,
    /// A threshold, 'METRIC: EXPR' (repeatable), e.g. 'latency: p(99)<50'. Metrics:
    /// latency, service_time, lag (ms), errors (rate), requests, dropped (count, rate).
    #[arg(long = "threshold", value_name = "METRIC: EXPR")]
    pub(crate) thresholds: Vec<String>,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Do not print progress every second.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

#[derive(Debug, Args)]
pub(crate) struct QuickArgs {
    /// The URL to load, e.g. http://127.0.0.1:8080/
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Requests per second.
    #[arg(long, default_value_t = 1000.0)]
    pub(crate) rate: f64,
    /// How long to send (10s, 1m30s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: std::time::Duration,
    /// Keep the demo job and its events in this store: sqlite://PATH or postgres://...
    #[arg(long, default_value = "sqlite://stampede.db", value_name = "URL")]
    pub(crate) store: String,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Do not print progress every second.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The job descriptor (YAML or JSON; native or ConTest v1.0).
    #[arg(required_unless_present = "resume")]
    pub(crate) file: Option<PathBuf>,
    /// Keep the job and its events in this store: sqlite://PATH or postgres://... (default:
    /// in memory). With a store, SIGINT or SIGTERM pauses the job instead of cancelling it.
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// Resume this paused job from --store (no FILE: the stored descriptor is used).
    #[arg(
        long,
        value_name = "JOB_ID",
        requires = "store",
        conflicts_with = "file"
    )]
    pub(crate) resume: Option<u64>,
    /// Write the summary (job state, runs, reports, every load step) as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Write a JUnit XML report (one testcase per target per step); with several runs,
    /// `-runN` goes before the extension.
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// Do not print progress every second.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Stream the run to a job server as a test run: `cloud`, or `cloud=NAME` to name it
    /// (default: the job's name). The server and token come from `stampede login`, the
    /// descriptor's `cloud:`, STAMPEDE_SERVER / STAMPEDE_TOKEN, or --server / --token.
    #[arg(long, value_name = "cloud[=NAME]")]
    pub(crate) out: Option<String>,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The job descriptor (YAML or JSON; native or ConTest v1.0).
    pub(crate) file: PathBuf,
    /// Also check it as a job server with this policy file would, for `--project`: what it
    /// would refuse (403), and the grant that allows it.
    #[arg(long, value_name = "FILE")]
    pub(crate) server_policy: Option<PathBuf>,
    /// The project the job would be submitted for, with --server-policy.
    #[arg(long, default_value = "default", requires = "server_policy")]
    pub(crate) project: String,
}

#[derive(Debug, Args)]
pub(crate) struct SutArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: String,
    /// Stall the whole server every DURATION...
    #[arg(long, value_parser = parse_duration, requires = "stall_for")]
    pub(crate) stall_every: Option<std::time::Duration>,
    /// ...for DURATION: requests are held and answered when the stall ends.
    #[arg(long, value_parser = parse_duration, requires = "stall_every")]
    pub(crate) stall_for: Option<std::time::Duration>,
    /// Serve HTTPS with a self-signed certificate.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Server threads (default: the CPUs this process may use).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
    /// Workspace service (`/ws/`): builds that run at once (the provisioner pool).
    #[arg(long, default_value_t = 4)]
    pub(crate) ws_provisioners: usize,
    /// Workspace service: how long each build runs once a provisioner takes it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) ws_build_time: std::time::Duration,
    /// Workspace service: share of builds that fail, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) ws_failure_rate: f64,
    /// Workspace service: seed of the random numbers that pick failed builds.
    #[arg(long, default_value_t = 0)]
    pub(crate) ws_seed: u64,
    /// Serve the multi-client snapshot store under `/snap` from this data directory
    /// (acknowledged snapshots survive a kill -9 and restart on the same directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) snap_dir: Option<std::path::PathBuf>,
    /// Snapshot store: the secret its admin calls (authorize, remove a client, GC) need.
    #[arg(long, requires = "snap_dir", value_name = "SECRET")]
    pub(crate) snap_admin_token: Option<String>,
    /// Snapshot store: deliberate bugs for testing checkers, comma-separated:
    /// drop-file, flip-byte, lose-last-write.
    #[arg(long, requires = "snap_dir", value_name = "BUGS")]
    pub(crate) snap_bugs: Option<String>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    stampede_job::parse_duration(text)
}

/// A duration that is not zero (a token that expires at once, or a timeout of nothing).
fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "{text:?} is zero; give a length such as 30s or 30d"
        ));
    }
    Ok(duration)
}
