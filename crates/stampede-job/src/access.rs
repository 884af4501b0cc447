//! What a running job may touch on the machine that runs it: which files (paths resolve
//! here), which hosts, and how its processes start.
//!
//! `stampede run` runs the user's own file with [`Access::local`]: paths as written,
//! any host, processes with the user's environment. A job server gives each job an
//! [`Access::confined`] one built from its project's [grants](crate::policy::Grants):
//! relative paths resolve inside the job's own working directory, other paths only under
//! the granted folders; hosts are the job's targets and the granted networks; processes
//! only with the `exec` grant, then as the server's `run_as` user, with a clean
//! environment and rlimits.
//!
//! Steps reach files and processes only through [`Access::path`] and
//! [`Access::command`]; the runner checks the hosts a step's config names
//! ([`Step::uses`](crate::Step::uses)) with [`Access::connect`] before the step runs on a
//! target.
//!
//! What this does not stop: a granted process can do anything its user can (see
//! docs/server-security.md), and a host name is checked as written and as it resolves at
//! the check, not at every connection.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use stampede_api::job::Target;
use thiserror::Error;
use tokio::process::Command;

/// Why an access was refused: what was asked, and the grant that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct Refused {
    /// What was refused and why, for the user.
    pub message: String,
    /// The grant an admin gives to allow it (`exec`, `files:/srv/data`, `net:10.1.2.3`).
    pub grant: String,
}

/// A host or network a job may reach (`net:` grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetRule {
    /// Any host (`net:*`).
    Any,
    /// Addresses in a network (`net:10.0.0.0/8`, `net:127.0.0.1`).
    Network(ipnet::IpNet),
    /// A host name as written in a URL (`net:api.internal`).
    Host(String),
}

impl FromStr for NetRule {
    type Err = String;

    fn from_str(text: &str) -> Result<NetRule, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(NetRule::Any);
        }
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(NetRule::Network(net));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(NetRule::Network(ipnet::IpNet::from(ip)));
        }
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        if valid {
            Ok(NetRule::Host(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "{text:?} is not a network: write `*`, an address (10.1.2.3), a network (10.0.0.0/8) or a host name"
            ))
        }
    }
}

impl std::fmt::Display for NetRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetRule::Any => f.write_str("*"),
            NetRule::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            NetRule::Network(net) => write!(f, "{net}"),
            NetRule::Host(host) => f.write_str(host),
        }
    }
}

/// The user allowed processes run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Looks the user up by name.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        let user = uzers::get_user_by_name(name).ok_or_else(|| {
            format!("there is no user {name:?} on this machine (make one with `useradd --system {name}`)")
        })?;
        Ok(RunAs {
            name: name.to_string(),
            uid: user.uid(),
            gid: user.primary_group_id(),
        })
    }
}

/// How allowed processes start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Processes {
    /// Run them as this user (the server must be able to switch to it: root, say).
    pub run_as: Option<RunAs>,
    /// Start them with only `PATH`, `HOME` (the working directory) and what the job sets,
    /// instead of stampede's own environment.
    pub clean_env: bool,
    /// Their address space, in bytes (`RLIMIT_AS`).
    pub memory: Option<u64>,
    /// How many files each may have open (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// The longest any one may run; a step's own timeout may be shorter.
    pub timeout: Option<Duration>,
}

/// Where prlimit(1) is.
const PRLIMIT: [&str; 2] = ["/usr/bin/prlimit", "/bin/prlimit"];

/// `PATH` for processes started with a clean environment.
const CLEAN_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What a job may touch. See the module docs.
#[derive(Debug, Clone)]
pub struct Access {
    /// Where relative paths resolve; `None` for a server's job before it has a directory
    /// (while its descriptor is read), when relative paths cannot be read yet.
    base: Option<PathBuf>,
    /// The folders outside `base` that paths may reach; `None`: anywhere.
    roots: Option<Vec<PathBuf>>,
    /// The hosts beyond the job's targets it may reach; `None`: any.
    net: Option<Vec<NetRule>>,
    /// How processes start; `None`: they may not.
    processes: Option<Processes>,
}

