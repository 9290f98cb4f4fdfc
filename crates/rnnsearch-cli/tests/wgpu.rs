//! The wgpu backend gives the CPU backend's numbers (build with `--features wgpu`).
//!
//! Run on whatever adapter wgpu finds; in CI that is Mesa's lavapipe (Vulkan on the CPU). With
//! no adapter these tests fail when `CI` is set and skip with a printed reason otherwise.
#![cfg(feature = "wgpu")]

mod common;
mod gpu;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{rnnsearch, run, stdout, tiny_dates_config, tiny_dates_run};
use gpu::{batch, gpu, tiny_config, VOCAB};
use rnnsearch_data::Batch;
use rnnsearch_train::{Engine, Learner, TrainConfig};

fn ids(values: &[u32], rows: usize, device: &Device) -> Tensor<2, Int> {
    let values: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    let cols = values.len() / rows;
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits(model: &rnnsearch_model::Seq2Seq, batch: &Batch, device: &Device) -> Vec<f32> {
    let rows = batch.batch_size();
    let out = model.forward(
        ids(&batch.src, rows, device),
        &batch.src_lengths,
        ids(&batch.tgt_in, rows, device),
    );
    out.logits.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn logits_equal_the_cpu_backends() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(7);
    let model = tiny_config().init(VOCAB, VOCAB, &cpu);
    let batch = batch();
    let on_cpu = logits(&model, &batch, &cpu);
    let on_gpu = logits(&model.to_device(&gpu), &batch, &gpu);
    let difference = max_abs_difference(&on_cpu, &on_gpu);
    eprintln!("largest logit difference, flex against wgpu: {difference:e}");
    assert!(difference <= 1e-4, "logits differ by {difference}");
}

/// Losses of `steps` Adam updates through burn's autodiff on `device`, from `model`.
fn losses(model: &rnnsearch_model::Seq2Seq, device: &Device, steps: usize) -> Vec<f64> {
    let device = device.clone().autodiff();
    let train = TrainConfig::default();
    let mut learner = Learner::new(Engine::Burn, model.clone().fork(&device), &train);
    let batch = batch();
    (0..steps)
        .map(|step| learner.step(&batch, &train, 3e-3, step as u64).loss)
        .collect()
}

#[test]
fn twenty_training_steps_give_the_cpu_backends_losses() {
    let Some(gpu) = gpu() else { return };
    // Initialised with autodiff on, so that the copies on either device are trainable.
    let cpu = Device::flex().autodiff();
    cpu.seed(11);
    let model = tiny_config().init(VOCAB, VOCAB, &cpu);
    let on_cpu = losses(&model, &cpu, 20);
    let on_gpu = losses(&model, &gpu, 20);
    assert!(
        on_cpu.last() < on_cpu.first(),
        "the model learns: {on_cpu:?}"
    );
    let largest = on_cpu
        .iter()
        .zip(&on_gpu)
        .map(|(c, g)| (c - g).abs())
        .fold(0.0, f64::max);
    eprintln!("losses {on_cpu:?} on flex; largest difference on wgpu {largest:e}");
    for (step, (c, g)) in on_cpu.iter().zip(&on_gpu).enumerate() {
        assert!((c - g).abs() <= 1e-3, "step {step}: cpu {c}, wgpu {g}");
    }
}

/// `rnnsearch <args> --model <run>` on `backend`, as stdout.
fn on_backend(args: &[&str], backend: &str, run_dir: &Path) -> String {
    let out = run(rnnsearch()
        .args(args)
        .args(["--threads", "1", "--backend", backend, "--model"])
        .arg(run_dir));
    assert!(out.status.success(), "{args:?} on {backend}");
    stdout(&out)
}

/// train, translate, evaluate and attention run on wgpu; greedy translations of a dates model
/// trained on the CPU are the same there.
#[test]
fn the_commands_run_on_wgpu_and_translate_alike() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cpu_run = tiny_dates_run(dir.path(), 60);
    let cfg = dir.path().join("tiny.toml");

    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        "9 May 2018\n12/11/1999\nThe 3rd of march, 2041\n\n1 JAN 1900\nsunday, 31 december 2099\n",
    )
    .unwrap();
    let input_arg = input.to_str().unwrap();
    let greedy = ["translate", "--beam", "1", "--input", input_arg];
    let on_cpu = on_backend(&greedy, "flex", &cpu_run);
    assert_eq!(on_cpu.lines().count(), 6);
    assert_eq!(on_cpu, on_backend(&greedy, "wgpu", &cpu_run));
    let beam = ["translate", "--beam", "3", "--input", input_arg];
    assert_eq!(on_backend(&beam, "wgpu", &cpu_run).lines().count(), 6);

    let reference = dir.path().join("ref.txt");
    std::fs::write(&reference, &on_cpu).unwrap();
    let evaluate = [
        "evaluate",
        "--beam",
        "1",
        "--src",
        input_arg,
        "--ref",
        reference.to_str().unwrap(),
    ];
    assert!(on_backend(&evaluate, "wgpu", &cpu_run).contains("BLEU"));

    let figure = dir.path().join("fig.svg");
    let attention = ["attention", "--text", "9 May 2018", "--out"];
    let mut args = attention.to_vec();
    args.push(figure.to_str().unwrap());
    on_backend(&args, "wgpu", &cpu_run);
    assert!(std::fs::read_to_string(&figure).unwrap().contains("<svg"));

    let gpu_run = dir.path().join("gpu");
    let out = run(rnnsearch()
        .args(["train", "--threads", "1", "--backend", "wgpu", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&gpu_run)
        .args(["--set", "train.max_steps=8", "--set", "train.valid_every=8"]));
    assert!(out.status.success());
    assert!(gpu_run.join("checkpoints/best/model.bpk").is_file());
    let log = std::fs::read_to_string(gpu_run.join("train.log")).unwrap();
    assert!(
        log.to_lowercase().contains("wgpu"),
        "the log names the backend:\n{log}"
    );
}

