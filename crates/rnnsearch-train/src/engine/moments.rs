//! The fused engine's Adam moments in burn's optimizer record (`optimizer.bpk`), so that either
//! engine resumes the other's checkpoints.
//!
//! burn keys the record by parameter id: per parameter the tensors `{id}.momentum.moment_1` and
//! `{id}.momentum.moment_2`, the scalar `{id}.momentum.time` (t, the updates seen) and
//! `{id}.__rank`.

use burn::module::ParamId;
use burn::tensor::Bytes;
use burn_pack::{DType, Reader, Scalar, Writer};
use rnnsearch_fused::Moments;

use crate::error::{Error, Result};
use crate::fused::Binding;

fn name(id: ParamId, leaf: &str) -> String {
    format!("{}.{leaf}", id.val())
}

/// `moments` (over the binding's trained range) as burn's optimizer record.
pub fn write_moments(binding: &Binding, moments: &Moments) -> Result<Vec<u8>> {
    let trained = binding.layout().trained();
    let mut tensors = Vec::new();
    let mut writer_scalars = Vec::new();
    for (id, range, shape) in binding.slots() {
        assert!(range.end <= trained.end, "a bound parameter is trained");
        for (leaf, values) in [("moment_1", &moments.m), ("moment_2", &moments.v)] {
            let bytes: Vec<u8> = values[range.clone()]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            tensors.push(burn_pack::Tensor::new(
                name(id, &format!("momentum.{leaf}")),
                DType::F32,
                shape.to_vec(),
                Some(id.val()),
                Bytes::from_bytes_vec(bytes),
            ));
        }
        writer_scalars.push((name(id, "momentum.time"), Scalar::from(moments.time)));
        writer_scalars.push((name(id, "__rank"), Scalar::from(shape.len())));
    }
    let mut writer = Writer::new(tensors);
    for (key, value) in &writer_scalars {
        writer = writer.with_scalar(key, *value);
    }
    let bytes = writer
        .into_bytes()
        .map_err(|e| Error::Checkpoint(format!("optimizer state: {e:?}")))?;
    Ok(bytes.to_vec())
}

/// The moments of every parameter of `binding` from burn's optimizer record `bytes` (read from
/// `what`, for errors). Every parameter must have them, all at the same t.
pub fn read_moments(binding: &Binding, bytes: Vec<u8>, what: &str) -> Result<Moments> {
    let bad = |why: String| Error::Checkpoint(format!("{what}: {why}"));
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| bad(format!("unreadable optimizer state: {e:?}")))?;
    let scalars = reader.scalars().clone();
    let mut tensors = std::collections::HashMap::new();
    for tensor in reader
        .into_tensors()
        .map_err(|e| bad(format!("unreadable optimizer state: {e:?}")))?
    {
        let (name, dtype, _, _, bytes) = tensor
            .into_parts()
            .map_err(|e| bad(format!("unreadable optimizer state: {e:?}")))?;
        if dtype != DType::F32 {
            return Err(bad(format!("{name} is {dtype:?}, not f32")));
        }
        tensors.insert(name, bytes);
    }
    let trained = binding.layout().trained();
    let mut moments = Moments::zeros(trained.len());
    let mut time = None;
    for (id, range, _) in binding.slots() {
        let key = name(id, "momentum.time");
        let t = scalars
            .get(&key)
            .and_then(|s| u64::try_from(*s).ok())
            .ok_or_else(|| {
                bad(format!(
                    "no Adam state for parameter {} (the checkpoint is of another model, or was \
                     written before its first update)",
                    id.val()
                ))
            })?;
        if *time.get_or_insert(t) != t {
            return Err(bad(format!(
                "parameters were updated different numbers of times ({t} and {}); the fused \
                 engine keeps one step count: resume with train.engine = \"burn\"",
                time.unwrap_or(0)
            )));
        }
        for (leaf, into) in [("moment_1", &mut moments.m), ("moment_2", &mut moments.v)] {
            let key = name(id, &format!("momentum.{leaf}"));
            let bytes = tensors
                .get(&key)
                .ok_or_else(|| bad(format!("no tensor {key}")))?;
            if bytes.len() != 4 * range.len() {
                return Err(bad(format!(
                    "{key} holds {} values, the model's parameter {}",
                    bytes.len() / 4,
                    range.len()
                )));
            }
            for (v, b) in into[range.clone()].iter_mut().zip(bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
    moments.time = time.unwrap_or(0);
    Ok(moments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tests::tiny_config;
    use burn::tensor::Device;

    fn binding(seed: u64) -> Binding {
        let device = Device::flex();
        device.seed(seed);
        Binding::of(&tiny_config(1).init(13, 11, &device))
    }

    #[test]
    fn moments_round_trip_and_foreign_records_are_refused_with_the_reason() {
        let ours = binding(1);
        let mut moments = Moments::zeros(ours.layout().trained().len());
        moments
            .m
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as f32);
        moments
            .v
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = 0.5 * i as f32);
        moments.time = 7;
        let bytes = write_moments(&ours, &moments).unwrap();
        assert_eq!(read_moments(&ours, bytes.clone(), "last").unwrap(), moments);

        // another model's record: its parameter ids are not ours
        let err = read_moments(&binding(2), bytes, "ckpt/optimizer.bpk").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("ckpt/optimizer.bpk"), "{message}");
        assert!(message.contains("no Adam state for parameter"), "{message}");

        let err = read_moments(&ours, b"not burnpack".to_vec(), "x.bpk").unwrap_err();
        assert!(
            err.to_string().contains("unreadable optimizer state"),
            "{err}"
        );
    }
}
