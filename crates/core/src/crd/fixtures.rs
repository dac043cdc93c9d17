//! A builder for ServiceRefresh objects in tests, so every test states only what matters to
//! it: `ServiceRefresh::fixture("refresh").spec(json!({...})).build()`.

use std::collections::BTreeMap;

use super::{ServiceRefresh, ServiceRefreshStatus};

/// Namespace of fixture objects unless set otherwise.
pub const FIXTURE_NAMESPACE: &str = "arcgis";
/// uid of fixture objects unless set otherwise.
pub const FIXTURE_UID: &str = "0123456789abcdef";

#[derive(Clone, Debug)]
pub struct RefreshFixture {
    name: String,
    namespace: String,
    uid: Option<String>,
    generation: i64,
    spec: serde_json::Value,
    annotations: BTreeMap<String, String>,
    status: Option<ServiceRefreshStatus>,
}

impl ServiceRefresh {
    /// A stored-looking ServiceRefresh: namespace `arcgis`, a uid, generation 1, and the
    /// minimal spec `{selector: {}}`.
    pub fn fixture(name: &str) -> RefreshFixture {
        RefreshFixture {
            name: name.to_owned(),
            namespace: FIXTURE_NAMESPACE.to_owned(),
            uid: Some(FIXTURE_UID.to_owned()),
            generation: 1,
            spec: serde_json::json!({"selector": {}}),
            annotations: BTreeMap::new(),
            status: None,
        }
    }
}

impl RefreshFixture {
    /// Replaces the spec (as the user would write it; defaults fill the rest).
    pub fn spec(mut self, spec: serde_json::Value) -> Self {
        self.spec = spec;
        self
    }

    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    pub fn uid(mut self, uid: Option<&str>) -> Self {
        self.uid = uid.map(str::to_owned);
        self
    }

    pub fn generation(mut self, generation: i64) -> Self {
        self.generation = generation;
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn status(mut self, status: ServiceRefreshStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// The object. Panics on a spec that does not parse: a fixture is test code.
    pub fn build(self) -> ServiceRefresh {
        let spec = serde_json::from_value(self.spec).unwrap_or_else(|error| {
            panic!("fixture spec does not parse: {error}");
        });
        let mut refresh = ServiceRefresh::new(&self.name, spec);
        refresh.metadata.namespace = Some(self.namespace);
        refresh.metadata.uid = self.uid;
        refresh.metadata.generation = Some(self.generation);
        if !self.annotations.is_empty() {
            refresh.metadata.annotations = Some(self.annotations);
        }
        refresh.status = self.status;
        refresh
    }
}
