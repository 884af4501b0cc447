//! The open-files limit: every connection is a file descriptor.

/// Raises the soft limit to the hard limit, and warns when even that is too low for
/// `connections` (plus a margin for the runtime and the process).
pub(crate) fn raise_open_files(connections: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("warning: could not raise the open-files limit: {e}");
        }
    }
    let soft = getrlimit(Resource::Nofile).current;
    let needed = connections.saturating_add(64);
    if let Some(soft) = soft
        && soft < needed
    {
        {
            eprintln!(
                "warning: the open-files limit is {soft}, but {connections} connections need about \
                 {needed}; connections past the limit will fail as connect errors. Raise the hard \
                 limit (ulimit -Hn, or LimitNOFILE= in systemd) and run again."
            );
        }
    }
}
