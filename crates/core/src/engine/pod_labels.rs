//! A workload's labels, held compactly: its own labels in one allocation ([`Labels`]) and
//! its pod template's labels relative to them ([`PodLabels`]). Most templates repeat labels
//! the workload's metadata carries, so a snapshot keeps a bit per metadata label the
//! template repeats and only the others in full. Ten thousand cached workloads then cost a
//! few megabytes for their labels instead of ten or more: a map of seven labels is a tree
//! node and fourteen strings, fifteen allocations of which the label text is a small part.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// Separates keys and values in [`Labels`]: the API server accepts no NUL in a label key
/// (a qualified name) or value (alphanumerics, `-`, `_`, `.`).
const SEPARATOR: char = '\0';

/// A workload's own labels in one allocation: `key NUL value NUL` for each label, in key
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<str>);

impl Labels {
    pub fn new(labels: &BTreeMap<String, String>) -> Self {
        let mut text = String::with_capacity(
            labels.iter().map(|(key, value)| key.len() + value.len() + 2).sum(),
        );
        for (key, value) in labels {
            text.push_str(key);
            text.push(SEPARATOR);
            text.push_str(value);
            text.push(SEPARATOR);
        }
        Self(text.into_boxed_str())
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.0.split_terminator(SEPARATOR);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(held, _)| *held == key).map(|(_, value)| value)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a map, for selectors.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// The pod template's labels, relative to the workload's own labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodLabels {
    /// Bit i: the workload's i-th label (in key order) is also a template label, same value.
    from_metadata: u64,
    /// Template labels not repeated from the metadata.
    others: Vec<(String, String)>,
}

impl PodLabels {
    /// The template's `labels` against the workload's own `metadata` labels.
    pub fn new(metadata: &Labels, mut template: BTreeMap<String, String>) -> Self {
        let mut from_metadata = 0;
        for (index, (key, value)) in metadata.iter().enumerate().take(64) {
            if template.get(key).is_some_and(|held| held == value) {
                template.remove(key);
                from_metadata |= 1 << index;
            }
        }
        Self { from_metadata, others: template.into_iter().collect() }
    }

    /// The template's labels, given the same metadata labels they were held against.
    pub fn resolve(&self, metadata: &Labels) -> BTreeMap<String, String> {
        let repeated = metadata
            .iter()
            .enumerate()
            .take(64)
            .filter(|(index, _)| self.from_metadata & (1 << index) != 0)
            .map(|(_, (key, value))| (key.to_owned(), value.to_owned()));
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
        let metadata =
            Labels::new(&labels(&[("app", "web"), ("part-of", "arcgis"), ("tier", "map")]));
        let template = labels(&[("app", "web"), ("tier", "feature"), ("zone", "a")]);
        let held = PodLabels::new(&metadata, template.clone());
        assert_eq!(held.from_metadata, 0b001);
        assert_eq!(held.others.len(), 2, "a different value is kept in full");
        assert_eq!(held.resolve(&metadata), template);
        assert_eq!(
            PodLabels::new(&Labels::default(), template.clone()).resolve(&Labels::default()),
            template
        );
        assert!(PodLabels::default().resolve(&metadata).is_empty());
    }

    #[test]
    fn labels_repeated_from_later_metadata_positions_read_back() {
        let metadata =
            Labels::new(&labels(&[("app", "web"), ("part-of", "arcgis"), ("tier", "map")]));
        let template = labels(&[("part-of", "arcgis"), ("tier", "map")]);
        let held = PodLabels::new(&metadata, template.clone());
        assert_eq!(held.from_metadata, 0b110);
        assert!(held.others.is_empty());
        assert_eq!(held.resolve(&metadata), template);
    }

    #[test]
    fn a_workloads_labels_read_back_as_they_were_given_empty_values_included() {
        let given = labels(&[("app.kubernetes.io/name", "web"), ("canary", ""), ("tier", "map")]);
        let held = Labels::new(&given);
        assert_eq!(held.to_map(), given);
        assert_eq!(held.get("canary"), Some(""));
        assert_eq!(held.get("tier"), Some("map"));
        assert_eq!(held.get("app"), None);
        assert!(!held.is_empty());
        assert!(Labels::new(&BTreeMap::new()).is_empty());
        assert_eq!(Labels::default().iter().count(), 0);
        assert_eq!(
            serde_json::to_value(&held).expect("labels serialize"),
            serde_json::json!({"app.kubernetes.io/name": "web", "canary": "", "tier": "map"})
        );
    }
}
