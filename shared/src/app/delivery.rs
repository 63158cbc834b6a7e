//! Delivery to the organisation's server over its routes, in order (Q2), domain side.
//!
//! A route fails on a connection error, a timeout or a 4xx: the recipients it did not take are
//! tried on the next route. A 5xx for one recipient is final for that recipient (bounced now)
//! and does not fail the route. What no route took stays queued. The SMTP adapter is
//! [`crate::relay`].
//!
//! Time: each route's exchange is bounded by the invocation's deadline as well as by the
//! configured step timeout, so a server that hangs makes the route fail (and the failure get
//! recorded) before Lambda would kill the invocation; a route that cannot be started in time
//! is left for the next run, untried.

use crate::domain::config::Route;
use crate::domain::delivery::DeliveryReport;
use crate::domain::delivery::RcptResult;
use crate::domain::delivery::{Deadline, MIN_ROUTE_TIME};
use crate::ports::mail::RouteTransport;
use std::time::Duration;

/// Tries the routes in order until every recipient has a final answer, the routes run out, or
/// `deadline` leaves no time for another route.
pub async fn deliver(
    transport: &dyn RouteTransport,
    routes: &[Route],
    timeout: Duration,
    deadline: Deadline,
    sender: &str,
    recipients: &[String],
    raw: &[u8],
) -> DeliveryReport {
    let mut report = DeliveryReport {
        pending: recipients.to_vec(),
        ..Default::default()
    };
    for (i, route) in routes.iter().enumerate() {
        if report.pending.is_empty() {
            break;
        }
        // Tokio's clock (the same as std's outside tests with paused time).
        let now = tokio::time::Instant::now().into_std();
        if !deadline.allows(now, MIN_ROUTE_TIME) {
            report.errors.push(format!(
                "route {} ({}:{}) not tried: no time left in this run (it is tried at the next)",
                i + 1,
                route.host,
                route.port
            ));
            break;
        }
        report.routes_tried += 1;
        let step = deadline.step(now, timeout);
        let exchange = transport.attempt(route, step, sender, &report.pending, raw);
        let results = match deadline.left(now) {
            None => exchange.await,
            Some(left) => match tokio::time::timeout(left, exchange).await {
                Ok(r) => r,
                Err(_) => vec![
                    RcptResult::Deferred(format!(
                        "no final answer within the {} s left in this run",
                        left.as_secs()
                    ));
                    report.pending.len()
                ],
            },
        };
        let mut still = Vec::new();
        let mut reason = None;
        for (rcpt, result) in
            report
                .pending
                .iter()
                .zip(
                    results
                        .into_iter()
                        .chain(std::iter::repeat(RcptResult::Deferred(
                            "no answer for this recipient".into(),
                        ))),
                )
        {
            match result {
                RcptResult::Delivered => report.delivered.push(rcpt.clone()),
                RcptResult::Rejected(r) => report.rejected.push((rcpt.clone(), r)),
                RcptResult::Deferred(r) => {
                    reason.get_or_insert(r);
                    still.push(rcpt.clone());
                }
            }
        }
        if let Some(r) = reason {
            report.errors.push(format!(
                "route {} ({}:{}): {r}",
                i + 1,
                route.host,
                route.port
            ));
        }
        report.pending = still;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::RouteTls;
    use crate::domain::monitoring::DeliveryOutcome;
    use async_trait::async_trait;
    use std::sync::Mutex;

    type Answer = Box<dyn Fn(&str) -> RcptResult + Send + Sync>;

    /// Answers per route from a table; records who was tried where.
    struct Table {
        answers: Vec<Answer>,
        calls: Mutex<Vec<(u16, Vec<String>)>>,
    }

    #[async_trait]
    impl RouteTransport for Table {
        async fn attempt(
            &self,
            route: &Route,
            _t: Duration,
            _s: &str,
            rcpts: &[String],
            _raw: &[u8],
        ) -> Vec<RcptResult> {
            self.calls
                .lock()
                .unwrap()
                .push((route.port, rcpts.to_vec()));
            let f = &self.answers[route.port as usize];
            rcpts.iter().map(|r| f(r)).collect()
        }
    }

    fn routes(n: u16) -> Vec<Route> {
        (0..n)
            .map(|p| Route {
                host: "127.0.0.1".into(),
                port: p,
                tls: RouteTls::None,
            })
            .collect()
    }

    fn rcpts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    async fn run(answers: Vec<Answer>, r: &[&str]) -> (DeliveryReport, Vec<(u16, Vec<String>)>) {
        let n = answers.len() as u16;
        let t = Table {
            answers,
            calls: Mutex::new(vec![]),
        };
        let rep = deliver(
            &t,
            &routes(n),
            Duration::from_secs(1),
            Deadline::NONE,
            "s@x.test",
            &rcpts(r),
            b"x",
        )
        .await;
        (rep, t.calls.into_inner().unwrap())
    }

    #[tokio::test]
    async fn first_route_takes_it() {
        let (rep, calls) = run(
            vec![
                Box::new(|_| RcptResult::Delivered),
                Box::new(|_| panic!("not tried")),
            ],
            &["a@o.test", "b@o.test"],
        )
        .await;
        assert_eq!(rep.delivered.len(), 2);
        assert!(rep.is_done());
        assert_eq!(rep.outcome(), DeliveryOutcome::Accepted);
        assert_eq!(calls.len(), 1);
    }

    #[tokio::test]
    async fn failover_carries_only_what_is_left() {
        let (rep, calls) = run(
            vec![
                Box::new(|r| {
                    if r.starts_with('a') {
                        RcptResult::Delivered
                    } else {
                        RcptResult::Deferred("451 busy".into())
                    }
                }),
                Box::new(|_| RcptResult::Delivered),
            ],
            &["a@o.test", "b@o.test"],
        )
        .await;
        assert_eq!(rep.delivered, rcpts(&["a@o.test", "b@o.test"]));
        assert_eq!(calls[1].1, rcpts(&["b@o.test"]));
        assert_eq!(rep.errors.len(), 1);
    }

    #[tokio::test]
    async fn a_5xx_is_final_for_that_recipient_only() {
        let (rep, calls) = run(
            vec![
                Box::new(|r| {
                    if r.starts_with('a') {
                        RcptResult::Rejected("550 no such user".into())
                    } else {
                        RcptResult::Delivered
                    }
                }),
                Box::new(|_| panic!("the route did not fail")),
            ],
            &["a@o.test", "b@o.test"],
        )
        .await;
        assert_eq!(
            rep.rejected,
            vec![("a@o.test".to_string(), "550 no such user".to_string())]
        );
        assert_eq!(rep.delivered, rcpts(&["b@o.test"]));
        assert_eq!(calls.len(), 1);
        assert_eq!(rep.outcome(), DeliveryOutcome::Accepted);
    }

    #[tokio::test]
    async fn all_routes_failed() {
        let (rep, calls) = run(
            vec![
                Box::new(|_| RcptResult::Deferred("connection refused".into())),
                Box::new(|_| RcptResult::Deferred("timeout".into())),
            ],
            &["a@o.test"],
        )
        .await;
        assert_eq!(rep.outcome(), DeliveryOutcome::AllRoutesFailed);
        assert_eq!(rep.pending, rcpts(&["a@o.test"]));
        assert_eq!(calls.len(), 2);
        assert!(rep.last_error().unwrap().contains("route 2"));
    }

    /// A server that never answers: the route's exchange only ends when the step timeout it
    /// was given ends.
    struct Hangs {
        steps: Mutex<Vec<Duration>>,
    }

    #[async_trait]
    impl RouteTransport for Hangs {
        async fn attempt(
            &self,
            _route: &Route,
            t: Duration,
            _s: &str,
            rcpts: &[String],
            _raw: &[u8],
        ) -> Vec<RcptResult> {
            self.steps.lock().unwrap().push(t);
            // Answers nothing for thirty steps' worth, as a server that hangs at each of a
            // long transaction's commands would, then gives up on its own.
            tokio::time::sleep(t * 30).await;
            vec![RcptResult::Deferred("timed out".into()); rcpts.len()]
        }
    }

    #[tokio::test]
    async fn a_hanging_server_ends_inside_the_deadline_and_counts_as_a_failure() {
        let hangs = Hangs {
            steps: Mutex::new(vec![]),
        };
        let start = tokio::time::Instant::now();
        let deadline = Deadline::within(start.into_std(), Duration::from_millis(1500));
        let rep = deliver(
            &hangs,
            &routes(3),
            Duration::from_secs(1),
            deadline,
            "s@x.test",
            &rcpts(&["a@o.test"]),
            b"x",
        )
        .await;
        let steps = hangs.steps.into_inner().unwrap();
        // Route 1 takes its 1 s steps but is cut at 1.5 s; too little is left for route 2 or 3.
        assert_eq!(steps, vec![Duration::from_secs(1)]);
        // Not a timing figure: without the cut the exchange alone would take 30 s.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(rep.pending, rcpts(&["a@o.test"]));
        assert_eq!(rep.routes_tried, 1);
        assert_eq!(rep.outcome(), DeliveryOutcome::AllRoutesFailed);
        assert!(
            rep.errors
                .iter()
                .any(|e| e.contains("not tried: no time left")),
            "{:?}",
            rep.errors
        );
    }

    #[tokio::test]
    async fn no_route_is_started_once_the_time_is_up() {
        let (hangs, start) = (
            Hangs {
                steps: Mutex::new(vec![]),
            },
            tokio::time::Instant::now().into_std(),
        );
        let rep = deliver(
            &hangs,
            &routes(2),
            Duration::from_secs(20),
            Deadline::at(start),
            "s@x.test",
            &rcpts(&["a@o.test"]),
            b"x",
        )
        .await;
        assert!(hangs.steps.into_inner().unwrap().is_empty());
        assert_eq!(rep.routes_tried, 0);
        assert_eq!(rep.pending, rcpts(&["a@o.test"]));
    }
}
