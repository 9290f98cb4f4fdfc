//! What the wgpu tests share: the adapter (or the reason there is none), a tiny model and a
//! batch for it.

use burn::tensor::{Device, DeviceKind, DeviceType};
use rnnsearch_data::Batch;
use rnnsearch_model::ModelConfig;

/// The default wgpu device, or `None` (with the reason printed) where there is no adapter and
/// the tests are not running in CI.
pub fn gpu() -> Option<Device> {
    let adapters = Device::enumerate(DeviceType::Wgpu).into_vec();
    if adapters.is_empty() {
        let reason = "no wgpu adapter: install a GPU driver or Mesa's lavapipe \
                      (Debian: apt-get install mesa-vulkan-drivers)";
        if std::env::var_os("CI").is_some() {
            panic!("{reason}; CI must run the wgpu tests");
        }
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(Device::wgpu(DeviceKind::DefaultDevice))
}

pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        embedding: 12,
        hidden: 10,
        decoder_hidden: 14,
        attention: 8,
        output: 6,
        dropout: 0.0,
        ..ModelConfig::default()
    }
}

pub const VOCAB: usize = 23;

/// A padded batch of three sentences with ids in 4..VOCAB.
pub fn batch() -> Batch {
    let (src_len, tgt_len) = (7, 6);
    let src_lengths = vec![7, 4, 2];
    let tgt_lengths = vec![6, 5, 3];
    let id = |row: usize, col: usize, salt: usize| 4 + ((row * 31 + col * 7 + salt) % (VOCAB - 4));
    let grid = |lengths: &[usize], cols: usize, salt: usize| -> Vec<u32> {
        (0..lengths.len())
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| {
                if c < lengths[r] {
                    id(r, c, salt) as u32
                } else {
                    0
                }
            })
            .collect()
    };
    Batch {
        indices: vec![0, 1, 2],
        src: grid(&src_lengths, src_len, 0),
        src_lengths,
        tgt_in: grid(&tgt_lengths, tgt_len, 3),
        tgt_out: grid(&tgt_lengths, tgt_len, 5),
        tgt_lengths,
    }
}
