//! Checkpoint averaging: the element-wise mean of the weights of several checkpoints of one run
//! (as OpenNMT-py's `average_models.py` and JoeyNMT's `average_checkpoints`), which usually
//! scores a little above any single one of them.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rnnsearch_model::Seq2Seq;

use crate::checkpoint::{self, TrainState};
use crate::error::{Error, Result};
use crate::rundir;

/// Every parameter of `model` as a flat vector, in visiting order.
fn parameters(model: &Seq2Seq) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_into_vec_as::<f32>();
            self.0.push(values.expect("float parameters"));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// The element-wise mean of `models` (all of one configuration), in the first one's structure.
pub fn average(models: &[Seq2Seq]) -> Seq2Seq {
    assert!(!models.is_empty(), "average of no models");
    let mut sums = parameters(&models[0]);
    for model in &models[1..] {
        for (sum, values) in sums.iter_mut().zip(parameters(model)) {
            sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
        }
    }
    let scale = 1.0 / models.len() as f32;
    struct Replace(std::vec::IntoIter<Vec<f32>>, f32);
    impl ModuleMapper for Replace {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let mean: Vec<f32> = self
                .0
                .next()
                .expect("same structure")
                .iter()
                .map(|v| v * self.1)
                .collect();
            param.map(|t| {
                let (shape, device) = (t.dims(), t.device());
                Tensor::from_data(TensorData::new(mean, shape), &device)
            })
        }
    }
    models[0].clone().map(&mut Replace(sums.into_iter(), scale))
}

/// The checkpoints `names` of `run_dir` (or, when `names` is empty, its last `last` step
/// checkpoints), averaged and saved as checkpoint `output`. Returns the averaged directories and
/// the averaged model.
pub fn average_run(
    run_dir: &Path,
    names: &[String],
    last: usize,
    output: &str,
    device: &Device,
) -> Result<(Vec<PathBuf>, Seq2Seq)> {
    let checkpoints = run_dir.join("checkpoints");
    let names: Vec<String> = if names.is_empty() {
        let steps = checkpoint::step_checkpoints(&checkpoints)?;
        if steps.len() < last.max(2) {
            return Err(Error::Checkpoint(format!(
                "{}: {} step checkpoints, need at least {}; train with train.keep_checkpoints = N \
                 or name checkpoints with --checkpoints",
                checkpoints.display(),
                steps.len(),
                last.max(2)
            )));
        }
        steps[steps.len() - last..]
            .iter()
            .map(|(step, _)| checkpoint::step_name(*step))
            .collect()
    } else {
        names.to_vec()
    };
    if names.iter().any(|n| n == output) {
        return Err(Error::Checkpoint(format!(
            "--output {output} is one of the averaged checkpoints; choose another name"
        )));
    }
    let mut models = Vec::with_capacity(names.len());
    let mut newest: Option<TrainState> = None;
    let mut dirs = Vec::with_capacity(names.len());
    for name in &names {
        let run = rundir::load(run_dir, name, device)?;
        let state = checkpoint::load_state(&run.checkpoint)?;
        if newest.as_ref().is_none_or(|s| state.step > s.step) {
            newest = Some(state);
        }
        dirs.push(run.checkpoint);
        models.push(run.model);
    }
    let averaged = average(&models);
    checkpoint::save(
        &checkpoints,
        output,
        &averaged,
        None,
        &newest.expect("at least one"),
    )?;
    Ok((dirs, averaged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnnsearch_model::ModelConfig;

    #[test]
    fn average_is_the_elementwise_mean() {
        let device = Device::flex();
        let config = ModelConfig {
            embedding: 4,
            hidden: 3,
            decoder_hidden: 5,
            attention: 2,
            output: 2,
            ..ModelConfig::default()
        };
        device.seed(1);
        let a = config.init(7, 6, &device);
        device.seed(2);
        let b = config.init(7, 6, &device);
        let mean = average(&[a.clone(), b.clone()]);
        for ((pa, pb), pm) in parameters(&a)
            .iter()
            .zip(parameters(&b))
            .zip(parameters(&mean))
        {
            for ((x, y), m) in pa.iter().zip(&pb).zip(&pm) {
                assert!((m - (x + y) / 2.0).abs() < 1e-6);
            }
        }
        assert_eq!(parameters(&a).len(), parameters(&mean).len());
    }
}
