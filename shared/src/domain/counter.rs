//! The failure counter rule (D2-D5) as a pure function.
//!
//! Each check gives the window a verdict: failing, passing, or none.
//! - Inbound (D2): a delivery whose every route failed makes the window failing, *even if other
//!   deliveries in the same window succeeded*: one message that could not reach the server is an
//!   outage for its recipient, and a server that accepts some mail and drops the rest is failing.
//!   Successful deliveries and no failure pass; no traffic at all passes too (a quiet window is
//!   no evidence of an outage).
//! - Outbound (D3): the probe sent at the start of the window arrived within the acceptable
//!   latency: pass. Late, missing, or could not be sent: fail. No probe was attempted (monitoring
//!   was just turned on, or the previous run did not happen): no verdict, since the service has no
//!   evidence either way and should not raise the counter for its own gap.
//! - Combined (D4): any enabled check failing: +1, once per window. Otherwise, any enabled check
//!   passing: -1. No verdict at all: 0.
//! - Bounds (D5): the counter stays within `0..=threshold`; the checks go on at the ceiling.

use serde::{Deserialize, Serialize};

/// What the inbound path saw in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InboundObservation {
    /// No delivery attempts at all.
    NoTraffic,
    /// At least one delivery accepted, none failed on every route.
    Delivered,
    /// At least one delivery failed on every route.
    Failed,
}

impl InboundObservation {
    /// From the window's counts of all-routes-failed deliveries and accepted deliveries.
    pub fn from_counts(failures: u64, successes: u64) -> Self {
        if failures > 0 {
            InboundObservation::Failed
        } else if successes > 0 {
            InboundObservation::Delivered
        } else {
            InboundObservation::NoTraffic
        }
    }

    pub fn verdict(self) -> Verdict {
        match self {
            InboundObservation::Failed => Verdict::Fail,
            InboundObservation::Delivered | InboundObservation::NoTraffic => Verdict::Pass,
        }
    }
}

/// What became of the probe sent at the start of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeObservation {
    /// Arrived within the acceptable latency.
    InTime,
    /// Arrived, but later than the acceptable latency.
    Late,
    /// Sent (the server accepted it) but never arrived.
    Missing,
    /// Could not be sent: server down, refused, TLS or AUTH failure, timeout.
    NotSent,
    /// No probe was attempted for this window.
    NotAttempted,
}

impl ProbeObservation {
    pub fn verdict(self) -> Verdict {
        match self {
            ProbeObservation::InTime => Verdict::Pass,
            ProbeObservation::Late | ProbeObservation::Missing | ProbeObservation::NotSent => {
                Verdict::Fail
            }
            ProbeObservation::NotAttempted => Verdict::None,
        }
    }
}

/// A check's judgement of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Fail,
    Pass,
    None,
}

/// The window's inputs: `None` for a check that is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowInputs {
    pub inbound: Option<InboundObservation>,
    pub outbound: Option<ProbeObservation>,
}

/// The outcome of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The combined verdict (D4).
    pub verdict: Verdict,
    /// The change actually applied after the bounds: -1, 0 or +1.
    pub delta: i32,
    /// The counter after the window.
    pub value: u32,
}

/// The combined verdict of the enabled checks (D4).
pub fn combine(inputs: WindowInputs) -> Verdict {
    let verdicts = [
        inputs.inbound.map(InboundObservation::verdict),
        inputs.outbound.map(ProbeObservation::verdict),
    ];
    if verdicts.contains(&Some(Verdict::Fail)) {
        Verdict::Fail
    } else if verdicts.contains(&Some(Verdict::Pass)) {
        Verdict::Pass
    } else {
        Verdict::None
    }
}

