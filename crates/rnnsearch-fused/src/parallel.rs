//! Data parallelism: a batch cut into one part per thread, each part run from start to end on a
//! thread of its own.
//!
//! Splitting every product and element-wise loop of a step over the threads leaves the second
//! core idle in the many small pieces between them (the recurrent cells, the attention of one
//! position, the allocations): a real en→de training run kept 1.5 of 2 cores busy. Cutting the
//! batch instead keeps each core on its own sentences, with no synchronisation until the parts'
//! gradients (or hypotheses) are put together.
//!
//! Each part runs inside a rayon pool of one thread, so the parallel loops and split products
//! under it (which ask rayon how many threads there are) run whole on that thread.

use std::sync::Mutex;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::adam::{add_into, zero};
use crate::step::{loss, train_step, Batch, OwnedBatch, StepOptions, StepResult};
use crate::{Layout, Weights};

/// Sentences a part needs at the least; smaller batches are not cut.
pub const MIN_PART_SENTENCES: usize = 8;

/// `count` pools of one thread each, made on first use and kept for the process.
fn single_thread_pools(count: usize) -> Vec<&'static ThreadPool> {
    static POOLS: Mutex<Vec<&'static ThreadPool>> = Mutex::new(Vec::new());
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    while pools.len() < count {
        let index = pools.len();
        let pool = ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(move |_| format!("rnnsearch-part-{index}"))
            .build()
            .expect("a thread for a part of the batch");
        pools.push(Box::leak(Box::new(pool)));
    }
    pools[..count].to_vec()
}

