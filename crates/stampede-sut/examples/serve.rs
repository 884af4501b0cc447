//! Serves the system under test until standard input closes, to poke at it by hand or
//! point `wrk` at it without the whole CLI:
//!
//! ```text
//! cargo run --release -p stampede-sut --example serve -- 127.0.0.1:8080 1
//! wrk -t1 -c64 -d10s http://127.0.0.1:8080/
//! ```
//!
//! Arguments: listen address (default `127.0.0.1:8080`), worker threads (default 0 = one
//! per core), and `tls` to serve HTTPS. With `SNAP_DIR` set in the environment the
//! snapshot store is on, with that data directory, the admin secret in `SNAP_ADMIN_TOKEN`
//! if set, and the bugs listed in `SNAP_BUGS` (e.g. `drop-file,lose-last-write`).

use std::io::Read;

use stampede_sut::{Config, Server, SnapBugs, SnapConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = Config {
        addr: args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?,
        threads: args.next().map(|t| t.parse()).transpose()?.unwrap_or(0),
        tls: args.next().is_some_and(|a| a == "tls"),
        ..Config::default()
    };
    let server = match std::env::var_os("SNAP_DIR") {
        None => Server::start(config)?,
        Some(dir) => {
            let bugs: SnapBugs = std::env::var("SNAP_BUGS").unwrap_or_default().parse()?;
            let snap = SnapConfig {
                admin_token: std::env::var("SNAP_ADMIN_TOKEN").ok(),
                bugs,
                ..SnapConfig::new(dir)
            };
            Server::start_with_store(config, snap)?
        }
    };
    println!("listening on {}", server.url());
    // Ends on EOF (Ctrl-D, or the end of a pipe); Ctrl-C just kills the process.
    std::io::stdin().read_to_end(&mut Vec::new())?;
    server.shutdown();
    Ok(())
}
