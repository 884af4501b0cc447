//! Interval snapshots on the wire: what `stampede run --out cloud` sends and the server
//! merges. Histograms travel in HDR's V2 encoding, so the server's merge is as exact as a
//! merge in the run itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use stampede_api::testrun::WireSnapshot;
use stampede_core::{DropReason, Failure};

use crate::snapshot::{Snapshot, new_histogram};

/// Why a wire snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A histogram is not base64 or not HDR V2, or holds values out of range.
    #[error("the {view} histogram cannot be read: {why}")]
    Histogram {
        /// `response`, `service` or `lag`.
        view: &'static str,
        /// Why.
        why: String,
    },
    /// A failure or drop reason is not one Stampede names.
    #[error(
        "{0:?} is not a failure (connect, timeout, reset, check, other, status N) or drop reason (no_slot, late)"
    )]
    Name(String),
}

fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("writing to a Vec cannot fail and our histograms fit V2");
    STANDARD.encode(bytes)
}

fn decode(view: &'static str, text: &str) -> Result<Histogram<u64>, WireError> {
    let fail = |why: String| WireError::Histogram { view, why };
    let bytes = STANDARD.decode(text).map_err(|e| fail(e.to_string()))?;
    let read: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| fail(format!("{e:?}")))?;
    let mut h = new_histogram();
    h.add(&read).map_err(|e| fail(format!("{e:?}")))?;
    Ok(h)
}

impl Snapshot {
    /// The snapshot as it travels.
    pub fn to_wire(&self) -> WireSnapshot {
        WireSnapshot {
            ok: self.ok,
            started: self.started,
            interrupted: self.interrupted,
            failures: self.failures.iter().map(|(f, n)| (f.name(), *n)).collect(),
            dropped: self
                .dropped
                .iter()
                .map(|(r, n)| (r.name().to_string(), *n))
                .collect(),
            response: encode(&self.views.response),
            service: encode(&self.views.service),
            lag: encode(&self.views.lag),
        }
    }

    /// Reads a snapshot [`to_wire`](Snapshot::to_wire) wrote.
    pub fn from_wire(wire: &WireSnapshot) -> Result<Snapshot, WireError> {
        let mut snapshot = Snapshot {
            ok: wire.ok,
            started: wire.started,
            interrupted: wire.interrupted,
            ..Snapshot::default()
        };
        for (name, n) in &wire.failures {
            let failure = Failure::from_name(name).ok_or_else(|| WireError::Name(name.clone()))?;
            *snapshot.failures.entry(failure).or_default() += n;
        }
        for (name, n) in &wire.dropped {
            let reason =
                DropReason::from_name(name).ok_or_else(|| WireError::Name(name.clone()))?;
            *snapshot.dropped.entry(reason).or_default() += n;
        }
        snapshot.views.response = decode("response", &wire.response)?;
        snapshot.views.service = decode("service", &wire.service)?;
        snapshot.views.lag = decode("lag", &wire.lag)?;
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::snapshot::tests::sample;

    #[test]
    fn a_snapshot_survives_the_wire_exactly() {
        let t0 = Instant::now();
        let mut a = Snapshot::default();
        for i in 0..2_000u64 {
            let outcome = match i % 50 {
                0 => Err(Failure::Status(503)),
                1 => Err(Failure::Timeout),
                _ => Ok(()),
            };
            a.record(&sample(t0, i % 7, 100 + i * 37, outcome));
        }
        a.record_drop(DropReason::Late);
        a.record_drop(DropReason::NoSlot);
        a.started = 2_010;
        a.interrupted = 3;
        let back = Snapshot::from_wire(&a.to_wire()).unwrap();
        assert_eq!(back.to_wire(), a.to_wire());
        assert_eq!(back.failures, a.failures);
        assert_eq!(back.dropped, a.dropped);
        for (x, y) in [
            (&back.views.response, &a.views.response),
            (&back.views.service, &a.views.service),
            (&back.views.lag, &a.views.lag),
        ] {
            assert_eq!(x, y);
            assert_eq!(x.value_at_quantile(0.99), y.value_at_quantile(0.99));
        }
        // Merging on the far side equals merging here.
        let mut here = a.clone();
        here.merge(&a);
        let mut there = back.clone();
        there.merge(&Snapshot::from_wire(&a.to_wire()).unwrap());
        assert_eq!(there.to_wire(), here.to_wire());
    }

    #[test]
    fn bad_wire_snapshots_say_what_is_wrong() {
        let good = Snapshot::default().to_wire();
        let bad_base64 = WireSnapshot {
            lag: "not base64!".into(),
            ..good.clone()
        };
        let e = Snapshot::from_wire(&bad_base64).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the lag histogram cannot be read"),
            "{e}"
        );
        let not_hdr = WireSnapshot {
            service: STANDARD.encode(b"hello"),
            ..good.clone()
        };
        let e = Snapshot::from_wire(&not_hdr).unwrap_err();
        assert!(e.to_string().starts_with("the service histogram"), "{e}");
        let mut bad_name = good;
        bad_name.failures.insert("oops".into(), 1);
        let e = Snapshot::from_wire(&bad_name).unwrap_err();
        assert_eq!(e, WireError::Name("oops".into()));
    }
}
