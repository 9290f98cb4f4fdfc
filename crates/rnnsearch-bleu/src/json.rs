//! The JSON lines of `--format json`: one object per score, per segment
//! (`--sentence-level`) or per system (several systems, paired tests), with
//! the fields in a fixed order.

use std::fmt;

use serde_json::Value;

use crate::report::Report;
use crate::significance::{Confidence, PairedResult};

/// A JSON object that keeps its fields in the order they are added
/// (serde_json's map sorts them).
#[derive(Debug, Default)]
pub struct Object(Vec<(String, String)>);

impl Object {
    /// This object with `key: value` added last.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.push((key.to_string(), value.into().to_string()));
        self
    }

    /// This object with `key: value` added last, `value` an object.
    pub fn object(mut self, key: &str, value: Object) -> Self {
        self.0.push((key.to_string(), value.to_string()));
        self
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{value}", Value::from(key.as_str()))?;
        }
        f.write_str("}")
    }
}

impl Report {
    /// The score's JSON object: name, unrounded score, signature, the
    /// interval's fields when there is one (its text to `width` decimals),
    /// the metric's own fields, then the signature's fields as strings (as
    /// sacreBLEU's JSON has them).
    pub fn json_object(&self, width: usize, confidence: Option<Confidence>) -> Object {
        let mut obj = Object::default()
            .field("name", self.name.as_str())
            .field("score", self.score)
            .field("signature", self.signature.to_string());
        if let Some(c) = confidence {
            let text = format!("μ = {:.width$} ± {:.width$}", c.mean, c.ci);
            obj = obj
                .field("confidence_mean", c.mean)
                .field("confidence_var", c.ci)
                .field("confidence", text);
        }
        for (key, value) in &self.fields {
            obj = obj.field(key, value.clone());
        }
        for (key, value) in self.signature.fields() {
            obj = obj.field(key, value.as_str());
        }
        obj
    }

    /// [`json_object`](Self::json_object) as text: one line, no newline.
    pub fn json(&self, width: usize, confidence: Option<Confidence>) -> String {
        self.json_object(width, confidence).to_string()
    }
}

/// One segment's line of `--sentence-level`: its 1-based number, then every
/// metric's score object under the metric's name.
pub fn segment_line<'a>(number: usize, reports: impl IntoIterator<Item = &'a Report>) -> String {
    let obj = Object::default().field("segment", number);
    with_scores(obj, reports).to_string()
}

/// One system's line when several are scored: its name, then every
/// metric's score object under the metric's name.
pub fn system_line<'a>(system: &str, reports: impl IntoIterator<Item = &'a Report>) -> String {
    let obj = Object::default().field("system", system);
    with_scores(obj, reports).to_string()
}

fn with_scores<'a>(mut obj: Object, reports: impl IntoIterator<Item = &'a Report>) -> Object {
    for report in reports {
        obj = obj.object(&report.name, report.json_object(0, None));
    }
    obj
}

/// One system's line of a paired test: its name, then per metric (name,
/// signature, result) the score, p-value, bootstrap mean and interval
/// (`null` where the test has none) and the signature.
pub fn paired_line<'a>(
    system: &str,
    metrics: impl IntoIterator<Item = (&'a str, &'a str, &'a PairedResult)>,
) -> String {
    let mut obj = Object::default().field("system", system);
    for (name, signature, r) in metrics {
        let result = Object::default()
            .field("score", r.score)
            .field("p_value", r.p_value)
            .field("mean", r.confidence.map(|c| c.mean))
            .field("ci", r.confidence.map(|c| c.ci))
            .field("signature", signature);
        obj = obj.object(name, result);
    }
    obj.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signature;

    fn report() -> Report {
        Report {
            name: "TER".to_string(),
            score: 12.5,
            signature: Signature::new(1, vec![("case", "lc".to_string())]),
            verbose: String::new(),
            fields: vec![("num_edits", Value::from(1u64))],
        }
    }

    #[test]
    fn fields_keep_their_order() {
        let v = crate::VERSION;
        let c = Confidence {
            mean: 12.25,
            ci: 1.0,
        };
        assert_eq!(
            report().json(1, Some(c)),
            format!(
                "{{\"name\":\"TER\",\"score\":12.5,\"signature\":\"nrefs:1|case:lc|version:{v}\",\
                 \"confidence_mean\":12.25,\"confidence_var\":1.0,\"confidence\":\"μ = 12.2 ± 1.0\",\
                 \"num_edits\":1,\"nrefs\":\"1\",\"case\":\"lc\",\"version\":\"{v}\"}}"
            )
        );
        let line = segment_line(3, &[report()]);
        assert!(
            line.starts_with("{\"segment\":3,\"TER\":{\"name\":\"TER\","),
            "{line}"
        );
        let r = PairedResult {
            score: 1.5,
            p_value: None,
            confidence: None,
        };
        assert_eq!(
            paired_line("Baseline: a", [("TER", "sig", &r)]),
            "{\"system\":\"Baseline: a\",\"TER\":{\"score\":1.5,\"p_value\":null,\
             \"mean\":null,\"ci\":null,\"signature\":\"sig\"}}"
        );
    }
}
