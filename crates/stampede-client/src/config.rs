//! Where the client's settings come from, and which wins.
//!
//! k6's cloud config is consolidated in layers, later wins: defaults < config file <
//! descriptor options < environment < flags (seeds-spec §3.3). Each layer is a
//! [`PartialConfig`] whose unset fields let the earlier layers show through; the result is
//! one [`ClientConfig`] with every field set and checked. A bad value is reported with the
//! layer it came from, so the user knows what to edit.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The server the client talks to when no layer names one (`stampede server`'s address).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6565";
/// How long one attempt may take when no layer says.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many attempts a call makes when no layer says (k6's `MaxRetries`).
pub(crate) const DEFAULT_ATTEMPTS: u32 = 3;
/// The pause between attempts when no layer says (k6's `RetryInterval`).
pub(crate) const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "STAMPEDE_CONFIG";
/// The environment variable for [`ClientConfig::server`].
pub const SERVER_ENV: &str = "STAMPEDE_SERVER";
/// The environment variable for [`ClientConfig::token`].
pub const TOKEN_ENV: &str = "STAMPEDE_TOKEN";
/// The environment variable for [`ClientConfig::timeout`].
pub const TIMEOUT_ENV: &str = "STAMPEDE_TIMEOUT";

/// The client's settings, every one decided.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's base URL, `http://HOST:PORT` (a path prefix is kept).
    pub server: String,
    /// The API token, sent as `Authorization: Token TOKEN` on every call.
    pub token: Option<String>,
    /// How long one attempt (connect, send, read the answer) may take.
    pub timeout: Duration,
    /// How many attempts a call makes at most (at least 1).
    pub attempts: u32,
    /// The pause between two attempts.
    pub retry_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            server: DEFAULT_SERVER.to_string(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            retry_interval: DEFAULT_RETRY_INTERVAL,
        }
    }
}

/// The token never shows in logs or panics.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("retry_interval", &self.retry_interval)
            .finish()
    }
}

/// One layer of settings: what the config file, the descriptor's options, the environment
/// or the flags say; an unset field leaves the earlier layers' value.
///
/// As JSON (the config file): `{"server": "http://jobs:6565", "token": "...", "timeout":
/// "30s", "attempts": 3, "retry_interval": "500ms"}`, every key optional.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialConfig {
    /// The server's base URL, `http://HOST:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How long one attempt may take, like `30s`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub timeout: Option<Duration>,
    /// How many attempts a call makes at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The pause between two attempts, like `500ms`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub retry_interval: Option<Duration>,
}

impl fmt::Debug for PartialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("retry_interval", &self.retry_interval)
            .finish()
    }
}

impl PartialConfig {
    /// This layer with `over`'s set fields on top (what `stampede login` does before it
    /// saves the file).
    pub fn merge(self, over: PartialConfig) -> PartialConfig {
        PartialConfig {
            server: over.server.or(self.server),
            token: over.token.or(self.token),
            timeout: over.timeout.or(self.timeout),
            attempts: over.attempts.or(self.attempts),
            retry_interval: over.retry_interval.or(self.retry_interval),
        }
    }

    /// The environment layer: `STAMPEDE_SERVER`, `STAMPEDE_TOKEN`, `STAMPEDE_TIMEOUT`. An
    /// empty variable counts as unset.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<PartialConfig, ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let timeout = var(TIMEOUT_ENV)
            .map(|text| {
                parse_duration(&text).map_err(|reason| ConfigError::Invalid {
                    layer: Some(Layer::Env),
                    field: "timeout",
                    value: text,
                    reason,
                })
            })
            .transpose()?;
        Ok(PartialConfig {
            server: var(SERVER_ENV),
            token: var(TOKEN_ENV),
            timeout,
            ..PartialConfig::default()
        })
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The built-in default.
    Default,
    /// The config file (`stampede login` writes it).
    File,
    /// The job descriptor's options.
    Descriptor,
    /// A `STAMPEDE_*` environment variable.
    Env,
    /// A command-line flag.
    Flags,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Default => "the default",
            Layer::File => "the config file",
            Layer::Descriptor => "the descriptor's options",
            Layer::Env => "the environment",
            Layer::Flags => "the command line",
        })
    }
}

/// Why the settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is wrong: which, where it came from, and why.
    #[error("{}", invalid_text(*.layer, .field, .value, .reason))]
    Invalid {
        /// The layer that set it (`None`: a [`ClientConfig`] built by hand).
        layer: Option<Layer>,
        /// The field: `server`, `token`, `timeout`, `attempts`, `retry_interval`.
        field: &'static str,
        /// The value as given (a token is not repeated).
        value: String,
        /// What is wrong with it and what to write instead.
        reason: String,
    },
    /// The config file exists but cannot be read or parsed.
    #[error("cannot read the config file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// The config file cannot be written.
    #[error("cannot write the config file {}: {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

fn invalid_text(layer: Option<Layer>, field: &str, value: &str, reason: &str) -> String {
    match layer {
        Some(Layer::Env) => format!("{}={value:?}: {reason}", env_name(field)),
        Some(layer) => format!("{field} {value:?} (from {layer}): {reason}"),
        None => format!("{field} {value:?}: {reason}"),
    }
}

