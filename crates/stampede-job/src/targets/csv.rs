//! The CSV target file: ConTest's `CSVFileTargetManager`, minus the locking.
//!
//! A hosts file has one target per row, `id,fqdn,ipv4,ipv6`, no header:
//!
//! ```text
//! 1234,compute1234,172.16.5.6,
//! 456,hostname2,,2001:db8::1
//! ```
//!
//! Only the id is required. [`parse_hosts`] reads and checks the file; [`select`] applies
//! the acquire parameters ([`Selection`]): host prefixes, the minimum, shuffling and the
//! maximum. Locking the chosen targets is the caller's job. Validation and messages follow
//! ConTest's `plugins/targetmanagers/csvtargetmanager`, with the file and line added, and two
//! deliberate differences: duplicate ids are rejected (ConTest would try to lock the same
//! target twice), and a host matching several prefixes is taken once (ConTest takes it once
//! per prefix).

use std::collections::HashMap;
use std::net::IpAddr;

use stampede_api::job::Target;

/// Which hosts of the file a test gets (ConTest's acquire parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Fewer matching hosts than this is an error (`MinNumberDevices`).
    pub min: usize,
    /// At most this many hosts are taken (`MaxNumberDevices`).
    pub max: usize,
    /// Keep only hosts whose first FQDN label starts with one of these; all hosts when empty
    /// (`HostPrefixes`). Hosts without an FQDN never match a prefix.
    pub host_prefixes: Vec<String>,
    /// Shuffle the matching hosts before taking `max` of them (`Shuffle`).
    pub shuffle: bool,
}

impl Selection {
    /// Checks the parameters on their own, before any file is read.
    pub fn validate(&self) -> Result<(), String> {
        if self.max == 0 {
            return Err(
                "the maximum number of devices (MaxNumberDevices) must be at least 1".into(),
            );
        }
        if self.min > self.max {
            return Err(format!(
                "the minimum number of devices (MinNumberDevices, {}) is larger than the \
                 maximum (MaxNumberDevices, {}); lower the minimum or raise the maximum",
                self.min, self.max
            ));
        }
        if self.host_prefixes.iter().any(|p| p.trim().is_empty()) {
            return Err(
                "a host prefix (HostPrefixes) cannot be an empty string; remove it, \
                        or leave the list empty to take every host"
                    .into(),
            );
        }
        Ok(())
    }

    fn matches(&self, target: &Target) -> bool {
        if self.host_prefixes.is_empty() {
            return true;
        }
        let first_label = target.host.split('.').next().unwrap_or_default();
        !target.host.is_empty()
            && self
                .host_prefixes
                .iter()
                .any(|p| first_label.starts_with(p.trim()))
    }
}

/// Reads a hosts file: rows of exactly four fields `id,fqdn,ipv4,ipv6`, each trimmed.
///
/// Blank lines are skipped. The id must be non-blank and unique; the addresses, when given,
/// must parse (an IPv4-mapped IPv6 address counts as IPv4, and, as in ConTest, the IPv6
/// column takes any address). `origin` (usually the path) starts every message.
pub fn parse_hosts(text: &str, origin: &str) -> Result<Vec<Target>, String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut hosts = Vec::new();
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{origin}: {e}"))?;
        let line = record.position().map_or(0, |p| first_line(text, p));
        let at = |msg: String| format!("{origin}:{line}: {msg}");
        if record.len() != 4 {
            return Err(at(format!(
                "malformed input file, need 4 entries per record (ID, FQDN, IPv4, IPv6), got {}",
                record.len()
            )));
        }
        let id = record[0].trim();
        if id.is_empty() {
            return Err(at("invalid empty string for host ID".into()));
        }
        if let Some(first) = first_seen.insert(id.to_string(), line) {
            return Err(at(format!(
                "duplicate host ID \"{id}\" (first on line {first}); IDs must be unique"
            )));
        }
        let ipv4 = match record[2].trim() {
            "" => String::new(),
            text => match text.parse::<IpAddr>().map(|a| a.to_canonical()) {
                Ok(IpAddr::V4(addr)) => addr.to_string(),
                _ => return Err(at(format!("invalid non-empty IPv4 address \"{text}\""))),
            },
        };
        let ipv6 = match record[3].trim() {
            "" => String::new(),
            text => match text.parse::<IpAddr>() {
                Ok(addr) => addr.to_canonical().to_string(),
                Err(_) => return Err(at(format!("invalid non-empty IPv6 address \"{text}\""))),
            },
        };
        hosts.push(Target {
            host: record[1].trim().to_string(),
            ipv4,
            ipv6,
            ..Target::new(id)
        });
    }
    Ok(hosts)
}