#[test]
fn a_missing_adapter_index_is_a_clear_error() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "epochs = 1\nmax_steps = 2");
    let out = run(rnnsearch()
        .args(["train", "--backend", "wgpu", "--device", "99", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("run")));
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("--device 99") && err.contains("adapter"),
        "{err}"
    );
    assert!(!dir.path().join("run/checkpoints").exists());
}

/// Environment that hides every Vulkan driver from the loader.
const NO_VULKAN: [(&str, &str); 2] = [
    ("VK_DRIVER_FILES", "/nonexistent/vulkan.json"),
    ("VK_ICD_FILENAMES", "/nonexistent/vulkan.json"),
];

/// With Vulkan hidden, wgpu falls back to OpenGL (Mesa's llvmpipe here): greedy translations
/// are the CPU's there too.
#[test]
fn greedy_translations_on_opengl_equal_the_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tiny_dates_run(dir.path(), 40);
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "9 May 2018\n12/11/1999\nsunday, 31 december 2099\n").unwrap();
    let translate = |backend: &str, env: &[(&str, &str)]| {
        run(rnnsearch()
            .args([
                "translate",
                "--threads",
                "1",
                "--beam",
                "1",
                "--backend",
                backend,
            ])
            .arg("--model")
            .arg(&run_dir)
            .arg("--input")
            .arg(&input)
            .envs(env.iter().copied()))
    };
    let on_gl = translate("wgpu", &NO_VULKAN);
    if !on_gl.status.success()
        && common::stderr(&on_gl).contains("no adapter")
        && std::env::var_os("CI").is_none()
    {
        eprintln!(
            "skipped: no OpenGL adapter (Debian: apt-get install libegl-mesa0 libgl1-mesa-dri)"
        );
        return;
    }
    assert!(on_gl.status.success());
    assert_eq!(stdout(&on_gl), stdout(&translate("flex", &[])));
}

/// With no adapter at all, `--backend wgpu` stops before touching the run directory and says
/// what to install.
#[test]
fn without_an_adapter_the_error_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_dates_config(dir.path(), "epochs = 1\nmax_steps = 2");
    let out = run(rnnsearch()
        .args(["train", "--backend", "wgpu", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("run"))
        .envs(NO_VULKAN)
        // and no OpenGL: glvnd finds no EGL vendor, Mesa no DRI driver
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .env("LIBGL_DRIVERS_PATH", "/nonexistent"));
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("no adapter") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
    assert!(!dir.path().join("run/checkpoints").exists());
}