/// Moves the counter for one window (D2-D5). A previous value above a (since lowered) threshold
/// is first brought down to it, so the counter is never reported above its ceiling.
pub fn step(prev: u32, threshold: u32, inputs: WindowInputs) -> Step {
    let threshold = threshold.max(1);
    let prev = prev.min(threshold);
    let verdict = combine(inputs);
    let value = match verdict {
        Verdict::Fail => (prev + 1).min(threshold),
        Verdict::Pass => prev.saturating_sub(1),
        Verdict::None => prev,
    };
    Step {
        verdict,
        delta: value as i32 - prev as i32,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use InboundObservation as I;
    use ProbeObservation as P;

    /// The full table: every inbound observation (or check off) x every probe observation (or check
    /// off) x counter at 0, in between, at threshold. Expected deltas worked out from D2-D5.
    #[test]
    fn rule_table() {
        let inbound = [
            None,
            Some(I::NoTraffic),
            Some(I::Delivered),
            Some(I::Failed),
        ];
        let outbound = [
            None,
            Some(P::InTime),
            Some(P::Late),
            Some(P::Missing),
            Some(P::NotSent),
            Some(P::NotAttempted),
        ];
        let threshold = 3;
        let mut rows = 0;
        for i in inbound {
            for o in outbound {
                let fails =
                    i == Some(I::Failed) || matches!(o, Some(P::Late | P::Missing | P::NotSent));
                let passes = matches!(i, Some(I::NoTraffic | I::Delivered)) || o == Some(P::InTime);
                for (prev, up, down) in [(0, 1, 0), (1, 2, 0), (3, 3, 2)] {
                    let s = step(
                        prev,
                        threshold,
                        WindowInputs {
                            inbound: i,
                            outbound: o,
                        },
                    );
                    let want = if fails {
                        up
                    } else if passes {
                        down
                    } else {
                        prev
                    };
                    assert_eq!(s.value, want, "prev {prev}, inbound {i:?}, outbound {o:?}");
                    assert_eq!(s.delta, want as i32 - prev as i32);
                    rows += 1;
                }
            }
        }
        assert_eq!(rows, 4 * 6 * 3);
    }

    #[test]
    fn mixed_inbound_window_counts_as_failure() {
        assert_eq!(I::from_counts(1, 40), I::Failed);
        assert_eq!(I::from_counts(0, 40), I::Delivered);
        assert_eq!(I::from_counts(0, 0), I::NoTraffic);
    }

    #[test]
    fn both_failing_counts_once() {
        let s = step(
            0,
            5,
            WindowInputs {
                inbound: Some(I::Failed),
                outbound: Some(P::Missing),
            },
        );
        assert_eq!((s.delta, s.value), (1, 1));
    }

    #[test]
    fn lowered_threshold_clamps_previous_value() {
        let s = step(
            7,
            3,
            WindowInputs {
                inbound: Some(I::Failed),
                outbound: None,
            },
        );
        assert_eq!((s.value, s.delta), (3, 0));
        let s = step(
            7,
            3,
            WindowInputs {
                inbound: Some(I::Delivered),
                outbound: None,
            },
        );
        assert_eq!((s.value, s.delta), (2, -1));
    }

    fn any_inputs() -> impl Strategy<Value = WindowInputs> {
        let i = prop_oneof![
            Just(None),
            Just(Some(I::NoTraffic)),
            Just(Some(I::Delivered)),
            Just(Some(I::Failed))
        ];
        let o = prop_oneof![
            Just(None),
            Just(Some(P::InTime)),
            Just(Some(P::Late)),
            Just(Some(P::Missing)),
            Just(Some(P::NotSent)),
            Just(Some(P::NotAttempted))
        ];
        (i, o).prop_map(|(inbound, outbound)| WindowInputs { inbound, outbound })
    }

    proptest! {
        #[test]
        fn counter_stays_within_bounds_and_moves_by_at_most_one(
            threshold in 1u32..50,
            seq in proptest::collection::vec(any_inputs(), 0..200),
        ) {
            let mut v = 0u32;
            for inputs in seq {
                let s = step(v, threshold, inputs);
                prop_assert!(s.value <= threshold);
                prop_assert!((s.value as i64 - v as i64).abs() <= 1);
                prop_assert_eq!(s.delta, s.value as i32 - v as i32);
                v = s.value;
            }
        }
    }
}
