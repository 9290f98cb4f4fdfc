//! Parity with sacreBLEU 2.6.0's statistical tests (tests/fixtures/significance.json,
//! written by scripts/make-bleu-fixtures.py): bootstrap confidence intervals of
//! one system and the paired bootstrap and approximate randomization tests of
//! several. p-values are counts, so they must be equal; means and intervals
//! agree to 1e-9, and the printed lines exactly.

use std::path::PathBuf;

use rnnsearch_bleu::significance::{
    bootstrap_confidence, paired_test, Confidence, PairedDraws, PairedTest,
};
use rnnsearch_bleu::{
    read_lines, AnyMetric, Bleu, BleuOptions, Chrf, ChrfOptions, SmoothMethod, Ter, TerOptions,
    VERSION,
};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/fixtures")
        .join(name)
}

fn load() -> Value {
    let text = std::fs::read_to_string(fixture("significance.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn metric(key: &str) -> AnyMetric {
    match key {
        "bleu" | "BLEU" => AnyMetric::new(Bleu::new(BleuOptions::default()).unwrap()),
        "bleu-floor-lc" => AnyMetric::new(
            Bleu::new(BleuOptions {
                smooth_method: SmoothMethod::Floor,
                lowercase: true,
                ..BleuOptions::default()
            })
            .unwrap(),
        ),
        "chrf" => AnyMetric::new(Chrf::new(ChrfOptions::default()).unwrap()),
        "chrf++" | "chrF2++" => AnyMetric::new(Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap()),
        "chrf-eps" => AnyMetric::new(
            Chrf::new(ChrfOptions {
                eps_smoothing: true,
                ..ChrfOptions::default()
            })
            .unwrap(),
        ),
        "ter" | "TER" => AnyMetric::new(Ter::new(TerOptions::default()).unwrap()),
        "ter-norm" => AnyMetric::new(
            Ter::new(TerOptions {
                normalized: true,
                case_sensitive: true,
                ..TerOptions::default()
            })
            .unwrap(),
        ),
        other => panic!("unknown metric {other}"),
    }
}

fn set_streams(set: &str, nrefs: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let hyps = read_lines(fixture(&format!("{set}.hyp.txt"))).unwrap();
    let refs = (1..=nrefs)
        .map(|k| read_lines(fixture(&format!("{set}.ref{k}.txt"))).unwrap())
        .collect();
    (hyps, refs)
}

fn close(got: f64, want: &Value, what: &str) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= 1e-9,
        "{what}: got {got}, sacreBLEU {want}"
    );
}

/// sacreBLEU's text line of a score with its interval: the plain line with
/// ` (μ = M ± C)` after the score.
fn with_interval(line: &str, c: Confidence) -> String {
    let (head, tail) = line.split_once(" = ").unwrap();
    let (score, rest) = tail.split_once(' ').unwrap_or((tail, ""));
    let mut out = format!("{head} = {score} (μ = {:.2} ± {:.2})", c.mean, c.ci);
    if !rest.is_empty() {
        out.push(' ');
        out.push_str(rest);
    }
    out
}

#[test]
fn confidence_intervals_match_sacrebleu() {
    let data = load();
    let cases = data["confidence"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for case in cases {
        let key = case["metric"].as_str().unwrap();
        let nrefs = case["nrefs"].as_u64().unwrap() as usize;
        let (n, seed) = (case["n"].as_u64().unwrap(), case["seed"].as_u64().unwrap());
        let what = format!("{} {nrefs} refs {key} n={n} seed={seed}", case["set"]);
        let (hyps, refs) = set_streams(case["set"].as_str().unwrap(), nrefs);
        let mut m = metric(key);
        let rows = m.stat_rows(&hyps, &refs).unwrap();
        let score = m.score_value(&rows.sum());
        close(score, &case["score"], &what);
        let c = bootstrap_confidence(&m, &rows, n as usize, seed);
        close(c.mean, &case["mean"], &format!("{what} mean"));
        close(c.ci, &case["ci"], &format!("{what} ci"));
        let signature = m
            .signature(nrefs)
            .with_test(Some(n as usize), None, &seed.to_string());
        let want_sig = case["signature"].as_str().unwrap();
        assert_eq!(
            signature.to_string(),
            want_sig.replace("{VERSION}", VERSION)
        );
        // The printed line: the metric's own line with μ ± CI after the score.
        let want_text = case["text"].as_str().unwrap().replace("{VERSION}", VERSION);
        let plain = want_text.replacen(&format!(" (μ = {:.2} ± {:.2})", c.mean, c.ci), "", 1);
        assert_eq!(with_interval(&plain, c), want_text, "{what}");
    }
}

#[test]
fn paired_tests_match_sacrebleu() {
    let data = load();
    let meta = &data["meta"];
    let refs = vec![read_lines(fixture(meta["ref"].as_str().unwrap())).unwrap()];
    let systems: Vec<Vec<String>> = meta["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| read_lines(fixture(f.as_str().unwrap())).unwrap())
        .collect();
    for case in data["paired"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let test = match case["test"].as_str().unwrap() {
            "bs" => PairedTest::Bootstrap(n),
            _ => PairedTest::Randomization(n),
        };
        let seed = case["seed"].as_u64().unwrap();
        for (name, results) in case["results"].as_object().unwrap() {
            let mut m = metric(name);
            let rows: Vec<_> = systems
                .iter()
                .map(|hyps| m.stat_rows(hyps, &refs).unwrap())
                .collect();
            let want = results.as_array().unwrap();
            let draws = PairedDraws::new(test, seed, rows[0].len());
            let got_all = paired_test(&m, &rows, &draws);
            assert_eq!(got_all.len(), want.len());
            for (k, got) in got_all.iter().enumerate() {
                let what = format!("{test:?} {name} system {k}");
                close(got.score, &want[k]["score"], &what);
                assert_eq!(got.p_value, want[k]["p_value"].as_f64(), "{what} p");
                match got.confidence {
                    Some(c) => {
                        close(c.mean, &want[k]["mean"], &format!("{what} mean"));
                        close(c.ci, &want[k]["ci"], &format!("{what} ci"));
                    }
                    None => assert!(want[k]["mean"].is_null(), "{what}"),
                }
            }
            let signature = m
                .signature(1)
                .with_test(
                    (test.key() == "bs").then_some(n),
                    (test.key() == "ar").then_some(n),
                    &seed.to_string(),
                )
                .to_string();
            let want_sig = case["signatures"][name].as_str().unwrap();
            assert_eq!(signature, want_sig.replace("{VERSION}", VERSION));
        }
    }
}
