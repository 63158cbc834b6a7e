//! A stand-in for the Lambda runtime API (`AWS_LAMBDA_RUNTIME_API`), so that a function's own
//! binary runs as Lambda runs it: it asks for work, gets an event with its request id and
//! deadline, answers or reports an error. The tests start the binary as a process of its own
//! and may kill it (by its PID) in the middle of an invocation, as Lambda ends a container.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// What became of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

#[derive(Clone)]
struct Shared {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value, u64)>>>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
}

/// The runtime API on a port of its own, and the function process using it.
pub struct LambdaProcess {
    send: mpsc::UnboundedSender<(String, Value, u64)>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    child: Option<Child>,
    server: tokio::task::JoinHandle<()>,
}

async fn next(State(s): State<Shared>) -> (HeaderMap, String) {
    let (id, event, deadline_ms) = match s.events.lock().await.recv().await {
        Some(e) => e,
        // No more work: hold the poll, as Lambda freezes an idle container.
        None => std::future::pending().await,
    };
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    };
    put(&mut h, "lambda-runtime-aws-request-id", id);
    put(
        &mut h,
        "lambda-runtime-deadline-ms",
        deadline_ms.to_string(),
    );
    put(
        &mut h,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:continuity-inbound".into(),
    );
    put(
        &mut h,
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".into(),
    );
    (h, event.to_string())
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: String) -> &'static str {
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    s.answers
        .lock()
        .expect("answers")
        .insert(id, Answer::Response(v));
    "{}"
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: String) -> &'static str {
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    s.answers
        .lock()
        .expect("answers")
        .insert(id, Answer::Error(v));
    "{}"
}

impl LambdaProcess {
    /// Starts `binary` (a file in the workspace's target directory, built by the test command's
    /// `cargo build --workspace --all-targets`) with `env` and the runtime API.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let (send, recv) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(tokio::sync::Mutex::new(recv)),
            answers: Arc::new(Mutex::new(HashMap::new())),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime API");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut cmd = Command::new(target_binary(binary));
        cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("continuity-{binary}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/continuity-{binary}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        LambdaProcess {
            send,
            answers: shared.answers,
            child: Some(child),
            server,
        }
    }

    /// Hands the function `event` with `timeout` to run; returns the request id.
    pub fn invoke(&self, event: Value, timeout: Duration) -> String {
        let id = crate::unique("req");
        let deadline = std::time::SystemTime::now() + timeout;
        let ms = deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.send
            .send((id.clone(), event, ms))
            .expect("runtime API running");
        id
    }

    /// The answer to `id`, waiting up to `wait`.
    pub async fn answer(&self, id: &str, wait: Duration) -> Option<Answer> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            if let Some(a) = self.answers.lock().expect("answers").get(id).cloned() {
                return Some(a);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the process at once (SIGKILL to its PID), as Lambda ends a container mid-work.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A binary of the workspace, beside the test executables (`target/debug/deps/..` -> `target/debug/`).
fn target_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --all-targets` (the test command does)",
        path.display()
    );
    path
}
