//! End-to-end training runs on a tiny dates configuration: the run directory, exact resumption,
//! interruption, and translation with the trained model.

mod common;
use common::*;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The step losses a run has logged. A run still in progress may have half-written its last
/// line (or a SIGKILL tore it; the resumed run cuts it away), so lines that do not parse are
/// skipped.
fn step_losses(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["step"].as_u64()?, v.get("loss")?.as_f64()?))
        })
        .collect()
}

#[test]
fn a_run_directory_has_everything_and_translates() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "epochs = 1\nmax_steps = 12\nvalid_every = 6");
    let run_dir = dir.path().join("run");
    let out = run(rnnsearch()
        .args(["train", "--threads", "1", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run_dir));
    assert!(out.status.success());
    for f in [
        "config.toml",
        "tokenizer.json",
        "metrics.jsonl",
        "train.log",
        "test.json",
        "checkpoints/best/model.bpk",
        "checkpoints/last/optimizer.bpk",
        "checkpoints/last/state.json",
    ] {
        assert!(run_dir.join(f).exists(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_bleu\"") && metrics.contains("\"val_chrf\""));
    assert_eq!(step_losses(&run_dir).len(), 12);

    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        format!(
            "9 May 2018\n\nwednesday, 3 january 1990\n09.05.2018\n{}\n",
            "9 May 2018, ".repeat(20)
        ),
    )
    .unwrap();
    for beam in ["1", "3"] {
        let output = dir.path().join(format!("out{beam}.txt"));
        let align = dir.path().join(format!("align{beam}.txt"));
        let out = run(rnnsearch()
            .args(["translate", "--threads", "1", "--beam", beam, "--model"])
            .arg(&run_dir)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--alignments")
            .arg(&align));
        assert!(out.status.success());
        let text = std::fs::read_to_string(&output).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[1], "", "an empty line gives an empty line");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("1 input line(s) are longer than the"),
            "the over-long line is counted in a warning"
        );
        let alignments = std::fs::read_to_string(&align).unwrap();
        assert_eq!(alignments.lines().count(), 5);
        for pair in alignments.split_whitespace() {
            let (s, t) = pair.split_once('-').expect("pharaoh pair");
            s.parse::<usize>().unwrap();
            t.parse::<usize>().unwrap();
        }
    }
    let out = run(rnnsearch()
        .args([
            "translate",
            "--threads",
            "1",
            "--beam",
            "3",
            "--nbest",
            "2",
            "--alignments-format",
            "json",
            "--model",
        ])
        .arg(&run_dir)
        .arg("--input")
        .arg(&input)
        .arg("--alignments")
        .arg(dir.path().join("a.json")));
    assert!(out.status.success());
    let text = stdout(&out);
    for line in text.lines() {
        let fields: Vec<&str> = line.split(" ||| ").collect();
        assert_eq!(fields.len(), 4, "Moses n-best: {line}");
        let score: f32 = fields[3].parse().unwrap();
        assert_eq!(fields[2], format!("F0= {score:.6}"), "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("a.json"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first["alignment"].is_array() && first["source"].is_array());

    // With no decoding flags: the model test.json names, the config's test_beam and alpha.
    let out = run(rnnsearch()
        .args(["translate", "--threads", "1", "--no-stream", "--model"])
        .arg(&run_dir)
        .arg("--input")
        .arg(&input));
    assert!(out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("model best (test.json)")
            && said.contains("beam 3 (config.toml), alpha 1 (config.toml)"),
        "{said}"
    );
    let beam3 = std::fs::read_to_string(dir.path().join("out3.txt")).unwrap();
    assert_eq!(
        stdout(&out),
        beam3,
        "the run's own beam gives the beam-3 output"
    );
    translates_line_by_line(&run_dir, &beam3);
}

/// A wrapper that writes one line and waits for its translation gets it: `translate` reading
/// a pipe streams, whatever comes after.
fn translates_line_by_line(run_dir: &Path, expected: &str) {
    use std::io::{BufRead, BufReader, Write};
    let mut child = rnnsearch()
        .args(["translate", "--threads", "1", "--model"])
        .arg(run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let want: Vec<&str> = expected.lines().collect();
    for (source, translation) in ["9 May 2018", "wednesday, 3 january 1990"]
        .iter()
        .zip([want[0], want[2]])
    {
        writeln!(stdin, "{source}").unwrap();
        stdin.flush().unwrap();
        let got = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a translation while the input stays open");
        assert_eq!(got, translation);
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Trains `cfg` on one thread into `out` with `extra` flags; the run must succeed.
fn train_ok(cfg: &Path, out: &Path, extra: &[&str]) {
    let o = run(rnnsearch()
        .args(["train", "--threads", "1", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Training on a dataset made by `prepare` equals training on the corpora (which the run
/// prepares into its own directory), bit for bit; the dataset serves a second run too.
#[test]
fn training_from_a_prepared_dataset_equals_training_from_the_corpora() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "max_steps = 12\nvalid_every = 6\nepochs = 1");
    let data = dir.path().join("dataset");
    let prepare = |extra: &[&str]| {
        run(rnnsearch()
            .args(["prepare", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&data)
            .args(extra))
    };
    let made = prepare(&[]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(
        stdout(&made).contains("pairs read: train 600"),
        "{}",
        stdout(&made)
    );
    let again = prepare(&[]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("pass --force"),
        "{}",
        stderr(&again)
    );
    assert!(prepare(&["--force"]).status.success());

    let train = |out: &Path, extra: &[&str]| train_ok(&cfg, out, extra);
    let raw = dir.path().join("raw");
    let mapped = dir.path().join("mapped");
    train(&raw, &[]);
    train(&mapped, &["--data", data.to_str().unwrap()]);
    let manifest = raw.join("data/manifest.json");
    assert!(manifest.is_file(), "the run prepared its own");
    let made = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    assert!(
        !mapped.join("data").exists(),
        "the run used the shared dataset"
    );
    let weights = |run: &Path| std::fs::read(run.join("checkpoints/last/model.bpk")).unwrap();
    let (a, b) = (weights(&raw), weights(&mapped));
    // the burnpack header holds random parameter ids: compare the tensors after it
    let header = |w: &[u8]| 10 + u32::from_le_bytes(w[6..10].try_into().unwrap()) as usize;
    assert_eq!(a[header(&a)..], b[header(&b)..]);
    assert_eq!(step_losses(&raw), step_losses(&mapped));
    // --resume reads the run's dataset again; it never prepares it anew
    train(&raw, &["--resume", "--set", "train.max_steps=14"]);
    assert_eq!(
        std::fs::metadata(&manifest).unwrap().modified().unwrap(),
        made
    );

    // A dataset of another vocabulary size is refused, naming both values.
    let other = run(rnnsearch()
        .args(["train", "--threads", "1", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("other"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--set",
            "data.tokenizer=\"bpe\"",
        ]));
    assert!(!other.status.success());
    assert!(
        stderr(&other)
            .contains("data.tokenizer is \"auto\" in the dataset but \"bpe\" in the config"),
        "{}",
        stderr(&other)
    );
}

/// A disk that fills while `prepare` writes (a file-size limit stands in for it): the error
/// names the file, and nothing is left that looks like a dataset.
#[test]
fn a_full_disk_leaves_no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "");
    let out = dir.path().join("dataset");
    // `trap '' XFSZ` makes writes past the limit fail with EFBIG instead of killing the process.
    let script = format!(
        "trap '' XFSZ; ulimit -f 16; exec '{}' prepare --config '{}' --out '{}' --set data.dates.train=20000",
        env!("CARGO_BIN_EXE_rnnsearch"),
        cfg.display(),
        out.display()
    );
    let o = run(std::process::Command::new("sh").args(["-c", &script]));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("cannot write"), "{err}");
    assert!(err.contains(".partial/train."), "the file is named: {err}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("dataset"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A run stopped after 8 steps and resumed gives the same per-step losses as a straight run.
#[test]
fn resumed_run_matches_a_straight_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "valid_every = 8\nepochs = 2");
    let straight = dir.path().join("straight");
    let split = dir.path().join("split");
    let train = |out: &Path, extra: &[&str]| train_ok(&cfg, out, extra);
    train(&straight, &["--set", "train.max_steps=20"]);
    train(&split, &["--set", "train.max_steps=8"]);
    train(&split, &["--resume", "--set", "train.max_steps=20"]);
    let a = step_losses(&straight);
    let b = step_losses(&split);
    assert_eq!(a.len(), 20);
    assert_eq!(a.len(), b.len());
    for ((sa, la), (sb, lb)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        assert!((la - lb).abs() < 1e-5, "step {sa}: {la} vs {lb}");
    }
}

fn wait_for_steps(run_dir: &Path, steps: usize) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if run_dir.join("metrics.jsonl").exists() && step_losses(run_dir).len() >= steps {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("training did not start");
}

/// SIGKILL at an arbitrary instant leaves a checkpoint that resumes; Ctrl-C saves and exits 130.
#[test]
fn killed_and_interrupted_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    // Far more epochs than the test waits for, and no early stopping (patience 8 at
    // valid_every 2 could end the resumed run 16 steps in): a run that finished on its own
    // before the Ctrl-C (a tiny epoch takes milliseconds) would exit 0.
    let cfg = tiny_dates_config(dir.path(), "valid_every = 2\nepochs = 100000\npatience = 0");
    let run_dir = dir.path().join("run");
    let mut child = rnnsearch()
        .args(["train", "--threads", "1", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run_dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_steps(&run_dir, 5);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut child = rnnsearch()
        .args(["train", "--threads", "1", "--resume", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run_dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = step_losses(&run_dir).len();
    wait_for_steps(&run_dir, before + 3);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("checkpoints/last/state.json")).unwrap(),
    )
    .unwrap();
    assert!(state["step"].as_u64().unwrap() as usize >= before);
}

/// Greedy and beam output is the same at batch size 1 and at the default batching, and with
/// either engine.
#[test]
fn translations_do_not_depend_on_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run(dir.path(), 30);
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        "9 May 2018\n12/11/1999\nThe 3rd of march, 2041\n\n1 JAN 1900\nsunday, 31 december 2099\n",
    )
    .unwrap();
    for beam in ["1", "4"] {
        let translate = |extra: &[&str]| {
            let out = run(rnnsearch()
                .args(["translate", "--threads", "1", "--beam", beam])
                .args(extra)
                .arg("--model")
                .arg(&run_dir)
                .arg("--input")
                .arg(&input));
            assert!(out.status.success());
            stdout(&out)
        };
        let one = translate(&["--batch-tokens", "1"]);
        assert_eq!(one.lines().count(), 6);
        assert_eq!(one, translate(&[]), "beam {beam}");
        // the burn model and rnnsearch-fused's forward pass search alike
        assert_eq!(one, translate(&["--engine", "burn"]), "beam {beam}");
    }
}

#[test]
fn attention_figures_and_curves_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run(dir.path(), 30);
    assert!(
        run_dir.join("curves.png").is_file(),
        "train draws curves.png at validation"
    );
    let fig = dir.path().join("fig.svg");
    let out = run(rnnsearch()
        .args([
            "attention",
            "--threads",
            "1",
            "--text",
            "9 May 2018",
            "--out",
        ])
        .arg(&fig)
        .arg("--model")
        .arg(&run_dir));
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&fig).unwrap().contains("<svg"));
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "9 May 2018\n09.05.2018\n").unwrap();
    let figs = dir.path().join("figs");
    let out = run(rnnsearch()
        .args(["attention", "--threads", "1", "--merge-subwords", "--input"])
        .arg(&input)
        .arg("--out-dir")
        .arg(&figs)
        .arg("--model")
        .arg(&run_dir));
    assert!(out.status.success());
    assert!(figs.join("1.png").is_file() && figs.join("2.png").is_file());
    let curves = dir.path().join("c.svg");
    let out = run(rnnsearch()
        .args(["plot", "--run"])
        .arg(&run_dir)
        .arg("--out")
        .arg(&curves));
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&curves)
        .unwrap()
        .contains("validation BLEU"));
}

