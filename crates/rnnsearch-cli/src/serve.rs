//! `rnnsearch serve`: a trained model behind HTTP/JSON, the way OpenNMT-py's REST server,
//! marian-server and fairseq-interactive serve theirs.
//!
//! - `POST /translate` takes `{"text": [...], "beam": K, "alpha": A, "nbest": N,
//!   "alignments": true}` (all but `text` optional) and answers the translations in order.
//! - `GET /health` answers `{"status": "ok", ...}`; `GET /` a page to try the model by hand.
//!
//! One worker thread owns the model. Requests wait in a bounded queue; the worker takes
//! everything waiting (up to the token budget), translates requests with the same search
//! settings together in the same token-budget batches as `translate`, and answers each. A full
//! queue is a 503 with `Retry-After`, never an unbounded wait; a request over a limit is a 413
//! or 400 whose JSON names the limit. SIGTERM or Ctrl-C stops accepting, lets what is in
//! flight finish, and exits 0.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rnnsearch_model::SearchConfig;
use rnnsearch_train::Translation;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::translate::{pharaoh, Loaded, ModelArgs};

/// Arguments of `rnnsearch serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (loopback by default; port 0 picks a free one)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Requests that may wait for the model; more are answered 503
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// Most lines in one request (413 above)
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_lines: usize,
    /// Most bytes in one request body (413 above)
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most characters in one line (400 above)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    max_line_chars: usize,
    /// Largest beam a request may ask for (400 above)
    #[arg(long, value_name = "K", default_value_t = 32)]
    max_beam: usize,
}

/// The limits a request is checked against.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_lines: usize,
    max_body_bytes: usize,
    max_line_chars: usize,
    max_beam: usize,
}

/// The body of `POST /translate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    text: Vec<String>,
    beam: Option<usize>,
    alpha: Option<f64>,
    nbest: Option<usize>,
    #[serde(default)]
    alignments: bool,
}

/// How a group of requests is searched; requests with equal settings share batches.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    beam: usize,
    alpha: f64,
    nbest: usize,
    alignments: bool,
}

/// A request waiting for the model.
struct Job {
    lines: Vec<String>,
    settings: Settings,
    reply: oneshot::Sender<Vec<Value>>,
}

/// What the handlers share.
struct Shared {
    jobs: SyncSender<Job>,
    defaults: Settings,
    limits: Limits,
    model: String,
}

/// Runs `rnnsearch serve` until SIGTERM or Ctrl-C.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if args.queue == 0 || args.max_lines == 0 {
        bail!("--queue and --max-lines must be at least 1");
    }
    let (jobs, queue) = mpsc::sync_channel::<Job>(args.queue);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(Settings, String)>>();
    let model_args = args.model.clone();
    let worker = std::thread::spawn(move || worker(model_args, queue, ready_tx));
    let (defaults, model) = ready_rx
        .recv()
        .context("the model worker stopped before it was ready")??;
    let shared = Arc::new(Shared {
        jobs,
        defaults,
        limits: Limits {
            max_lines: args.max_lines,
            max_body_bytes: args.max_body_bytes,
            max_line_chars: args.max_line_chars,
            max_beam: args.max_beam,
        },
        model,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let served = runtime.block_on(serve(args.addr, shared));
    // With the runtime go the last handlers and the queue's sender: the worker drains and stops.
    drop(runtime);
    served?;
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the model worker panicked"))?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn serve(addr: SocketAddr, shared: Arc<Shared>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listening address")?;
    eprintln!("listening on http://{local}");
    let app = Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/translate", post(translate))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint", None) })
        // The handler reads the body up to its own limit, to answer in JSON.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("shutting down: finishing the requests in flight");
}

/// Why a request was refused: the status, what to tell the client, the limit it broke.
struct Refusal {
    status: StatusCode,
    message: String,
    limit: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>, limit: Option<&'static str>) -> Self {
        Refusal {
            status,
            message: message.into(),
            limit,
        }
    }

    fn response(&self) -> Response {
        error(self.status, &self.message, self.limit)
    }
}

/// A JSON error: `{"error": message, "limit": name}`.
fn error(status: StatusCode, message: &str, limit: Option<&str>) -> Response {
    let mut body = json!({ "error": message });
    if let Some(limit) = limit {
        body["limit"] = json!(limit);
    }
    (status, Json(body)).into_response()
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({
        "status": "ok",
        "model": shared.model,
        "beam": shared.defaults.beam,
        "alpha": shared.defaults.alpha,
    }))
    .into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("serve.html"))
}

async fn translate(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    // Read at most the limit: a larger body is refused before it is all in memory.
    let limit = shared.limits.max_body_bytes;
    let body: Bytes = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(body) => body,
        Err(_) => {
            let message = format!("the body has more than {limit} bytes (or could not be read)");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &message,
                Some("max_body_bytes"),
            );
        }
    };
    let (lines, settings) = match check(&shared, &body) {
        Ok(ok) => ok,
        Err(refusal) => return refusal.response(),
    };
    let (reply, answer) = oneshot::channel();
    let job = Job {
        lines,
        settings,
        reply,
    };
    match shared.jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the queue is full; retry later",
                Some("queue"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
        Err(TrySendError::Disconnected(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down", None)
        }
    }
    match answer.await {
        Ok(translations) => Json(json!({
            "translations": translations,
            "model": shared.model,
            "beam": settings.beam,
            "alpha": settings.alpha,
        }))
        .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model worker stopped",
            None,
        ),
    }
}

