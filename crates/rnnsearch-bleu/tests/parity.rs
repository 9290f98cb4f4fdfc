//! Parity with sacreBLEU 2.6.0: every number in tests/fixtures/expected.json
//! (written by scripts/make-bleu-fixtures.py from sacreBLEU's Python API)
//! must be reproduced to 1e-6, and the printed lines exactly.

use std::path::PathBuf;

use rnnsearch_bleu::{
    read_lines, Bleu, BleuOptions, Chrf, ChrfOptions, Metric, SmoothMethod, Ter, TerOptions,
    TokenizerKind, VERSION,
};
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    // At run time: the target dir may be shared by checkouts at other paths.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/fixtures")
        .join(name)
}

fn load_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The hypotheses and the first `nrefs` reference streams of a set.
fn streams(meta: &Value, set: &str, nrefs: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let files = &meta["sets"][set];
    let hyps = read_lines(fixture(files["hyp"].as_str().unwrap())).unwrap();
    let refs = files["refs"].as_array().unwrap()[..nrefs]
        .iter()
        .map(|f| read_lines(fixture(f.as_str().unwrap())).unwrap())
        .collect();
    (hyps, refs)
}

fn version(s: &str) -> String {
    s.replace("{VERSION}", VERSION)
}

fn bleu_options(opts: &Value) -> BleuOptions {
    BleuOptions {
        tokenize: opts["tokenize"].as_str().unwrap().parse().unwrap(),
        lowercase: opts["lowercase"].as_bool().unwrap_or(false),
        smooth_method: opts["smooth_method"].as_str().unwrap().parse().unwrap(),
        smooth_value: opts["smooth_value"].as_f64(),
        effective_order: opts["effective_order"].as_bool().unwrap_or(false),
    }
}

fn chrf_options(opts: &Value) -> ChrfOptions {
    let d = ChrfOptions::default();
    let usize_or = |key: &str, default: usize| opts[key].as_u64().map_or(default, |v| v as usize);
    ChrfOptions {
        char_order: usize_or("char_order", d.char_order),
        word_order: usize_or("word_order", d.word_order),
        beta: opts["beta"].as_u64().map_or(d.beta, |v| v as u32),
        lowercase: opts["lowercase"].as_bool().unwrap_or(false),
        whitespace: opts["whitespace"].as_bool().unwrap_or(false),
        eps_smoothing: opts["eps_smoothing"].as_bool().unwrap_or(false),
    }
}

fn assert_close(got: f64, want: &Value, what: &str, worst: &mut f64) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: no number"));
    let diff = (got - want).abs();
    *worst = worst.max(diff);
    assert!(diff <= TOLERANCE, "{what}: got {got}, sacreBLEU {want}");
}

fn as_u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn check_bleu(case: &Value, hyps: &[String], refs: &[Vec<String>], worst: &mut f64) {
    let name = case["name"].as_str().unwrap();
    let mut bleu = Bleu::new(bleu_options(&case["options"])).unwrap();
    if case["level"] == "corpus" {
        let score = bleu.corpus_score(hyps, refs).unwrap();
        assert_close(score.score, &case["score"], name, worst);
        assert_eq!(score.counts.to_vec(), as_u64s(&case["counts"]), "{name}");
        assert_eq!(score.totals.to_vec(), as_u64s(&case["totals"]), "{name}");
        assert_eq!(Some(score.sys_len), case["sys_len"].as_u64(), "{name}");
        assert_eq!(Some(score.ref_len), case["ref_len"].as_u64(), "{name}");
        if let Some(sig) = case["signature"].as_str() {
            assert_eq!(score.signature.to_string(), version(sig), "{name}");
        }
        if let Some(text) = case["text"].as_str() {
            assert_eq!(score.to_string(), version(text), "{name}");
        }
        return;
    }
    let scores = case["scores"].as_array().unwrap();
    let tails = case["text_tails"].as_array();
    for (i, hyp) in hyps.iter().enumerate() {
        let seg_refs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
        let score = bleu.sentence_score(hyp, &seg_refs).unwrap();
        assert_close(
            score.score,
            &scores[i],
            &format!("{name} line {}", i + 1),
            worst,
        );
        assert_eq!(
            score.signature.to_string(),
            version(case["signature"].as_str().unwrap())
        );
        if let Some(tails) = tails {
            let line = score.to_string();
            let tail = line.split_once(" = ").unwrap().1;
            assert_eq!(tail, tails[i].as_str().unwrap(), "{name} line {}", i + 1);
        }
    }
}

fn check_chrf(case: &Value, hyps: &[String], refs: &[Vec<String>], worst: &mut f64) {
    let name = case["name"].as_str().unwrap();
    let mut chrf = Chrf::new(chrf_options(&case["options"])).unwrap();
    let signature = version(case["signature"].as_str().unwrap());
    if case["level"] == "corpus" {
        let score = chrf.corpus_score(hyps, refs).unwrap();
        assert_close(score.score, &case["score"], name, worst);
        assert_eq!(score.signature.to_string(), signature, "{name}");
        assert_eq!(
            score.to_string(),
            version(case["text"].as_str().unwrap()),
            "{name}"
        );
        return;
    }
    let scores = case["scores"].as_array().unwrap();
    for (i, hyp) in hyps.iter().enumerate() {
        let seg_refs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
        let score = chrf.sentence_score(hyp, &seg_refs).unwrap();
        assert_close(
            score.score,
            &scores[i],
            &format!("{name} line {}", i + 1),
            worst,
        );
        assert_eq!(score.signature.to_string(), signature, "{name}");
    }
}