/// `train.average_last = N` and `train.ensemble_last = N` try the mean of the last N kept
/// checkpoints and an ensemble of them at the end, and say on val which of them and `best` the
/// test figures come from; asking for more than are kept is an error that names the key, before
/// any training.
#[test]
fn training_ends_by_averaging_its_last_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run_with(
        dir.path(),
        "epochs = 1\nmax_steps = 24\nvalid_every = 8\nkeep_checkpoints = 2\naverage_last = 2\n\
         ensemble_last = 2",
    );
    let cfg = dir.path().join("tiny.toml");
    assert!(run_dir.join("checkpoints/averaged/model.bpk").is_file());
    let choice = test_model_choice(&run_dir);
    assert!(
        choice.contains("best ")
            && choice.contains("mean of the last 2 checkpoints")
            && choice.contains("ensemble of the last 2 checkpoints")
            && choice.contains("the test uses"),
        "{choice}"
    );
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("test.json")).unwrap()).unwrap();
    let model = test["model"].as_str().expect("test.json names its model");
    assert!(
        choice.ends_with(&format!("the test uses {model}")),
        "{choice} / {model}"
    );
    assert!(test["greedy"]["bleu"].is_number(), "{test}");
    // whichever it chose, `translate --model RUN` decodes with it
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "march 3, 2001\n").unwrap();
    let out = run(rnnsearch()
        .args(["translate", "--threads", "1", "--model"])
        .arg(&run_dir)
        .arg("--input")
        .arg(&input));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("model {model} (test.json)")),
        "{}",
        stderr(&out)
    );

    for key in ["average_last", "ensemble_last"] {
        let out = run(rnnsearch()
            .args(["train", "--threads", "1", "--config"])
            .arg(&cfg)
            .args(["--set", &format!("train.{key}=3"), "--out"])
            .arg(dir.path().join("other")));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(&format!("train.{key} = 3")),
            "{}",
            stderr(&out)
        );
        assert!(!dir.path().join("other/checkpoints").exists());
    }
}

