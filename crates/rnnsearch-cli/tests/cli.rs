//! The command line itself: help, version, backends, errors.

mod common;
use common::*;

#[test]
fn help_lists_the_subcommands() {
    let out = run(rnnsearch().arg("--help"));
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in ["prepare", "train", "translate", "evaluate", "attention"] {
        assert!(text.contains(sub), "--help lacks {sub}");
    }
    for sub in [
        "prepare",
        "train",
        "translate",
        "evaluate",
        "attention",
        "plot",
        "bench",
    ] {
        assert!(
            run(rnnsearch().args([sub, "--help"])).status.success(),
            "{sub} --help"
        );
    }
}

#[test]
fn version_is_printed() {
    let out = run(rnnsearch().arg("--version"));
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_backend_is_a_clear_error() {
    let out = run(rnnsearch().args(["train", "--backend", "cuda"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cuda"));
}

#[test]
fn misspelt_engine_variables_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let translate = |vars: &[(&str, &str)]| {
        let mut cmd = rnnsearch();
        cmd.envs(vars.iter().copied())
            .args(["translate", "--model"])
            .arg(dir.path().join("nope"));
        run(&mut cmd)
    };
    for (name, value) in [("RNNSEARCH_SIMD", "avx3"), ("RNNSEARCH_BLAS", "of")] {
        let out = translate(&[(name, value)]);
        assert_eq!(out.status.code(), Some(1), "{name}={value}");
        let text = stderr(&out);
        assert!(text.contains(name) && text.contains(value), "{text}");
    }
    // Accepted values get past the check to the command's own error.
    let out = translate(&[("RNNSEARCH_SIMD", "baseline"), ("RNNSEARCH_BLAS", "off")]);
    assert!(
        stderr(&out).contains("no such run directory"),
        "{}",
        stderr(&out)
    );
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn backend_not_compiled_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(rnnsearch()
        .args(["train", "--backend", "wgpu", "--out"])
        .arg(dir.path().join("r")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--features wgpu"), "{}", stderr(&out));
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[train]\nlearning_rate = 0.1\n").unwrap();
    let out = run(rnnsearch()
        .args(["train", "--print-config", "--config"])
        .arg(&cfg));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("learning_rate") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn print_config_shows_every_section() {
    let out = run(rnnsearch().args(["train", "--print-config", "--set", "train.lr=0.01"]));
    assert!(out.status.success());
    let text = stdout(&out);
    for key in [
        "[data]",
        "[model]",
        "[train]",
        "lr = 0.01",
        "label_smoothing",
        "scorer",
    ] {
        assert!(text.contains(key), "missing {key}");
    }
}

#[test]
fn translate_with_a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(rnnsearch()
        .args(["translate", "--model"])
        .arg(dir.path().join("nope")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such run directory"));
    let out = run(rnnsearch().args(["translate", "--model"]).arg(dir.path()));
    assert!(stderr(&out).contains("not a run directory"));
}

/// `rnnsearch bench` on a tiny model: training with both gradient engines, and greedy and
/// beam decoding with both forward passes, each printing its one `bench:` line.
#[test]
fn bench_trains_and_decodes_with_both_engines() {
    let tiny = [
        "bench",
        "--vocab",
        "40",
        "--emb",
        "8",
        "--hidden",
        "8",
        "--att",
        "8",
        "--batch-tokens",
        "40",
        "--src-len",
        "5",
        "--tgt-len",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
    ];
    for engine in ["fused", "burn"] {
        let out = run(rnnsearch().args(tiny).args(["--engine", engine]));
        assert!(out.status.success(), "{engine}: {}", stderr(&out));
        let line = stdout(&out);
        let gradients = if engine == "fused" {
            "fused"
        } else {
            "burn autodiff"
        };
        assert!(
            line.starts_with("bench: ")
                && line.contains("tgt tok/s")
                && line.contains(&format!("{gradients} gradients")),
            "{line}"
        );
        for decode in ["greedy", "beam5"] {
            let out = run(rnnsearch()
                .args(tiny)
                .args(["--engine", engine, "--decode", decode]));
            assert!(out.status.success(), "{engine} {decode}: {}", stderr(&out));
            let line = stdout(&out);
            assert!(
                line.contains("sentences/s") && line.contains(&format!("{engine} forward pass")),
                "{line}"
            );
        }
    }
    for (flag, value) in [
        ("--vocab", "4"),
        ("--src-len", "0"),
        ("--batch-tokens", "3"),
    ] {
        let bad = run(rnnsearch().args(["bench", flag, value]));
        assert!(!bad.status.success(), "{flag} {value}");
        let said = stderr(&bad);
        assert!(
            said.contains(&format!("{flag} must")) || said.contains(&format!("{flag} ({value})")),
            "{flag}: {said}"
        );
    }
}

/// Three small systems and a reference in `dir`.
fn write_systems(dir: &std::path::Path) {
    let reference = "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n";
    std::fs::write(dir.join("ref.txt"), reference).unwrap();
    std::fs::write(dir.join("base.txt"), reference.replace("bit", "bites")).unwrap();
    std::fs::write(dir.join("sys1.txt"), "The dog.\nIt was.\nA man bit.\n").unwrap();
    std::fs::write(dir.join("sys2.txt"), reference).unwrap();
}

#[test]
fn evaluate_compares_systems_with_a_paired_test() {
    let dir = tempfile::tempdir().unwrap();
    write_systems(dir.path());
    let out = run(rnnsearch().current_dir(dir.path()).args([
        "evaluate",
        "--hyp",
        "base.txt",
        "sys1.txt",
        "sys2.txt",
        "--ref",
        "ref.txt",
        "--metrics",
        "bleu,chrf,ter",
        "--paired-bs",
        "--paired-bs-n",
        "100",
    ]));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("Baseline: base.txt"), "{text}");
    assert!(text.contains("BLEU (μ ± 95% CI)") && text.contains("TER (μ ± 95% CI)"));
    assert!(text.contains("Paired bootstrap resampling test with 100 resampling trials"));
    assert_eq!(
        text.matches("(p = ").count(),
        6,
        "two systems, three metrics: {text}"
    );
    assert!(
        text.contains("nrefs:1|bs:100|seed:12345|case:lc|tok:tercom|"),
        "{text}"
    );
}

#[test]
fn evaluate_reports_bad_input_by_file() {
    let dir = tempfile::tempdir().unwrap();
    write_systems(dir.path());
    std::fs::write(dir.path().join("short.txt"), "one line\n").unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    std::fs::write(dir.path().join("bad.txt"), b"fine\n\xff\nfine\n").unwrap();
    let evaluate = |args: &[&str]| {
        let out = run(rnnsearch()
            .current_dir(dir.path())
            .arg("evaluate")
            .args(args));
        assert!(!out.status.success(), "{args:?} should fail");
        stderr(&out)
    };
    let err = evaluate(&[
        "--hyp",
        "base.txt",
        "short.txt",
        "--ref",
        "ref.txt",
        "--paired-ar",
    ]);
    assert!(
        err.contains("short.txt has 1 lines, ref.txt has 3"),
        "{err}"
    );
    let err = evaluate(&["--hyp", "empty.txt", "--ref", "empty.txt"]);
    assert!(err.contains("empty.txt has no lines"), "{err}");
    let err = evaluate(&["--hyp", "base.txt", "bad.txt", "--ref", "ref.txt"]);
    assert!(err.contains("bad.txt: line 2 is not valid UTF-8"), "{err}");
    let err = evaluate(&["--hyp", "base.txt", "--ref", "ref.txt", "--ter-no-punct"]);
    assert!(err.contains("--ter-no-punct applies to TER"), "{err}");
    let err = evaluate(&["--hyp", "base.txt", "--ref", "ref.txt", "--paired-bs"]);
    assert!(
        err.contains("give a baseline and at least one more --hyp"),
        "{err}"
    );
}

#[test]
fn evaluate_sentence_level_json_has_one_line_per_sentence() {
    let dir = tempfile::tempdir().unwrap();
    write_systems(dir.path());
    let out = run(rnnsearch().current_dir(dir.path()).args([
        "evaluate",
        "--hyp",
        "sys1.txt",
        "--ref",
        "ref.txt",
        "--metrics",
        "bleu,chrf,ter",
        "--sentence-level",
        "--format",
        "json",
    ]));
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["segment"], i + 1);
        for metric in ["BLEU", "chrF2", "TER"] {
            assert!(line[metric]["score"].is_number(), "{line}");
        }
    }
}
