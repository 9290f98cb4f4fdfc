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
    }
}
