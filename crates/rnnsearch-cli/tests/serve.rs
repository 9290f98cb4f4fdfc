//! End-to-end tests of `rnnsearch serve` on an ephemeral loopback port: answers equal to the
//! CLI's, concurrent clients, the 503 of a full queue, the limits, bad requests, graceful
//! shutdown with requests in flight, and the page at `/` in a headless browser.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A tiny dates run, trained once per test (long enough to translate into dates).
fn train_run(dir: &Path) -> PathBuf {
    tiny_dates_run_with(dir, "epochs = 100\nmax_steps = 300\nvalid_every = 300")
}

/// A running server and its address.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(run_dir: &Path, extra: &[&str]) -> Server {
        let mut child = rnnsearch()
            .args([
                "serve",
                "--threads",
                "1",
                "--addr",
                "127.0.0.1:0",
                "--model",
            ])
            .arg(run_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap() > 0 {
            if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                addr = Some(rest.to_string());
                break;
            }
            line.clear();
        }
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Server {
            child,
            addr: addr.expect("the server says where it listens"),
        }
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status, the headers (lowercase names) and the body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

fn post(addr: &str, body: &Value) -> (u16, Value) {
    let (status, _, body) = http(addr, "POST", "/translate", body.to_string().as_bytes());
    (
        status,
        serde_json::from_slice(&body).expect("a JSON answer"),
    )
}