/// The line of a run's log that says which model the test figures come from.
fn test_model_choice(run_dir: &Path) -> String {
    let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap();
    log.lines()
        .find(|l| l.contains("val BLEU at beam"))
        .unwrap_or_else(|| panic!("no choice in the log: {log}"))
        .to_string()
}

/// A run that ends (by its step or time budget) with fewer step checkpoints than
/// `train.average_last` / `ensemble_last` ask for averages and ensembles the ones it kept.
#[test]
fn a_short_run_averages_the_checkpoints_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run_with(
        dir.path(),
        "epochs = 1\nmax_steps = 16\nvalid_every = 8\nkeep_checkpoints = 5\naverage_last = 5\n\
         ensemble_last = 5",
    );
    assert!(run_dir.join("checkpoints/averaged/model.bpk").is_file());
    let choice = test_model_choice(&run_dir);
    assert!(
        choice.contains("mean of the last 2 checkpoints")
            && choice.contains("ensemble of the last 2 checkpoints"),
        "{choice}"
    );
    assert!(run_dir.join("test.json").is_file());
}

/// `train.keep_checkpoints` keeps the last N step checkpoints; `average` makes a checkpoint
/// that translates; checkpoints translate as an ensemble; too few checkpoints, unknown and empty
/// names are clear errors.
#[test]
fn averaged_checkpoints_translate() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run_with(
        dir.path(),
        "epochs = 1\nmax_steps = 24\nvalid_every = 8\nkeep_checkpoints = 2",
    );
    let checkpoints = run_dir.join("checkpoints");
    assert!(checkpoints.join("step-0000016").is_dir());
    assert!(checkpoints.join("step-0000024").is_dir());
    assert!(!checkpoints.join("step-0000008").exists());

    let average = |extra: &[&str]| {
        run(rnnsearch()
            .args(["average", "--threads", "1", "--model"])
            .arg(&run_dir)
            .args(extra))
    };
    let too_many = average(&["--last", "3"]);
    assert!(!too_many.status.success());
    assert!(stderr(&too_many).contains("2 step checkpoints, need at least 3"));
    assert!(average(&["--last", "2"]).status.success());
    assert!(checkpoints.join("averaged/model.bpk").is_file());

    let translate = |checkpoint: &str| {
        let mut cmd = rnnsearch();
        cmd.args([
            "translate",
            "--threads",
            "1",
            "--checkpoint",
            checkpoint,
            "--model",
        ])
        .arg(&run_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        // A run that fails at once (an unknown checkpoint) may exit before it reads: the pipe
        // is then closed, which is no failure of this test.
        let written = child.stdin.take().unwrap().write_all(b"9 May 2018\n");
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    };
    let averaged = translate("averaged");
    assert!(averaged.status.success(), "{}", stderr(&averaged));
    assert_eq!(stdout(&averaged).lines().count(), 1);
    let missing = translate("nosuch");
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nosuch"));

    // Ensembles: several checkpoints, comma-separated; one model twice is that model.
    let ensemble = translate("step-0000016,step-0000024");
    assert!(ensemble.status.success(), "{}", stderr(&ensemble));
    assert_eq!(stdout(&ensemble).lines().count(), 1);
    let (best, twice) = (translate("best"), translate("best,best"));
    assert!(twice.status.success(), "{}", stderr(&twice));
    assert_eq!(stdout(&best), stdout(&twice));
    let missing_member = translate("best,nosuch");
    assert!(!missing_member.status.success());
    assert!(stderr(&missing_member).contains("nosuch"));
    let empty = translate("best,");
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("checkpoint name is empty"));
}