/// Parses and checks a request against the limits.
fn check(shared: &Shared, body: &[u8]) -> Result<(Vec<String>, Settings), Refusal> {
    let limits = &shared.limits;
    let request: Request = serde_json::from_slice(body).map_err(|e| {
        let message = format!(
            "invalid request: {e} (send {{\"text\": [\"a sentence\", ...]}} as UTF-8 JSON)"
        );
        Refusal::new(StatusCode::BAD_REQUEST, message, None)
    })?;
    if request.text.len() > limits.max_lines {
        let message = format!(
            "{} lines; at most {} per request",
            request.text.len(),
            limits.max_lines
        );
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            message,
            Some("max_lines"),
        ));
    }
    if let Some((i, line)) = request
        .text
        .iter()
        .enumerate()
        .find(|(_, l)| l.chars().count() > limits.max_line_chars)
    {
        let message = format!(
            "line {} has {} characters; at most {}",
            i + 1,
            line.chars().count(),
            limits.max_line_chars
        );
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            message,
            Some("max_line_chars"),
        ));
    }
    let d = shared.defaults;
    let beam = request.beam.unwrap_or(d.beam);
    if beam == 0 || beam > limits.max_beam {
        let message = format!("beam {beam}: between 1 and {}", limits.max_beam);
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            message,
            Some("max_beam"),
        ));
    }
    let nbest = request.nbest.unwrap_or(1);
    if nbest == 0 || nbest > beam {
        let message = format!("nbest {nbest}: between 1 and the beam ({beam})");
        return Err(Refusal::new(StatusCode::BAD_REQUEST, message, None));
    }
    let alpha = request.alpha.unwrap_or(d.alpha);
    if !alpha.is_finite() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "alpha must be finite",
            None,
        ));
    }
    let lines = request
        .text
        .into_iter()
        .map(|l| l.replace(['\n', '\r'], " "))
        .collect();
    Ok((
        lines,
        Settings {
            beam,
            alpha,
            nbest,
            alignments: request.alignments,
        },
    ))
}

/// The model's thread: loads the run, says it is ready, then answers jobs until the queue's
/// senders are gone.
fn worker(args: ModelArgs, queue: Receiver<Job>, ready: mpsc::Sender<Result<(Settings, String)>>) {
    let loaded = match Loaded::new(&args, 1, false) {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let defaults = Settings {
        beam: loaded.search.beam,
        alpha: loaded.search.alpha,
        nbest: 1,
        alignments: false,
    };
    let model = args
        .model
        .iter()
        .map(|m| m.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    if ready.send(Ok((defaults, model))).is_err() {
        return;
    }
    let translator = loaded.translator();
    while let Ok(first) = queue.recv() {
        // Everything that is waiting, up to about one token budget, goes in this round.
        let mut round = vec![first];
        let mut words: usize = words_of(&round[0]);
        while words < loaded.batch_tokens {
            match queue.try_recv() {
                Ok(job) => {
                    words += words_of(&job);
                    round.push(job);
                }
                Err(_) => break,
            }
        }
        while !round.is_empty() {
            let settings = round[0].settings;
            let (group, rest): (Vec<Job>, Vec<Job>) =
                round.into_iter().partition(|j| j.settings == settings);
            round = rest;
            answer(&translator, &loaded, settings, group);
        }
    }
}

fn words_of(job: &Job) -> usize {
    job.lines
        .iter()
        .map(|l| l.split_whitespace().count() + 1)
        .sum()
}

/// Translates the lines of `jobs` together and sends each job its part.
fn answer(
    translator: &rnnsearch_train::Translator<'_>,
    loaded: &Loaded,
    settings: Settings,
    jobs: Vec<Job>,
) {
    let lines: Vec<String> = jobs.iter().flat_map(|j| j.lines.iter().cloned()).collect();
    let search = SearchConfig {
        beam: settings.beam,
        alpha: settings.alpha,
        nbest: settings.nbest,
        alignments: settings.alignments,
        ..loaded.search
    };
    let out = translator.translate(&lines, &search, loaded.batch_tokens, |_| {});
    let mut out = out.into_iter();
    for job in jobs {
        let part: Vec<Value> = out
            .by_ref()
            .take(job.lines.len())
            .map(|t| translation_json(loaded, settings, &t))
            .collect();
        // A client that went away no longer waits for its answer.
        let _ = job.reply.send(part);
    }
}

/// One translation as JSON: the best hypothesis and its score, the n-best list when asked
/// (with Moses/Marian's line as `moses`), the alignment when asked.
fn translation_json(loaded: &Loaded, settings: Settings, t: &Translation) -> Value {
    let vocab = &loaded.run.tgt_vocab;
    let best = &t.hypotheses[0];
    let mut value = json!({
        "text": vocab.decode(&best.tokens),
        "score": best.score,
    });
    if settings.nbest > 1 {
        value["nbest"] = t
            .hypotheses
            .iter()
            .map(|h| {
                let text = vocab.decode(&h.tokens);
                json!({ "text": text, "score": h.score })
            })
            .collect();
    }
    if settings.alignments {
        let source = loaded.run.src_vocab.pieces(&t.source_ids);
        let target = vocab.pieces(&best.tokens);
        value["alignment"] = json!({
            "pharaoh": pharaoh(&source, &target, best),
            "source": source,
            "target": target,
            "weights": best.alignment,
        });
    }
    value
}
