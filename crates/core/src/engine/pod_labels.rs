//! A workload's pod template labels, held compactly: most templates repeat labels the
//! workload's own metadata carries, so a snapshot keeps a bit per metadata label the template
//! repeats and only the others in full. Ten thousand cached workloads then cost a few
//! hundred kilobytes for their pod labels instead of megabytes.

use std::collections::BTreeMap;

use serde::Serialize;

/// The pod template's labels, relative to the workload's metadata labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodLabels {
    /// Bit i: the i-th metadata label (in key order) is also a template label, same value.
    from_metadata: u64,
    /// Template labels not repeated from the metadata.
    others: Vec<(String, String)>,
}

impl PodLabels {
    /// The template's `labels` against the workload's `metadata` labels.
    pub fn new(
        metadata: Option<&BTreeMap<String, String>>,
        mut template: BTreeMap<String, String>,
    ) -> Self {
        let mut from_metadata = 0;
        for (index, (key, value)) in metadata.into_iter().flatten().enumerate().take(64) {
            if template.get(key) == Some(value) {
                template.remove(key);
                from_metadata |= 1 << index;
            }
        }
        Self { from_metadata, others: template.into_iter().collect() }
    }

    /// The template's labels, given the same metadata labels they were held against.
    pub fn resolve(&self, metadata: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
        let repeated = metadata
            .into_iter()
            .flatten()
            .enumerate()
            .take(64)
            .filter(|(index, _)| self.from_metadata & (1 << index) != 0)
            .map(|(_, (key, value))| (key.clone(), value.clone()));
        repeated.chain(self.others.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn labels_repeated_from_the_metadata_cost_a_bit_and_read_back_whole() {
        let metadata = labels(&[("app", "web"), ("part-of", "arcgis"), ("tier", "map")]);
        let template = labels(&[("app", "web"), ("tier", "feature"), ("zone", "a")]);
        let held = PodLabels::new(Some(&metadata), template.clone());
        assert_eq!(held.from_metadata, 0b001);
        assert_eq!(held.others.len(), 2, "a different value is kept in full");
        assert_eq!(held.resolve(Some(&metadata)), template);
        assert_eq!(PodLabels::new(None, template.clone()).resolve(None), template);
        assert!(PodLabels::default().resolve(Some(&metadata)).is_empty());
    }
}
