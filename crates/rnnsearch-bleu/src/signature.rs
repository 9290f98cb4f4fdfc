//! sacreBLEU-style reproducibility signatures.

use std::fmt;

/// The version written into every signature (`version:` field).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An ordered list of `key:value` fields printed as `k1:v1|k2:v2|…`.
///
/// Metrics build it in sacreBLEU's key order: `nrefs`, the metric's own
/// fields, and `version` last, e.g.
/// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:0.1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    fields: Vec<(&'static str, String)>,
}

impl Signature {
    /// A signature for `nrefs` references and the given metric fields;
    /// `version` is appended.
    pub fn new(nrefs: usize, fields: Vec<(&'static str, String)>) -> Self {
        let mut all = Vec::with_capacity(fields.len() + 2);
        all.push(("nrefs", nrefs.to_string()));
        all.extend(fields);
        all.push(("version", VERSION.to_string()));
        Signature { fields: all }
    }

    /// This signature with the fields of a statistical test: `bs` (bootstrap
    /// resamples), `ar` (randomization trials) and `seed`, placed after
    /// `nrefs` in that order, as sacreBLEU prints them.
    pub fn with_test(&self, bs: Option<usize>, ar: Option<usize>, seed: &str) -> Signature {
        let mut fields = Vec::with_capacity(self.fields.len() + 3);
        fields.push(self.fields[0].clone());
        fields.extend(bs.map(|n| ("bs", n.to_string())));
        fields.extend(ar.map(|n| ("ar", n.to_string())));
        fields.push(("seed", seed.to_string()));
        fields.extend(
            self.fields[1..]
                .iter()
                .filter(|(k, _)| !matches!(*k, "bs" | "ar" | "seed"))
                .cloned(),
        );
        Signature { fields }
    }

    /// The fields in print order.
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.fields
    }

    /// The value of one field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{key}:{value}")?;
        }
        Ok(())
    }
}

/// `yes` / `no`, as sacreBLEU prints booleans.
pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_in_order_with_version_last() {
        let sig = Signature::new(2, vec![("case", "mixed".into()), ("eff", yes_no(false))]);
        assert_eq!(
            sig.to_string(),
            format!("nrefs:2|case:mixed|eff:no|version:{VERSION}")
        );
        assert_eq!(sig.get("eff"), Some("no"));
        assert_eq!(sig.get("tok"), None);
        assert_eq!(
            sig.with_test(Some(1000), None, "12345").to_string(),
            format!("nrefs:2|bs:1000|seed:12345|case:mixed|eff:no|version:{VERSION}")
        );
    }
}