fn texts(answer: &Value) -> Vec<String> {
    answer["translations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect()
}

/// What `rnnsearch translate` gives for `lines` with the run's own settings.
fn cli_translations(run_dir: &Path, lines: &[&str]) -> Vec<String> {
    let dir = run_dir.parent().unwrap();
    let input = dir.join("cli-input.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = run(rnnsearch()
        .args(["translate", "--threads", "1", "--model"])
        .arg(run_dir)
        .arg("--input")
        .arg(&input));
    assert!(out.status.success());
    stdout(&out).lines().map(str::to_string).collect()
}

const SOURCES: [&str; 6] = [
    "9 May 2018",
    "wednesday, 3 january 1990",
    "09.05.2018",
    "Saturday, 23 November 1919",
    "1 Jan 2000",
    "31.12.1999",
];

#[test]
fn answers_concurrent_clients_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = train_run(dir.path());
    let expected = cli_translations(&run_dir, &SOURCES);
    let server = Server::start(&run_dir, &[]);
    let (status, _, body) = http(&server.addr, "GET", "/health", b"");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["beam"], 3, "the run's test_beam");

    let clients: Vec<_> = (0..8)
        .map(|c| {
            let addr = server.addr.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                for r in 0..5 {
                    let n = 1 + (c + r) % SOURCES.len();
                    let (status, answer) = post(&addr, &json!({ "text": &SOURCES[..n] }));
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(texts(&answer), expected[..n]);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let (status, answer) = post(
        &server.addr,
        &json!({ "text": ["9 May 2018"], "beam": 3, "nbest": 2, "alignments": true }),
    );
    assert_eq!(status, 200);
    let first = &answer["translations"][0];
    assert_eq!(first["nbest"].as_array().unwrap().len(), 2);
    assert!(first["alignment"]["pharaoh"].is_string());
    let (status, _, page) = http(&server.addr, "GET", "/", b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<form"));
}

#[test]
fn bad_requests_get_errors_that_name_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = train_run(dir.path());
    let server = Server::start(
        &run_dir,
        &[
            "--max-lines",
            "3",
            "--max-line-chars",
            "20",
            "--max-body-bytes",
            "400",
        ],
    );
    let addr = &server.addr;
    let (status, answer) = post(addr, &json!({ "text": ["a", "b", "c", "d"] }));
    assert_eq!((status, answer["limit"].as_str()), (413, Some("max_lines")));
    let (status, answer) = post(addr, &json!({ "text": ["x".repeat(21)] }));
    assert_eq!(
        (status, answer["limit"].as_str()),
        (400, Some("max_line_chars"))
    );
    let (status, answer) = post(addr, &json!({ "text": ["y".repeat(500)] }));
    assert_eq!(
        (status, answer["limit"].as_str()),
        (413, Some("max_body_bytes"))
    );
    let (status, answer) = post(addr, &json!({ "text": ["a"], "beam": 0 }));
    assert_eq!((status, answer["limit"].as_str()), (400, Some("max_beam")));
    let (status, _) = post(addr, &json!({ "text": ["a"], "beam": 2, "nbest": 3 }));
    assert_eq!(status, 400);
    let (status, _) = post(addr, &json!({ "lines": ["a"] }));
    assert_eq!(status, 400, "unknown or missing fields");
    for body in [&b"{not json"[..], b"{\"text\": [\"\xff\"]}"] {
        let (status, _, answer) = http(addr, "POST", "/translate", body);
        assert_eq!(status, 400);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid request"));
    }
    let (status, _, _) = http(addr, "GET", "/nowhere", b"");
    assert_eq!(status, 404);
    // The server is still up after all of that.
    let (status, answer) = post(addr, &json!({ "text": ["9 May 2018"] }));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = train_run(dir.path());
    let server = Server::start(&run_dir, &["--queue", "1", "--max-lines", "400"]);
    let lines: Vec<String> = (0..300)
        .map(|i| format!("{} May {}", 1 + i % 28, 1900 + i))
        .collect();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr.clone();
            let lines = lines.clone();
            std::thread::spawn(move || {
                let (status, head, _) = http(
                    &addr,
                    "POST",
                    "/translate",
                    json!({ "text": lines }).to_string().as_bytes(),
                );
                (status, head)
            })
        })
        .collect();
    let results: Vec<(u16, String)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let busy: Vec<&(u16, String)> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(
        !busy.is_empty(),
        "16 large requests at once overflow a queue of 1"
    );
    assert!(busy.iter().all(|(_, head)| head.contains("retry-after: 1")));
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 503));
    assert!(results.iter().any(|(s, _)| *s == 200));
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = train_run(dir.path());
    let mut server = Server::start(&run_dir, &["--max-lines", "20000"]);
    let lines: Vec<String> = (0..20000)
        .map(|i| format!("{} May {}", 1 + i % 28, 1900 + i % 200))
        .collect();
    let addr = server.addr.clone();
    let in_flight = std::thread::spawn(move || {
        let answer = post(&addr, &json!({ "text": lines }));
        (answer, std::time::Instant::now())
    });
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    let signalled = std::time::Instant::now();
    let ((status, answer), answered) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["translations"].as_array().unwrap().len(), 20000);
    assert!(
        answered > signalled,
        "the request was still in flight at SIGTERM"
    );
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
}

/// The page at `/` in a real headless browser: it loads the model's settings, translates the
/// sentence given in its address and shows the translation.
#[test]
fn the_page_translates_in_a_headless_browser() {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| PathBuf::from("/usr/bin").join(name))
        .find(|path| path.exists())
    else {
        eprintln!("skipped: no headless browser (install Debian's chromium; .ci/run does)");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium: the browser test must run there"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run_dir = train_run(dir.path());
    let expected = cli_translations(&run_dir, &["9 May 2018"]);
    let server = Server::start(&run_dir, &[]);
    let profile = dir.path().join("profile");
    let url = format!("http://{}/?text=9%20May%202018", server.addr);
    let out = run(std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url));
    assert!(out.status.success());
    let dom = stdout(&out);
    assert!(
        dom.contains("data-done=\"yes\""),
        "the page finished: {dom}"
    );
    let item = format!("<li class=\"translation\">{}</li>", expected[0]);
    assert!(dom.contains(&item), "{item} in {dom}");
    assert!(dom.contains("beam 3"), "the model's settings are shown");
}