impl Access {
    /// The user's own machine: paths as written, relative ones from the current directory;
    /// any host; processes with stampede's environment.
    pub fn local() -> Access {
        Access {
            base: Some(PathBuf::new()),
            roots: None,
            net: None,
            processes: Some(Processes::default()),
        }
    }

    /// Like [`local`](Access::local), relative paths from `base`.
    pub fn local_at(base: &Path) -> Access {
        Access {
            base: Some(base.to_path_buf()),
            ..Access::local()
        }
    }

    /// A job on a server: relative paths inside `dir` (`None` while the job has none yet),
    /// others only under `roots`; hosts are its targets and `net`; processes as `processes`
    /// says, or none.
    pub fn confined(
        dir: Option<PathBuf>,
        roots: Vec<PathBuf>,
        net: Vec<NetRule>,
        processes: Option<Processes>,
    ) -> Access {
        Access {
            base: dir,
            roots: Some(roots),
            net: Some(net),
            processes,
        }
    }

    /// Whether paths, hosts or processes are limited at all.
    pub fn is_confined(&self) -> bool {
        self.roots.is_some()
    }

    /// The job's working directory, when it has one of its own.
    pub fn dir(&self) -> Option<&Path> {
        self.base.as_deref().filter(|_| self.is_confined())
    }

    /// Whether `path` (as written in the job) is one the job may use, without resolving it.
    pub fn admits_path(&self, path: &str) -> Result<(), Refused> {
        let Some(roots) = &self.roots else {
            return Ok(());
        };
        let written = Path::new(path);
        if written.is_relative() {
            return match normal(written) {
                Some(_) => Ok(()),
                None => Err(refused_path(path, "it leaves the job's working directory")),
            };
        }
        let Some(absolute) = normal(written) else {
            return Err(refused_path(path, "it is not a plain path"));
        };
        let inside = |root: &PathBuf| absolute.starts_with(root);
        if roots.iter().any(inside) || self.dir().is_some_and(|d| absolute.starts_with(d)) {
            Ok(())
        } else {
            Err(refused_path(
                path,
                "it is outside the job's working directory and the folders granted to its project",
            ))
        }
    }

    /// The path to open for `path` as written in the job: relative ones from the base
    /// (the job's directory on a server). On a server, a path that leaves the allowed
    /// folders, also through a symbolic link, is refused.
    pub fn path(&self, path: &str) -> Result<PathBuf, Refused> {
        self.admits_path(path)?;
        let Some(base) = &self.base else {
            if Path::new(path).is_relative() {
                return Err(Refused {
                    message: format!(
                        "{path}: a job on a server has no files of its own when it is submitted; give the content inline or an absolute path in a folder granted to the project"
                    ),
                    grant: "files:DIR".into(),
                });
            }
            return self.real(PathBuf::from(path), path);
        };
        let joined = base.join(path);
        if self.is_confined() {
            self.real(joined, path)
        } else {
            Ok(joined)
        }
    }

    /// `joined`, refused when it really (through symbolic links) leads outside the
    /// allowed folders.
    fn real(&self, joined: PathBuf, written: &str) -> Result<PathBuf, Refused> {
        let real = through_links(&joined);
        let roots = self.roots.iter().flatten().map(|r| through_links(r));
        let mut allowed = roots.chain(self.dir().map(through_links));
        if allowed.any(|root| real.starts_with(&root)) {
            Ok(joined)
        } else {
            Err(refused_path(
                written,
                &format!(
                    "it leads (through a symbolic link) to {}, outside the allowed folders",
                    real.display()
                ),
            ))
        }
    }