fn env_name(field: &str) -> &str {
    match field {
        "server" => SERVER_ENV,
        "token" => TOKEN_ENV,
        "timeout" => TIMEOUT_ENV,
        other => other,
    }
}

impl ClientConfig {
    /// Consolidates the layers, later wins: defaults < `file` < `descriptor` < environment
    /// (read through `env`, e.g. `|k| std::env::var(k).ok()`) < `flags`; then checks every
    /// value and names the layer of a bad one.
    pub fn consolidate(
        file: Option<PartialConfig>,
        descriptor: Option<PartialConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: PartialConfig,
    ) -> Result<ClientConfig, ConfigError> {
        let layers = [
            (Layer::File, file.unwrap_or_default()),
            (Layer::Descriptor, descriptor.unwrap_or_default()),
            (Layer::Env, PartialConfig::from_env(env)?),
            (Layer::Flags, flags),
        ];
        let server = last(&layers, |p| p.server.clone());
        let token = last(&layers, |p| p.token.clone());
        let timeout = last(&layers, |p| p.timeout);
        let attempts = last(&layers, |p| p.attempts);
        let retry_interval = last(&layers, |p| p.retry_interval);
        let config = ClientConfig {
            server: server
                .clone()
                .map_or(DEFAULT_SERVER.to_string(), |(v, _)| v),
            token: token.as_ref().map(|(v, _)| v.clone()),
            timeout: timeout.map_or(DEFAULT_TIMEOUT, |(v, _)| v),
            attempts: attempts.map_or(DEFAULT_ATTEMPTS, |(v, _)| v),
            retry_interval: retry_interval.map_or(DEFAULT_RETRY_INTERVAL, |(v, _)| v),
        };
        let layer_of = |field: &str| {
            let found = match field {
                "server" => server.as_ref().map(|(_, l)| *l),
                "token" => token.as_ref().map(|(_, l)| *l),
                "timeout" => timeout.map(|(_, l)| l),
                "attempts" => attempts.map(|(_, l)| l),
                _ => retry_interval.map(|(_, l)| l),
            };
            found.unwrap_or(Layer::Default)
        };
        config.check().map_err(|e| match e {
            ConfigError::Invalid {
                field,
                value,
                reason,
                ..
            } => ConfigError::Invalid {
                layer: Some(layer_of(field)),
                field,
                value,
                reason,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks every value; errors carry no layer (see [`ClientConfig::consolidate`]).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: &str, reason: &str| ConfigError::Invalid {
            layer: None,
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        crate::transport::Endpoint::parse(&self.server)
            .map_err(|reason| invalid("server", &self.server, &reason))?;
        if let Some(token) = &self.token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "token",
                "<hidden>",
                "a token is printable ASCII without spaces; copy it again from `stampede server token create`",
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "timeout",
                "0s",
                "an attempt needs some time; write a duration like 30s",
            ));
        }
        if self.attempts == 0 {
            return Err(invalid("attempts", "0", "a call makes at least 1 attempt"));
        }
        Ok(())
    }
}

/// The value of the last layer that sets one, and that layer.
fn last<T>(
    layers: &[(Layer, PartialConfig)],
    field: impl Fn(&PartialConfig) -> Option<T>,
) -> Option<(T, Layer)> {
    layers
        .iter()
        .rev()
        .find_map(|(layer, partial)| field(partial).map(|v| (v, *layer)))
}

/// The config file: `$STAMPEDE_CONFIG`, else `$XDG_CONFIG_HOME/stampede/config.json`, else
/// `$HOME/.config/stampede/config.json`; `None` when none of them is set.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(path) = var(CONFIG_ENV) {
        return Some(PathBuf::from(path));
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("stampede").join("config.json"))
}

/// Reads the config file at `path`; `Ok(None)` when there is no file.
pub fn load_file(path: &Path) -> Result<Option<PartialConfig>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                error: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            error: e.to_string(),
        })
}

/// Writes `config` to `path` (creating its directory), readable by its owner only (0600):
/// it holds a token. The file is replaced whole, never left half-written.
pub fn save_file(path: &Path, config: &PartialConfig) -> Result<(), ConfigError> {
    let fail = |error: std::io::Error| ConfigError::Write {
        path: path.to_path_buf(),
        error: error.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut text = serde_json::to_string_pretty(config).map_err(|e| ConfigError::Write {
        path: path.to_path_buf(),
        error: e.to_string(),
    })?;
    text.push('\n');
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    write_private(&temporary, text.as_bytes()).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        fail(e)
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // A file left over from an earlier attempt keeps its mode; set it again.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// Parses `30s`, `1m30s`, `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| "not a duration (write it like 30s, 1m30s or 500ms)".to_string())
}

/// Durations as text in JSON (`"30s"`), like the environment.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&humantime::format_duration(*d).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| {
            super::parse_duration(&t)
                .map_err(|reason| serde::de::Error::custom(format!("{t:?}: {reason}")))
        })
        .transpose()
    }
}
