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
