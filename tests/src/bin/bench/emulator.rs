//! A minimal AWS Lambda Runtime API on loopback, to run the real function binaries the way
//! Lambda does (one invocation at a time per process) and time them from outside: the wall
//! time of each invocation as Lambda bills it (from handing over the event to the function's
//! next poll) and the CPU time the process used meanwhile.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

struct Shared {
    events: Mutex<mpsc::Receiver<(String, String)>>,
    pending: Pending,
    /// How many times the function has asked for work, and when it last did: a poll ends the
    /// invocation before it (Lambda bills up to it) and the first one ends initialisation.
    polls: watch::Sender<(u64, Instant)>,
}

/// One function process behind its own Runtime API.
pub struct Function {
    events: mpsc::Sender<(String, String)>,
    shared: Arc<Shared>,
    child: tokio::process::Child,
    pub started_at: Instant,
}

async fn serve(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.method() == Method::GET && path.ends_with("/invocation/next") {
        shared
            .polls
            .send_modify(|(polls, at)| (*polls, *at) = (*polls + 1, Instant::now()));
        let next = shared.events.lock().await.recv().await;
        let Some((id, event)) = next else {
            return Ok(reply(StatusCode::GONE, String::new()));
        };
        let mut response = reply(StatusCode::OK, event);
        let headers = response.headers_mut();
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + 15_000;
        headers.insert("lambda-runtime-aws-request-id", id.parse().expect("header"));
        headers.insert(
            "lambda-runtime-deadline-ms",
            deadline.to_string().parse().expect("header"),
        );
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench"
                .parse()
                .expect("header"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000"
                .parse()
                .expect("header"),
        );
        return Ok(response);
    }
    if request.method() == Method::POST && (path.ends_with("/response") || path.ends_with("/error"))
    {
        let id = path.split('/').nth(4).unwrap_or_default().to_owned();
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if let Some(waiter) = shared.pending.lock().await.remove(&id) {
            let _ = waiter.send(String::from_utf8_lossy(&body).into_owned());
        }
        return Ok(reply(StatusCode::ACCEPTED, String::new()));
    }
    Ok(reply(StatusCode::NOT_FOUND, String::new()))
}

impl Function {
    /// Starts `binary` with `env` against a fresh Runtime API.
    pub async fn start(binary: &Path, env: &HashMap<String, String>) -> Function {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let (events, receiver) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            events: Mutex::new(receiver),
            pending: Arc::default(),
            polls: watch::Sender::new((0, Instant::now())),
        });
        let server_state = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = server_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let started_at = Instant::now();
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Function {
            events,
            shared,
            child,
            started_at,
        }
    }

    /// Hands one event to the function and waits for its answer and its next poll.
    pub async fn invoke(&self, event: String) -> Invocation {
        let mut polls = self.shared.polls.subscribe();
        // The function is polling already (it was ready, or it polled after the last one).
        let (polled, _) = *polls.borrow_and_update();
        let before = self.cpu();
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = oneshot::channel();
        self.shared.pending.lock().await.insert(id.clone(), sender);
        let start = Instant::now();
        self.events
            .send((id, event))
            .await
            .expect("function is polling");
        let body = tokio::time::timeout(Duration::from_secs(30), receiver)
            .await
            .expect("function answered in time")
            .expect("response");
        let wall = start.elapsed();
        let next_poll = tokio::time::timeout(
            Duration::from_secs(30),
            polls.wait_for(|(polls, _)| *polls > polled),
        )
        .await
        .expect("function polled again in time")
        .expect("runtime API running")
        .1;
        // The process now waits in its poll: what it used so far belongs to this invocation.
        let used = self.cpu().zip(before).map(|(after, before)| after - before);
        Invocation {
            response: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            wall,
            billed: next_poll.saturating_duration_since(start),
            cpu: used,
        }
    }

    /// Waits for the first poll (the end of initialisation); returns the time from process
    /// start to it and the CPU the process used by then.
    pub async fn ready(&self) -> (Duration, Option<Cpu>) {
        let mut polls = self.shared.polls.subscribe();
        let (_, at) = *tokio::time::timeout(
            Duration::from_secs(30),
            polls.wait_for(|(polls, _)| *polls > 0),
        )
        .await
        .expect("function initialised in time")
        .expect("runtime API running");
        (at.saturating_duration_since(self.started_at), self.cpu())
    }

    /// The CPU the process has used so far, when it can be read.
    pub fn cpu(&self) -> Option<Cpu> {
        Cpu::of(self.child.id()?)
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

/// One invocation as seen from outside the process.
pub struct Invocation {
    pub response: serde_json::Value,
    /// From handing over the event to the response.
    pub wall: Duration,
    /// From handing over the event to the next poll: the duration Lambda bills.
    pub billed: Duration,
    /// The CPU the process used for it.
    pub cpu: Option<Cpu>,
}

/// CPU used by a process (all its threads, exited ones included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// User + system time, from the process's CPU-time clock (nanoseconds).
    pub time: Duration,
    /// The same split into user and system time, in clock ticks (10 ms): too coarse for one
    /// call, exact enough summed over many.
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Page faults served without I/O (a page mapped and zeroed, for instance).
    pub minor_faults: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            time: self.time.saturating_sub(earlier.time),
            user_ticks: self.user_ticks.saturating_sub(earlier.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(earlier.system_ticks),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

impl Cpu {
    fn of(pid: u32) -> Option<Cpu> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (in parentheses): minflt is field 10, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Cpu {
            time: process_cpu_time(pid)?,
            user_ticks: field(14)?,
            system_ticks: field(15)?,
            minor_faults: field(10)?,
        })
    }
}

/// The CPU time of another process, from its CPU-time clock (`clock_getcpuclockid`), which
/// counts every thread, exited ones included, to the nanosecond.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock id.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the time.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}