/// The line a record starts on: the csv crate places it before the blank lines it skipped.
fn first_line(text: &str, position: &::csv::Position) -> u64 {
    let rest = text
        .as_bytes()
        .get(position.byte() as usize..)
        .unwrap_or_default();
    let blank = rest
        .iter()
        .take_while(|b| matches!(b, b'\n' | b'\r'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() + blank as u64
}

/// Picks the targets of a test from the parsed hosts, in file order unless shuffled.
///
/// The same `shuffle_seed` always gives the same order, so a run can be replayed.
pub fn select(
    all: Vec<Target>,
    selection: &Selection,
    shuffle_seed: u64,
) -> Result<Vec<Target>, String> {
    selection.validate()?;
    let total = all.len();
    let mut hosts: Vec<Target> = all.into_iter().filter(|t| selection.matches(t)).collect();
    if hosts.len() < selection.min {
        let among = if selection.host_prefixes.is_empty() {
            String::new()
        } else {
            format!(
                " with host prefixes {:?} among {total}",
                selection.host_prefixes
            )
        };
        return Err(format!(
            "not enough hosts found{among}, want {}, got {}",
            selection.min,
            hosts.len()
        ));
    }
    if selection.shuffle {
        shuffle(&mut hosts, shuffle_seed);
    }
    hosts.truncate(selection.max);
    Ok(hosts)
}

/// Fisher–Yates driven by splitmix64: tiny, deterministic, and fine with any seed (even 0).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        // Multiply-shift maps the 64-bit draw onto 0..=i without a modulo.
        let j = ((u128::from(next()) * (i as u128 + 1)) >> 64) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ConTest's `cmds/contest/hosts.csv`.
    const HOSTS: &str = "1234,compute1234,172.16.5.6,\n\
                         2345,storage2345,10.10.10.123,\n\
                         3456,machinelearning3456,192.168.123.231,\n\
                         10,uselesshost10,10.0.0.10,\n";

    fn selection(min: usize, max: usize, prefixes: &[&str]) -> Selection {
        Selection {
            min,
            max,
            host_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            shuffle: false,
        }
    }

    fn ids(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.id.as_str()).collect()
    }

    fn hosts() -> Vec<Target> {
        parse_hosts(HOSTS, "hosts.csv").unwrap()
    }

    #[test]
    fn parses_contests_sample_file() {
        let hosts = hosts();
        assert_eq!(ids(&hosts), ["1234", "2345", "3456", "10"]);
        assert_eq!(
            hosts[0],
            Target {
                host: "compute1234".into(),
                ipv4: "172.16.5.6".into(),
                ..Target::new("1234")
            }
        );
        assert!(hosts.iter().all(|t| t.ipv6.is_empty() && t.tms.is_none()));
    }

    #[test]
    fn trims_fields_skips_blank_lines_and_reads_quotes() {
        let text = "\n 1 , a.example.com , 10.0.0.1 , 2001:DB8:0:0::1 \r\n\n\
                    \"2\",\"b,c\",,::ffff:10.0.0.2\n\n";
        let hosts = parse_hosts(text, "h.csv").unwrap();
        assert_eq!(ids(&hosts), ["1", "2"]);
        assert_eq!(hosts[0].host, "a.example.com");
        assert_eq!(hosts[0].ipv4, "10.0.0.1");
        assert_eq!(hosts[0].ipv6, "2001:db8::1");
        assert_eq!(hosts[1].host, "b,c");
        assert_eq!(hosts[1].ipv6, "10.0.0.2");
        assert_eq!(parse_hosts("", "empty.csv").unwrap(), []);
    }

    #[test]
    fn accepts_an_ipv4_mapped_address_as_ipv4() {
        let hosts = parse_hosts("1,h,::ffff:10.1.2.3,\n", "h.csv").unwrap();
        assert_eq!(hosts[0].ipv4, "10.1.2.3");
    }

    #[test]
    fn rejects_bad_rows_naming_file_and_line() {
        let check = |text: &str, expected: &str| {
            let err = parse_hosts(text, "hosts.csv").unwrap_err();
            assert_eq!(err, expected, "for {text:?}");
        };
        check(
            "1,a,,\n\n2,b,10.0.0.1\n",
            "hosts.csv:3: malformed input file, need 4 entries per record \
             (ID, FQDN, IPv4, IPv6), got 3",
        );
        check(
            "1,a,,,\n",
            "hosts.csv:1: malformed input file, need 4 entries per record \
             (ID, FQDN, IPv4, IPv6), got 5",
        );
        check(
            "\r\n\n1,a,,\n  ,b,,\n",
            "hosts.csv:4: invalid empty string for host ID",
        );
        check(
            "1,a,10.0.0.256,\n",
            "hosts.csv:1: invalid non-empty IPv4 address \"10.0.0.256\"",
        );
        check(
            "1,a,2001:db8::1,\n",
            "hosts.csv:1: invalid non-empty IPv4 address \"2001:db8::1\"",
        );
        check(
            "1,a,,2001:db8::g\n",
            "hosts.csv:1: invalid non-empty IPv6 address \"2001:db8::g\"",
        );
        check(
            "1,a,,\n2,b,,\n 1 ,c,,\n",
            "hosts.csv:3: duplicate host ID \"1\" (first on line 1); IDs must be unique",
        );
    }

    #[test]
    fn takes_all_hosts_up_to_max() {
        let picked = select(hosts(), &selection(2, 4, &[]), 0).unwrap();
        assert_eq!(ids(&picked), ["1234", "2345", "3456", "10"]);
        let picked = select(hosts(), &selection(2, 3, &[]), 0).unwrap();
        assert_eq!(ids(&picked), ["1234", "2345", "3456"]);
    }

    #[test]
    fn filters_on_the_first_fqdn_label() {
        let picked = select(hosts(), &selection(2, 4, &["compute", "storage"]), 0).unwrap();
        assert_eq!(ids(&picked), ["1234", "2345"]);

        let mut all = hosts();
        all[0].host = "compute1234.example.com".into();
        all[1].host = "rack1.storage2345.example.com".into();
        all.push(Target::new("no-fqdn"));
        let picked = select(all, &selection(1, 9, &[" compute ", "storage", "comp"]), 0).unwrap();
        assert_eq!(ids(&picked), ["1234"]);
    }

    #[test]
    fn too_few_hosts_is_an_error() {
        let err = select(hosts(), &selection(5, 5, &[]), 0).unwrap_err();
        assert_eq!(err, "not enough hosts found, want 5, got 4");
        let err = select(hosts(), &selection(3, 4, &["compute", "storage"]), 0).unwrap_err();
        assert_eq!(
            err,
            "not enough hosts found with host prefixes [\"compute\", \"storage\"] among 4, \
             want 3, got 2"
        );
    }

    #[test]
    fn validates_the_selection() {
        let check = |s: Selection, expected: Option<&str>| {
            assert_eq!(s.validate().err().as_deref(), expected, "for {s:?}");
        };
        check(selection(0, 1, &[]), None);
        check(selection(4, 4, &["a"]), None);
        check(
            selection(0, 0, &[]),
            Some("the maximum number of devices (MaxNumberDevices) must be at least 1"),
        );
        check(
            selection(5, 4, &[]),
            Some(
                "the minimum number of devices (MinNumberDevices, 5) is larger than the maximum \
                 (MaxNumberDevices, 4); lower the minimum or raise the maximum",
            ),
        );
        check(
            selection(1, 4, &["compute", "  "]),
            Some(
                "a host prefix (HostPrefixes) cannot be an empty string; remove it, or leave \
                 the list empty to take every host",
            ),
        );
        assert!(select(hosts(), &selection(5, 4, &[]), 0).is_err());
    }

    #[test]
    fn shuffles_deterministically_per_seed() {
        let shuffled = |seed, max| {
            let s = Selection {
                shuffle: true,
                ..selection(2, max, &[])
            };
            let picked = select(hosts(), &s, seed).unwrap();
            ids(&picked).join(",")
        };
        for seed in [0, 1, 42, u64::MAX] {
            let all = shuffled(seed, 4);
            assert_eq!(shuffled(seed, 4), all);
            let mut sorted: Vec<&str> = all.split(',').collect();
            sorted.sort();
            assert_eq!(sorted, ["10", "1234", "2345", "3456"]);
            // Max applies after the shuffle: the first two of the same order.
            let first_two: Vec<&str> = all.split(',').take(2).collect();
            assert_eq!(shuffled(seed, 2), first_two.join(","));
        }
        let orders: std::collections::HashSet<_> = (0..32).map(|seed| shuffled(seed, 4)).collect();
        assert!(
            orders.len() > 8,
            "only {} orders from 32 seeds",
            orders.len()
        );
    }

    #[test]
    fn shuffle_is_uniform_enough() {
        // Each of 4 items should land in each position about a quarter of the time.
        let mut counts = [[0u32; 4]; 4];
        for seed in 0..4000 {
            let mut items = [0usize, 1, 2, 3];
            shuffle(&mut items, seed);
            for (pos, item) in items.iter().enumerate() {
                counts[*item][pos] += 1;
            }
        }
        for row in counts {
            for n in row {
                assert!((850..1150).contains(&n), "skewed: {counts:?}");
            }
        }
    }
}