    /// Whether the job may connect to `host` (a URL, `host:port` or a host) while running
    /// on `target`: always to the target's own host, and to the granted networks.
    pub fn connect(&self, host: &str, target: Option<&Target>) -> Result<(), Refused> {
        let Some(rules) = &self.net else {
            return Ok(());
        };
        let host = host_of(host);
        let is_target = target.is_some_and(|t| {
            same_host(host, host_of(&t.host))
                || host.eq_ignore_ascii_case(&t.id)
                || [&t.ipv4, &t.ipv6]
                    .iter()
                    .any(|a| !a.is_empty() && host == a.as_str())
                || (!t.url.is_empty() && same_host(host, host_of(&t.url)))
        });
        if is_target || admits_host(rules, host) {
            return Ok(());
        }
        Err(Refused {
            message: format!(
                "{host}: not one of the job's targets nor in a network granted to its project"
            ),
            grant: format!("net:{host}"),
        })
    }

    /// A command for `program`, ready to be given its arguments: in its own process group,
    /// killed when dropped, in the job's directory, as the server's user and limits.
    /// Refused when the job may not start processes.
    pub fn command(&self, program: &str, args: &[String]) -> Result<Command, Refused> {
        let Some(rules) = &self.processes else {
            return Err(Refused {
                message: format!("{program}: the job's project may not start processes"),
                grant: "exec".into(),
            });
        };
        let mut command = match (rules.memory, rules.open_files) {
            (None, None) => Command::new(program),
            (memory, open_files) => {
                // prlimit(1) sets the limits on itself and then runs the program; found by
                // its absolute path, so that a PATH the job sets cannot replace it.
                let Some(prlimit) = PRLIMIT.iter().find(|p| Path::new(p).is_file()) else {
                    return Err(Refused {
                        message: "the server limits processes' memory or open files, and prlimit (util-linux) is not installed: install util-linux".into(),
                        grant: "exec".into(),
                    });
                };
                let mut command = Command::new(prlimit);
                if let Some(bytes) = memory {
                    command.arg(format!("--as={bytes}"));
                }
                if let Some(files) = open_files {
                    command.arg(format!("--nofile={files}"));
                }
                command.arg("--").arg(program);
                command
            }
        };
        command.args(args).process_group(0).kill_on_drop(true);
        if let Some(dir) = self.dir() {
            command.current_dir(dir);
        }
        if rules.clean_env {
            command.env_clear().env("PATH", CLEAN_PATH);
            if let Some(dir) = self.dir() {
                command.env("HOME", dir);
            }
        }
        if let Some(user) = &rules.run_as {
            command.uid(user.uid).gid(user.gid);
        }
        Ok(command)
    }