/// `task(p)` for every part p < `parts`, each on its own single-thread pool, concurrently;
/// the results in part order.
pub fn on_own_threads<T: Send>(parts: usize, task: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if parts <= 1 {
        return vec![task(0)];
    }
    let pools = single_thread_pools(parts);
    let task = &task;
    std::thread::scope(|scope| {
        let handles: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(p, pool)| scope.spawn(move || pool.install(|| task(p))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// How many parts to cut `sentences` into for `threads` threads: one per thread, as long as
/// each gets `min_part` sentences.
pub fn parts_for(sentences: usize, threads: usize, min_part: usize) -> usize {
    (sentences / min_part.max(1)).clamp(1, threads.max(1))
}

/// The sentence ranges of `parts` parts of `sentences`, as even as whole sentences allow.
pub fn part_ranges(sentences: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    (0..parts)
        .map(|p| sentences * p / parts..sentences * (p + 1) / parts)
        .collect()
}

/// Gradient buffers of one [`Layout`]: the batch's sum, and one more for each part past the
/// first, kept from step to step.
#[derive(Debug, Default)]
pub struct GradBuffers {
    /// The batch's gradients once a step is done.
    pub sum: Vec<f32>,
    parts: Vec<Vec<f32>>,
    /// Each part's logits buffer, lent to its step (see [`train_step`]).
    logits: Vec<Vec<f32>>,
}

impl GradBuffers {
    pub fn new(layout: &Layout) -> Self {
        Self {
            sum: vec![0.0; layout.len()],
            parts: Vec::new(),
            logits: Vec::new(),
        }
    }
}

/// [`train_step`] with the batch cut into `parts` parts of whole sentences (fewer when the
/// batch is small), one per thread; their losses summed and their gradients summed into
/// `grads.sum` (zeroed first).
///
/// The loss of every part is divided by the whole batch's `options.tokens`, so the sum is the
/// batch's loss and gradient. Part p > 0 draws its dropout masks from a seed of its own, so a
/// run's masks depend on its thread count (a run resumed with the same threads resumes exactly).
pub fn train_step_in_parts(
    layout: &Layout,
    weights: &Weights,
    batch: &Batch,
    options: &StepOptions,
    parts: usize,
    grads: &mut GradBuffers,
) -> StepResult {
    let dims = &layout.dims;
    let sentences = batch.source_lengths.len();
    let parts = parts_for(sentences, parts, MIN_PART_SENTENCES);
    grads.logits.resize_with(parts, Vec::new);
    if parts == 1 {
        zero(&mut grads.sum);
        let mut sum = layout.grads(&mut grads.sum);
        return train_step(
            weights,
            dims,
            batch,
            options,
            &mut sum,
            &mut grads.logits[0],
        );
    }
    grads
        .parts
        .resize_with(parts - 1, || vec![0.0; layout.len()]);
    let ranges = part_ranges(sentences, parts);
    let buffers: Vec<Mutex<(&mut Vec<f32>, &mut Vec<f32>)>> = std::iter::once(&mut grads.sum)
        .chain(grads.parts.iter_mut())
        .zip(grads.logits.iter_mut())
        .map(Mutex::new)
        .collect();
    let results = on_own_threads(parts, |p| {
        let part = OwnedBatch::part(batch, ranges[p].clone());
        let options = StepOptions {
            seed: part_seed(options.seed, p),
            ..*options
        };
        let mut buffers = buffers[p].lock().expect("each part locks its own buffers");
        let (gradient, logits) = &mut *buffers;
        zero(gradient.as_mut_slice());
        let mut gradient = layout.grads(gradient.as_mut_slice());
        train_step(
            weights,
            dims,
            &part.borrow(),
            &options,
            &mut gradient,
            logits,
        )
    });
    drop(buffers);
    let others: Vec<&[f32]> = grads.parts.iter().map(|g| g.as_slice()).collect();
    add_into(&mut grads.sum, &others);
    sum(&results)
}

/// The forward-only loss of [`crate::step::loss`] with the batch cut into parts as in
/// [`train_step_in_parts`], the parts' sums added.
pub fn loss_in_parts(
    weights: &Weights,
    dims: &crate::Dims,
    batch: &Batch,
    options: &StepOptions,
    parts: usize,
) -> StepResult {
    let sentences = batch.source_lengths.len();
    let parts = parts_for(sentences, parts, MIN_PART_SENTENCES);
    if parts == 1 {
        return loss(weights, dims, batch, options);
    }
    let ranges = part_ranges(sentences, parts);
    let results = on_own_threads(parts, |p| {
        let part = OwnedBatch::part(batch, ranges[p].clone());
        loss(weights, dims, &part.borrow(), options)
    });
    sum(&results)
}

/// The parts' losses added: each was already divided by the whole batch's tokens.
fn sum(results: &[StepResult]) -> StepResult {
    StepResult {
        loss: results.iter().map(|r| r.loss).sum(),
        nll_sum: results.iter().map(|r| r.nll_sum).sum(),
    }
}

/// The dropout seed of part `p`: the step's own seed for the first.
fn part_seed(seed: u64, p: usize) -> u64 {
    if p == 0 {
        seed
    } else {
        seed ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_in_order() {
        assert_eq!(part_ranges(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(parts_for(15, 2, 8), 1);
        assert_eq!(parts_for(16, 2, 8), 2);
        assert_eq!(parts_for(1000, 2, 8), 2);
        assert_eq!(parts_for(0, 2, 8), 1);
    }

    #[test]
    fn each_part_runs_on_a_single_thread_pool() {
        let threads = on_own_threads(3, |p| (p, rayon::current_num_threads()));
        assert_eq!(threads, vec![(0, 1), (1, 1), (2, 1)]);
    }

    #[test]
    fn a_part_keeps_its_rows_and_cuts_the_common_padding() {
        // Three sentences: sources of 2, 4, 1 tokens; targets of 3, 1, 2 real positions.
        let source = [5, 6, 0, 0, 7, 8, 9, 10, 11, 0, 0, 0];
        let source_lengths = [2, 4, 1];
        let target_in = [2, 20, 21, 2, 0, 0, 2, 22, 0];
        let target_out = [20, 21, 3, 3, 0, 0, 22, 3, 0];
        let target_padding = [false, false, false, false, true, true, false, false, true];
        let batch = Batch {
            source: &source,
            source_lengths: &source_lengths,
            target_in: &target_in,
            target_out: &target_out,
            target_padding: &target_padding,
            tgt_len: 3,
        };
        let part = OwnedBatch::part(&batch, 1..3);
        assert_eq!(part.source, vec![7, 8, 9, 10, 11, 0, 0, 0]);
        assert_eq!(part.source_lengths, vec![4, 1]);
        assert_eq!(part.tgt_len, 2);
        assert_eq!(part.target_in, vec![2, 0, 2, 22]);
        assert_eq!(part.target_out, vec![3, 0, 22, 3]);
        assert_eq!(part.target_padding, vec![false, true, false, false]);
    }
}
