//! `stampede server` under a login flood and a slow client, and its users and tokens from
//! the command line: 400 concurrent logins from 400 addresses keep the server's peak
//! memory under 150 MB (the excess is answered 429), a request head that never ends is
//! cut off, tokens expire and list their expiry, and removing a user revokes its tokens.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_store::pg_schema::TestBackend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cloud::Db;
use super::server::{create_token, http, start_server_with};
use super::{BIN, Killed, memory, text};

const PASSWORD: &str = "correct horse";

/// `stampede server <args> --database db`; panics unless it exits 0. Its output.
fn server_cmd(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("server")
        .args(args)
        .args(["--database", db])
        .env("STAMPEDE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    text(&out)
}

/// The server's peak resident memory so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    memory(pid, "VmHWM")
}

/// One login from 127.0.0.0/8 address `from`, sent when `go` opens: the status and
/// `Retry-After`.
async fn login_from(
    addr: SocketAddr,
    from: Ipv4Addr,
    user: String,
    password: &'static str,
    go: Arc<tokio::sync::Barrier>,
) -> (u16, Option<u64>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let body = serde_json::json!({ "email": user, "password": password }).to_string();
    let request = format!(
        "POST /v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    go.wait().await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let retry_after = reply
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok());
    (status, retry_after)
}

/// The limit the issue set: 400 concurrent logins must leave the server under this.
const MAX_RSS: u64 = 150 * 1024 * 1024;

fn four_hundred_concurrent_logins_stay_under_150_mb(backend: TestBackend) {
    let Some(db) = Db::open(backend) else { return };
    server_cmd(&db.url, &["user", "create", "--name", "ann"]);
    let (child, addr) = start_server_with(&db.url, "e2e", &[]);
    let server = Killed(child);
    let addr: SocketAddr = addr.parse().unwrap();
    let before = peak_rss(server.0.id());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let replies = runtime.block_on(async {
        const LOGINS: u32 = 400;
        let go = Arc::new(tokio::sync::Barrier::new(LOGINS as usize));
        // Each from an address of its own and most for a name of their own, as a
        // distributed flood would be: only the bounded password pool holds the memory.
        let tasks: Vec<_> = (0..LOGINS)
            .map(|n| {
                let from = Ipv4Addr::new(127, 0, 1 + (n / 200) as u8, 1 + (n % 200) as u8);
                let (user, password) = match n % 4 {
                    0 => ("ann".to_string(), PASSWORD),
                    1 => ("ann".to_string(), "wrong horse"),
                    _ => (format!("nobody-{n}"), "guess"),
                };
                tokio::spawn(login_from(addr, from, user, password, go.clone()))
            })
            .collect();
        let mut replies = Vec::new();
        for task in tasks {
            replies.push(task.await.unwrap());
        }
        replies
    });
    let took = started.elapsed();
    let peak = peak_rss(server.0.id());
    let count = |status: u16| replies.iter().filter(|(s, _)| *s == status).count();
    let (ok, wrong, busy) = (count(200), count(401), count(429));
    eprintln!(
        "400 concurrent logins ({backend:?}) in {took:.1?}: {ok} × 200, {wrong} × 401, {busy} × 429; \
         server peak RSS {:.1} MB (before: {:.1} MB)",
        peak as f64 / 1048576.0,
        before as f64 / 1048576.0
    );
    assert_eq!(ok + wrong + busy, replies.len(), "{replies:?}");
    assert!(busy > 0, "no login was turned away");
    assert!(ok > 0, "no login went through");
    assert!(
        replies
            .iter()
            .all(|(s, retry)| *s != 429 || retry.is_some_and(|r| r >= 1)),
        "a 429 without Retry-After"
    );
    assert!(
        peak < MAX_RSS,
        "peak RSS {} MB, over {} MB",
        peak / 1048576,
        MAX_RSS / 1048576
    );
}

#[test]
fn a_request_head_that_never_ends_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("slow.db").display());
    let (child, addr) = start_server_with(&db, "e2e", &["--header-read-timeout", "1s"]);
    let _server = Killed(child);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        closed.is_ok() || waited < Duration::from_secs(9),
        "still open after {waited:?}"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
}

fn tokens_expire_and_removing_a_user_revokes_its_tokens(backend: TestBackend) {
    let Some(db) = Db::open(backend) else { return };
    let url = &db.url;
    server_cmd(
        url,
        &["user", "create", "--name", "ann", "--project", "alpha"],
    );
    server_cmd(url, &["user", "create", "--name", "bob"]);
    let users = server_cmd(url, &["user", "list"]);
    assert!(
        users.contains("\tann\talpha\t") && users.contains("\tbob\tdefault\t"),
        "{users}"
    );
    let forever = create_token(url, "ci");
    let out = Command::new(BIN)
        .args([
            "server",
            "token",
            "create",
            "--name",
            "short",
            "--expires-in",
            "2s",
        ])
        .args(["--database", url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("valid for 2s"), "{}", text(&out));
    let short = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let (child, addr) = start_server_with(url, "e2e", &["--login-token-ttl", "1h"]);
    let _server = Killed(child);
    let login = |user: &str| {
        let body = serde_json::json!({ "email": user, "password": PASSWORD }).to_string();
        let (status, reply) = http(&addr, "POST", "/v1/login", "", &body);
        assert_eq!(status, 200, "{reply}");
        reply["token"].as_str().unwrap().to_string()
    };
    let ann = login("ann");
    let bob = login("bob");
    for token in [&forever, &short, &ann, &bob] {
        let (status, body) = http(&addr, "GET", "/v1/version", token, "");
        assert_eq!(status, 200, "{body}");
    }
    let list = server_cmd(url, &["token", "list"]);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.split('\t').nth(1).is_some_and(|n| n.starts_with(name)))
            .unwrap_or_else(|| panic!("no token {name} in {list}"))
            .to_string()
    };
    assert!(line("ci").contains("\tactive\tnever expires\t-"), "{list}");
    assert!(line("short").contains("\tactive\texpires 20"), "{list}");
    assert!(
        line("login-ann-").contains("\talpha\tactive\texpires 20")
            && line("login-ann-").ends_with("\tann"),
        "{list}"
    );

    let removed = server_cmd(url, &["user", "remove", "ann"]);
    assert!(
        removed.contains("user \"ann\" removed; 1 of its tokens revoked"),
        "{removed}"
    );
    std::thread::sleep(Duration::from_secs(2));
    for (token, status) in [(&forever, 200), (&short, 401), (&ann, 401), (&bob, 200)] {
        let (got, body) = http(&addr, "GET", "/v1/version", token, "");
        assert_eq!(got, status, "{body}");
    }
    let list = server_cmd(url, &["token", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("\tshort\tdefault\texpired\t")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("\tlogin-ann-") && l.contains("\trevoked\t")),
        "{list}"
    );
    let users = server_cmd(url, &["user", "list"]);
    assert!(!users.contains("\tann\t"), "{users}");
    let out = Command::new(BIN)
        .args(["server", "user", "remove", "ann", "--database", url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(104), "{}", text(&out));
    assert!(
        text(&out).contains("there is no user \"ann\""),
        "{}",
        text(&out)
    );
}

on_both!(
    four_hundred_concurrent_logins_stay_under_150_mb,
    tokens_expire_and_removing_a_user_revokes_its_tokens,
);