    /// Whether the job may start processes that do not go through
    /// [`command`](Access::command) (a step that runs tools of its own): only where
    /// processes are allowed and not switched to another user.
    pub fn own_processes(&self, step: &str) -> Result<(), Refused> {
        match &self.processes {
            None => Err(Refused {
                message: format!(
                    "the `{step}` step starts processes, and the job's project may not"
                ),
                grant: "exec".into(),
            }),
            Some(rules) if rules.run_as.is_some() => Err(Refused {
                message: format!(
                    "the `{step}` step cannot start its commands as the server's run_as user: run it with `stampede run`, or on a server without run_as"
                ),
                grant: "exec".into(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Adds `env` to `command`'s environment. On a server, variables that change how
    /// programs are loaded (`LD_*`) are refused: they could undo the limits.
    pub fn env(
        &self,
        command: &mut Command,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Refused> {
        if self.is_confined()
            && let Some(key) = env.keys().find(|k| k.starts_with("LD_"))
        {
            return Err(Refused {
                message: format!(
                    "env.{key}: a job on a server may not set the loader's variables (LD_*)"
                ),
                grant: "exec".into(),
            });
        }
        command.envs(env);
        Ok(())
    }

    /// The longest a process may run, when the server limits it.
    pub fn process_timeout(&self) -> Option<Duration> {
        self.processes.as_ref().and_then(|p| p.timeout)
    }
}

fn refused_path(path: &str, why: &str) -> Refused {
    let grant = Path::new(path)
        .parent()
        .filter(|p| p.is_absolute())
        .map_or_else(
            || "files:DIR".to_string(),
            |p| format!("files:{}", p.display()),
        );
    Refused {
        message: format!("{path}: {why}"),
        grant,
    }
}

/// `path` with its longest existing prefix resolved through symbolic links, and the rest
/// as written.
fn through_links(path: &Path) -> PathBuf {
    for existing in path.ancestors() {
        if let Ok(real) = existing.canonicalize() {
            let rest = path.strip_prefix(existing).unwrap_or(Path::new(""));
            return real.join(rest);
        }
    }
    path.to_path_buf()
}

/// `path` without `.` and `..` (resolved lexically); `None` when a `..` climbs above its
/// start (or above `/`).
fn normal(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::Normal(name) => {
                out.push(name);
                depth += 1;
            }
            Component::RootDir => out.push("/"),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The host of a URL (`http://h:80/x`), of `h:80`, `[::1]:80`, or `h` itself.
pub fn host_of(text: &str) -> &str {
    if text.parse::<IpAddr>().is_ok() {
        return text;
    }
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether `a` and `b` name the same host: as written, or by an address both resolve to
/// (`localhost` and `127.0.0.1`).
fn same_host(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    if a.is_empty() || b.is_empty() {
        return false;
    }
    use std::net::ToSocketAddrs;
    let addresses = |host: &str| -> Vec<IpAddr> {
        (host, 0)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default()
    };
    let of_b = addresses(b);
    addresses(a).iter().any(|ip| of_b.contains(ip))
}

/// Whether `rules` let a job reach `host`. A name that is not granted as written passes
/// when every address it resolves to is in a granted network.
fn admits_host(rules: &[NetRule], host: &str) -> bool {
    let ip = host.parse::<IpAddr>().ok();
    let granted = |ip: &IpAddr| {
        rules
            .iter()
            .any(|r| matches!(r, NetRule::Network(net) if net.contains(ip)))
    };
    let direct = rules.iter().any(|rule| match rule {
        NetRule::Any => true,
        NetRule::Network(_) => false,
        NetRule::Host(name) => host.eq_ignore_ascii_case(name),
    });
    if direct {
        return true;
    }
    if let Some(ip) = ip {
        return granted(&ip);
    }
    if !rules.iter().any(|r| matches!(r, NetRule::Network(_))) {
        return false;
    }
    use std::net::ToSocketAddrs;
    match (host, 0).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| granted(&a.ip()))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(roots: &[&str], net: &[&str]) -> Access {
        Access::confined(
            Some(PathBuf::from("/srv/jobs/7")),
            roots.iter().map(PathBuf::from).collect(),
            net.iter().map(|n| n.parse().unwrap()).collect(),
            None,
        )
    }

    #[test]
    fn a_local_job_uses_paths_as_written() {
        let access = Access::local();
        assert_eq!(
            access.path("../x.json").unwrap(),
            PathBuf::from("../x.json")
        );
        assert_eq!(
            access.path("/etc/passwd").unwrap(),
            PathBuf::from("/etc/passwd")
        );
        assert!(access.connect("http://10.9.9.9/", None).is_ok());
        assert!(access.command("id", &[]).is_ok());
    }

    #[test]
    fn a_server_job_keeps_to_its_directory_and_granted_folders() {
        let access = server(&["/srv/data"], &[]);
        assert_eq!(
            access.path("out/report.xml").unwrap(),
            PathBuf::from("/srv/jobs/7/out/report.xml")
        );
        assert!(access.path("a/../b.json").is_ok());
        let up = access.path("../x.json").unwrap_err();
        assert!(
            up.message.contains("leaves the job's working directory"),
            "{up}"
        );
        let etc = access.path("/etc/passwd").unwrap_err();
        assert_eq!(etc.grant, "files:/etc");
        assert!(access.path("/srv/data/targets.csv").is_ok());
        assert!(access.path("/srv/data/../../etc/passwd").is_err());
        assert!(
            access.path("/srv/database").is_err(),
            "a prefix is not a folder"
        );
    }

    #[test]
    fn a_link_out_of_the_job_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
        let access = Access::confined(Some(dir.path().to_path_buf()), vec![], vec![], None);
        let refused = access.path("etc/passwd").unwrap_err();
        assert!(refused.message.contains("symbolic link"), "{refused}");
        assert!(access.path("report.json").is_ok());
    }

    #[test]
    fn before_it_has_a_directory_a_server_job_reads_no_relative_file() {
        let access = Access::confined(None, vec![], vec![], None);
        let refused = access.path("steps.json").unwrap_err();
        assert!(refused.message.contains("inline"), "{refused}");
    }

    #[test]
    fn hosts_are_the_targets_and_the_granted_networks() {
        let target = Target {
            id: "web-1".into(),
            host: "10.1.2.3".into(),
            ..Target::default()
        };
        let access = server(&[], &["192.168.0.0/16", "api.internal"]);
        assert!(
            access
                .connect("http://10.1.2.3:8080/x", Some(&target))
                .is_ok()
        );
        assert!(access.connect("http://web-1/", Some(&target)).is_ok());
        assert!(access.connect("http://192.168.7.1/", None).is_ok());
        assert!(access.connect("https://API.internal/", None).is_ok());
        assert!(access.connect("http://[::1]:80/", None).is_err());
        let refused = access
            .connect("http://169.254.169.254/latest", Some(&target))
            .unwrap_err();
        assert_eq!(refused.grant, "net:169.254.169.254");
        assert!(
            access.connect("10.1.2.3:22", None).is_err(),
            "not this target's"
        );
        let local = Target {
            id: "local".into(),
            host: "localhost".into(),
            ..Target::default()
        };
        assert!(
            access
                .connect("http://127.0.0.1:8080/", Some(&local))
                .is_ok()
        );
        assert!(
            server(&[], &["*"])
                .connect("http://x.example/", None)
                .is_ok()
        );
        assert!(
            server(&[], &["127.0.0.0/8"])
                .connect("http://localhost:1/", None)
                .is_ok()
        );
    }

    #[test]
    fn processes_need_the_grant_and_then_start_as_the_rules_say() {
        let refused = server(&[], &[]).command("id", &[]).unwrap_err();
        assert_eq!(refused.grant, "exec");
        let rules = Processes {
            clean_env: true,
            memory: Some(1 << 30),
            open_files: Some(256),
            ..Processes::default()
        };
        let access = Access::confined(Some("/srv/jobs/7".into()), vec![], vec![], Some(rules));
        let command = access.command("id", &["-u".into()]).unwrap();
        let std = command.as_std();
        assert_eq!(std.get_program(), "/usr/bin/prlimit");
        let args: Vec<_> = std
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["--as=1073741824", "--nofile=256", "--", "id", "-u"]);
        assert_eq!(std.get_current_dir(), Some(Path::new("/srv/jobs/7")));
        let env: Vec<_> = std
            .get_envs()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(env, ["HOME", "PATH"]);
        let mut command = access.command("id", &[]).unwrap();
        let preload = [("LD_PRELOAD".to_string(), "/tmp/x.so".to_string())].into();
        let refused = access.env(&mut command, &preload).unwrap_err();
        assert!(refused.message.starts_with("env.LD_PRELOAD"), "{refused}");
        let own = [("GREETING".to_string(), "hi".to_string())].into();
        assert!(access.env(&mut command, &own).is_ok());
        assert!(
            Access::local().env(&mut command, &preload).is_ok(),
            "the user's own run"
        );
    }

    #[test]
    fn net_rules_read_as_written() {
        assert_eq!("*".parse::<NetRule>().unwrap(), NetRule::Any);
        assert_eq!(
            "10.0.0.0/8".parse::<NetRule>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "10.1.2.3".parse::<NetRule>().unwrap().to_string(),
            "10.1.2.3"
        );
        assert_eq!(
            "Api.Internal".parse::<NetRule>().unwrap().to_string(),
            "api.internal"
        );
        assert!("a b".parse::<NetRule>().is_err());
    }

    #[test]
    fn hosts_come_out_of_urls_and_addresses() {
        assert_eq!(host_of("http://u:p@h.example:80/x?y"), "h.example");
        assert_eq!(host_of("h:8080"), "h");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("http://[::1]/"), "::1");
        assert_eq!(host_of("10.0.0.1"), "10.0.0.1");
    }
}
