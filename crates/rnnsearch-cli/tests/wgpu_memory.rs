//! Training on wgpu holds its memory flat (build with `--features wgpu`).
//!
//! A test binary of its own: tests of one binary share the process, and with it the device's
//! allocator and the RSS, so any other test running beside this one would move both.
#![cfg(feature = "wgpu")]

mod gpu;

use gpu::{batch, gpu, tiny_config, VOCAB};
use rnnsearch_train::{Engine, Learner, TrainConfig};

/// Resident set size of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn device_memory_and_rss_stay_flat_over_200_steps() {
    let Some(gpu) = gpu() else { return };
    let device = gpu.autodiff();
    device.seed(3);
    let model = tiny_config().init(VOCAB, VOCAB, &device);
    let train = TrainConfig::default();
    let mut learner = Learner::new(Engine::Burn, model, &train);
    let batch = batch();
    let mut in_use = Vec::new();
    let mut reserved = Vec::new();
    let mut rss = Vec::new();
    for step in 0..200 {
        learner.step(&batch, &train, 1e-3, step);
        device.sync().unwrap();
        let usage = device
            .memory_pool_usage()
            .expect("the wgpu backend reports its memory pools");
        in_use.push(usage.bytes_in_use);
        reserved.push(usage.bytes_reserved);
        rss.push(rss_kib());
    }
    // After a warm-up of 50 steps (pools and caches fill), the second half may not hold more
    // than the first: growth step over step would show as a higher maximum later.
    let max = |v: &[u64]| *v.iter().max().unwrap();
    eprintln!(
        "steps 50, 125, 200: device bytes in use {:?}, reserved {:?}, RSS KiB {:?}",
        [in_use[49], in_use[124], in_use[199]],
        [reserved[49], reserved[124], reserved[199]],
        [rss[49], rss[124], rss[199]]
    );
    let (early, late) = (50..125, 125..200);
    assert!(
        max(&in_use[late.clone()]) <= max(&in_use[early.clone()]),
        "device bytes in use grow: {:?}",
        &in_use[50..]
    );
    assert!(
        max(&reserved[late.clone()]) <= max(&reserved[early.clone()]),
        "device bytes reserved grow: {:?}",
        &reserved[50..]
    );
    // The allocator of the host may round a little either way; a leak of one batch's tensors
    // per step would add megabytes over 75 steps.
    let (rss_early, rss_late) = (max(&rss[early]), max(&rss[late]));
    assert!(
        rss_late <= rss_early + 4096,
        "RSS grows from {rss_early} KiB to {rss_late} KiB"
    );
}