/// A ten-step tiny dates config in `dir` and the dataset `rnnsearch prepare` makes of it, for
/// runs that share it.
fn ten_step_config_and_dataset(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cfg = tiny_dates_config(dir, "max_steps = 10\nvalid_every = 10\nepochs = 1");
    let data = dir.join("dataset");
    let made = run(rnnsearch()
        .args(["prepare", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&data));
    assert!(made.status.success(), "{}", stderr(&made));
    (cfg, data)
}

/// Runs trained on one prepared dataset translate as one ensemble (`--model A,B`, or
/// `--model` repeated); the same run twice is that run; runs of different vocabularies are
/// refused, naming both.
#[test]
fn runs_sharing_a_dataset_translate_as_one_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, data) = ten_step_config_and_dataset(dir.path());
    let data_flag = ["--data", data.to_str().unwrap()];
    let (a, b, other) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("other"),
    );
    train_ok(&cfg, &a, &data_flag);
    train_ok(
        &cfg,
        &b,
        &[&data_flag[..], &["--set", "train.seed=6"]].concat(),
    );
    train_ok(&cfg, &other, &["--set", "data.tokenizer=\"bpe\""]);

    let input = dir.path().join("input.txt");
    std::fs::write(&input, "9 May 2018\nthe 3rd of June 1999\n").unwrap();
    let translate = |models: &[&Path]| {
        let mut cmd = rnnsearch();
        cmd.args(["translate", "--threads", "1", "--beam", "3", "--input"])
            .arg(&input);
        for model in models {
            cmd.arg("--model").arg(model);
        }
        run(&mut cmd)
    };
    let joined = |models: &[&Path]| {
        let list: Vec<String> = models.iter().map(|m| m.display().to_string()).collect();
        run(rnnsearch()
            .args(["translate", "--threads", "1", "--beam", "3", "--input"])
            .arg(&input)
            .args(["--model", &list.join(",")]))
    };
    let both = joined(&[&a, &b]);
    assert!(both.status.success(), "{}", stderr(&both));
    assert_eq!(stdout(&both).lines().count(), 2);
    assert_eq!(stdout(&both), stdout(&translate(&[&a, &b])));
    let (alone, twice) = (translate(&[&a]), joined(&[&a, &a]));
    assert!(twice.status.success(), "{}", stderr(&twice));
    assert_eq!(stdout(&alone), stdout(&twice));
    // the ensemble's scores are neither run's: both members take part
    let scores = |models: &str| {
        let out = run(rnnsearch()
            .args(["translate", "--threads", "1", "--beam", "3", "--nbest", "1"])
            .args(["--model", models, "--input"])
            .arg(&input));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| l.rsplit(" ||| ").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (a_text, b_text) = (a.display().to_string(), b.display().to_string());
    let ensemble = scores(&format!("{a_text},{b_text}"));
    assert_ne!(ensemble, scores(&a_text));
    assert_ne!(ensemble, scores(&b_text));

    let mixed = joined(&[&a, &other]);
    assert!(!mixed.status.success());
    let message = stderr(&mixed);
    assert!(
        message.contains(&format!(
            "{}: its vocabularies differ from those of {} (source and target vocabularies differ)",
            other.display(),
            a.display()
        )),
        "{message}"
    );
    let missing = joined(&[&a, &dir.path().join("nosuch")]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nosuch"), "{}", stderr(&missing));
}

/// A right-to-left run (train.right_to_left) of the same dataset reranks a left-to-right run's
/// beam: with λ = 0 the search's list is kept as it was, with λ = 1 the same hypotheses come
/// sorted by the rescorer's scores; the two runs never translate as one ensemble.
#[test]
fn a_right_to_left_run_reranks_the_beam() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, data) = ten_step_config_and_dataset(dir.path());
    let data_flag = ["--data", data.to_str().unwrap()];
    let (l2r, r2l) = (dir.path().join("l2r"), dir.path().join("r2l"));
    train_ok(&cfg, &l2r, &data_flag);
    train_ok(
        &cfg,
        &r2l,
        &[&data_flag[..], &["--set", "train.right_to_left=true"]].concat(),
    );
    let input = dir.path().join("input.txt");
    std::fs::write(&input, "9 May 2018\n\nthe 3rd of June 1999\n").unwrap();
    let nbest = |extra: &[&str]| {
        let out = run(rnnsearch()
            .args(["translate", "--threads", "1", "--beam", "3", "--nbest", "3"])
            .arg("--model")
            .arg(&l2r)
            .args(extra)
            .arg("--input")
            .arg(&input));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| {
                let fields: Vec<&str> = l.split(" ||| ").collect();
                let score: f32 = fields[3].parse().unwrap();
                (fields[0].to_string(), fields[1].to_string(), score)
            })
            .collect::<Vec<_>>()
    };
    let r2l_text = r2l.to_str().unwrap();
    let searched = nbest(&[]);
    assert_eq!(
        nbest(&["--rescore", r2l_text, "--rescore-weight", "0"]),
        searched
    );
    let reranked = nbest(&["--rescore", r2l_text, "--rescore-weight", "1"]);
    let sorted = |mut list: Vec<(String, String, f32)>| {
        list.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        list.into_iter().map(|(i, h, _)| (i, h)).collect::<Vec<_>>()
    };
    assert_eq!(sorted(reranked.clone()), sorted(searched.clone()));
    for pair in reranked.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].2 >= pair[1].2,
            "{reranked:?}"
        );
    }
    let changed = reranked
        .iter()
        .zip(&searched)
        .any(|(a, b)| (a.2 - b.2).abs() > 1e-4);
    assert!(changed, "the rescorer's scores replace the search's");

    let mixed = run(rnnsearch()
        .args(["translate", "--threads", "1", "--input"])
        .arg(&input)
        .args(["--model", &format!("{},{r2l_text}", l2r.display())]));
    assert!(!mixed.status.success());
    assert!(
        stderr(&mixed).contains("train.right_to_left"),
        "{}",
        stderr(&mixed)
    );
    let bad_weight = run(rnnsearch()
        .args(["translate", "--threads", "1", "--rescore", r2l_text])
        .args(["--rescore-weight", "1.5", "--model"])
        .arg(&l2r)
        .arg("--input")
        .arg(&input));
    assert!(!bad_weight.status.success());
    assert!(
        stderr(&bad_weight).contains("--rescore-weight"),
        "{}",
        stderr(&bad_weight)
    );
}