fn ter_options(opts: &Value) -> TerOptions {
    let flag = |key: &str| opts[key].as_bool().unwrap_or(false);
    TerOptions {
        normalized: flag("normalized"),
        no_punct: flag("no_punct"),
        asian_support: flag("asian_support"),
        case_sensitive: flag("case_sensitive"),
    }
}

fn check_ter(case: &Value, hyps: &[String], refs: &[Vec<String>], worst: &mut f64) {
    let name = case["name"].as_str().unwrap();
    let mut ter = Ter::new(ter_options(&case["options"])).unwrap();
    let signature = version(case["signature"].as_str().unwrap());
    if case["level"] == "corpus" {
        let score = ter.corpus_score(hyps, refs).unwrap();
        assert_close(score.score, &case["score"], name, worst);
        assert_close(score.ref_length, &case["ref_length"], name, worst);
        assert_eq!(Some(score.num_edits), case["num_edits"].as_u64(), "{name}");
        assert_eq!(score.signature.to_string(), signature, "{name}");
        assert_eq!(
            score.to_string(),
            version(case["text"].as_str().unwrap()),
            "{name}"
        );
        return;
    }
    let scores = case["scores"].as_array().unwrap();
    for (i, hyp) in hyps.iter().enumerate() {
        let seg_refs: Vec<&str> = refs.iter().map(|r| r[i].as_str()).collect();
        let score = ter.sentence_score(hyp, &seg_refs).unwrap();
        let what = format!("{name} line {}", i + 1);
        assert_close(score.score, &scores[i], &what, worst);
        assert_eq!(score.signature.to_string(), signature, "{name}");
    }
}

#[test]
fn scores_match_sacrebleu() {
    let expected = load_json("expected.json");
    assert_eq!(expected["meta"]["sacrebleu"], "2.6.0");
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() > 400, "fixture has {} cases", cases.len());
    for metric in ["bleu", "chrf", "ter"] {
        assert!(
            cases.iter().any(|c| c["metric"] == metric),
            "no {metric} case"
        );
    }
    let mut worst = 0.0f64;
    for case in cases {
        let nrefs = case["nrefs"].as_u64().unwrap() as usize;
        let (hyps, refs) = streams(&expected["meta"], case["set"].as_str().unwrap(), nrefs);
        match case["metric"].as_str().unwrap() {
            "bleu" => check_bleu(case, &hyps, &refs, &mut worst),
            "chrf" => check_chrf(case, &hyps, &refs, &mut worst),
            "ter" => check_ter(case, &hyps, &refs, &mut worst),
            other => panic!("unknown metric {other}"),
        }
    }
    println!(
        "{} cases, largest difference from sacreBLEU: {worst:e}",
        cases.len()
    );
}

#[test]
fn tokenizers_match_sacrebleu() {
    let expected = load_json("tokenizers.json");
    let lines = expected["lines"].as_array().unwrap();
    assert!(lines.len() > 100);
    for kind in [
        TokenizerKind::Tok13a,
        TokenizerKind::Intl,
        TokenizerKind::Char,
        TokenizerKind::Zh,
    ] {
        let outputs = expected[kind.name()].as_array().unwrap();
        let tokenizer = kind.tokenizer();
        for (line, want) in lines.iter().zip(outputs) {
            let line = line.as_str().unwrap();
            assert_eq!(
                tokenizer.tokenize(line),
                want.as_str().unwrap(),
                "{kind} {line:?}"
            );
        }
    }
}

#[test]
fn sacrebleu_published_values() {
    // sacreBLEU's README / test_bleu.py two-reference example.
    let hyps = read_lines(fixture("readme.hyp.txt")).unwrap();
    let refs = vec![
        read_lines(fixture("readme.ref1.txt")).unwrap(),
        read_lines(fixture("readme.ref2.txt")).unwrap(),
    ];
    for (tokenize, smooth_method, want) in [
        (TokenizerKind::Tok13a, SmoothMethod::Exp, 48.530827),
        (TokenizerKind::None, SmoothMethod::Exp, 49.1919566),
        (TokenizerKind::Intl, SmoothMethod::Exp, 43.91623493),
        (TokenizerKind::Tok13a, SmoothMethod::None, 48.530827),
    ] {
        let opts = BleuOptions {
            tokenize,
            smooth_method,
            ..BleuOptions::default()
        };
        let got = Bleu::new(opts)
            .unwrap()
            .corpus_score(&hyps, &refs)
            .unwrap()
            .score;
        assert!((got - want).abs() < 1e-6, "{tokenize}: {got} vs {want}");
    }
}
