//! PodDisruptionBudgets as the engine reads them: a lean snapshot of each `policy/v1`
//! budget (its selector and the disruption controller's verdict, `status.disruptionsAllowed`)
//! and which budgets cover a workload's pods, judged from its pod template labels. A budget
//! allows a restart as the eviction API allows an eviction: never while it allows no
//! disruption, nor while its status lags its spec.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use kube::core::{Selector, SelectorExt};
use serde::{Deserialize, Deserializer};

use super::ObjectKey;

/// What a budget matches: the pods of a workload, by namespace and pod template labels.
pub trait PodTemplate {
    fn namespace(&self) -> &str;
    fn pod_labels(&self) -> BTreeMap<String, String>;
}

impl<T: PodTemplate + ?Sized> PodTemplate for Arc<T> {
    fn namespace(&self) -> &str {
        (**self).namespace()
    }
    fn pod_labels(&self) -> BTreeMap<String, String> {
        (**self).pod_labels()
    }
}

/// A PodDisruptionBudget, keeping only what a restart decision reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DisruptionBudgetSnapshot {
    /// Name, namespace, resourceVersion and generation only.
    pub metadata: ObjectMeta,
    /// `spec.selector`, compiled. `None` for a budget without a selector (it covers no pod
    /// in `policy/v1`) or with one kube cannot compile (it covers none either: the API
    /// server would have refused it).
    pub selector: Option<Selector>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.currentHealthy` and `status.desiredHealthy`, for messages.
    pub current_healthy: i32,
    pub desired_healthy: i32,
    /// `status.observedGeneration`: the generation the disruption controller last judged.
    pub observed_generation: Option<i64>,
}

impl DisruptionBudgetSnapshot {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    /// Whether this budget covers the pods of `workload`: same namespace, and its selector
    /// matches the pod template's labels (an empty selector matches every pod).
    pub fn covers(&self, workload: &dyn PodTemplate) -> bool {
        let Some(selector) = &self.selector else {
            return false;
        };
        if self.metadata.namespace.as_deref() != Some(workload.namespace()) {
            return false;
        }
        selector.matches(&workload.pod_labels())
    }

    /// Why this budget allows no disruption now, in the eviction API's words; `None` when
    /// it allows one.
    pub fn refusal(&self) -> Option<String> {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        let generation = self.metadata.generation.unwrap_or(0);
        if self.observed_generation.unwrap_or(0) < generation {
            return Some(format!(
                "the disruption budget {name} is still being processed by the server"
            ));
        }
        (self.disruptions_allowed <= 0).then(|| {
            format!(
                "the disruption budget {name} needs {} healthy pods and has {} currently \
                 (disruptionsAllowed {})",
                self.desired_healthy, self.current_healthy, self.disruptions_allowed
            )
        })
    }
}

/// The budgets of one observation, by namespace.
#[derive(Clone, Debug, Default)]
pub struct DisruptionBudgets {
    by_namespace: BTreeMap<String, Vec<Arc<DisruptionBudgetSnapshot>>>,
}

impl DisruptionBudgets {
    pub fn new(budgets: impl IntoIterator<Item = Arc<DisruptionBudgetSnapshot>>) -> Self {
        let mut by_namespace: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for budget in budgets {
            let namespace = budget.metadata.namespace.clone().unwrap_or_default();
            by_namespace.entry(namespace).or_default().push(budget);
        }
        for budgets in by_namespace.values_mut() {
            budgets.sort_by_key(|budget| budget.key());
        }
        Self { by_namespace }
    }

    /// The budgets covering `workload`'s pods, in name order. A workload scaled to zero
    /// counts as covered too: it may scale up while its restart rolls out.
    pub fn covering(&self, workload: &dyn PodTemplate) -> Vec<Arc<DisruptionBudgetSnapshot>> {
        self.by_namespace
            .get(workload.namespace())
            .into_iter()
            .flatten()
            .filter(|budget| budget.covers(workload))
            .cloned()
            .collect()
    }
}

impl<'de> Deserialize<'de> for DisruptionBudgetSnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Wire {
            metadata: WireMeta,
            spec: WireSpec,
            status: WireStatus,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireMeta {
            name: Option<String>,
            namespace: Option<String>,
            resource_version: Option<String>,
            generation: Option<i64>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireSpec {
            selector: Option<LabelSelector>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireStatus {
            disruptions_allowed: i32,
            current_healthy: i32,
            desired_healthy: i32,
            observed_generation: Option<i64>,
        }
        let wire = Wire::deserialize(deserializer)?;
        Ok(Self {
            metadata: ObjectMeta {
                name: wire.metadata.name,
                namespace: wire.metadata.namespace,
                resource_version: wire.metadata.resource_version,
                generation: wire.metadata.generation,
                ..ObjectMeta::default()
            },
            selector: wire.spec.selector.and_then(|selector| Selector::try_from(selector).ok()),
            disruptions_allowed: wire.status.disruptions_allowed,
            current_healthy: wire.status.current_healthy,
            desired_healthy: wire.status.desired_healthy,
            observed_generation: wire.status.observed_generation,
        })
    }
}

impl Resource for DisruptionBudgetSnapshot {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "PodDisruptionBudget".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "policy".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "poddisruptionbudgets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn budget(selector: serde_json::Value, allowed: i32) -> DisruptionBudgetSnapshot {
        serde_json::from_value(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-pdb", "namespace": "arcgis", "generation": 2,
                "resourceVersion": "9", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"minAvailable": 2, "selector": selector},
            "status": {"observedGeneration": 2, "disruptionsAllowed": allowed,
                "currentHealthy": 2 + allowed, "desiredHealthy": 2, "expectedPods": 3},
        }))
        .expect("a budget")
    }

    struct Pods(String, BTreeMap<String, String>);

    impl PodTemplate for Pods {
        fn namespace(&self) -> &str {
            &self.0
        }
        fn pod_labels(&self) -> BTreeMap<String, String> {
            self.1.clone()
        }
    }

    fn workload(namespace: &str, labels: &[(&str, &str)]) -> Pods {
        Pods(
            namespace.to_owned(),
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        )
    }

    #[test]
    fn a_budget_covers_the_pods_its_selector_matches_in_its_namespace() {
        let web = budget(json!({"matchLabels": {"app": "web"}}), 1);
        assert!(web.covers(&workload("arcgis", &[("app", "web"), ("tier", "map")])));
        assert!(!web.covers(&workload("arcgis", &[("app", "geo")])));
        assert!(!web.covers(&workload("other", &[("app", "web")])));
        let expressions = budget(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "geo"]}]}),
            1,
        );
        assert!(expressions.covers(&workload("arcgis", &[("app", "geo")])));
        // policy/v1: an empty selector matches every pod of the namespace, a null one none.
        assert!(budget(json!({}), 1).covers(&workload("arcgis", &[("app", "geo")])));
        assert!(!budget(json!(null), 1).covers(&workload("arcgis", &[("app", "geo")])));
    }

    #[test]
    fn a_budget_refuses_at_zero_and_while_its_status_lags_in_the_eviction_apis_words() {
        assert_eq!(budget(json!({}), 1).refusal(), None);
        assert_eq!(
            budget(json!({}), 0).refusal().as_deref(),
            Some(
                "the disruption budget web-pdb needs 2 healthy pods and has 2 currently \
                 (disruptionsAllowed 0)"
            )
        );
        let mut lagging = budget(json!({}), 1);
        lagging.metadata.generation = Some(3);
        assert_eq!(
            lagging.refusal().as_deref(),
            Some("the disruption budget web-pdb is still being processed by the server")
        );
        assert_eq!(lagging.metadata.managed_fields, None, "nothing else is kept");
    }

    #[test]
    fn budgets_covering_a_workload_come_in_name_order() {
        let mut second = budget(json!({"matchLabels": {"app": "web"}}), 1);
        second.metadata.name = Some("a-pdb".to_owned());
        let budgets = DisruptionBudgets::new([
            Arc::new(budget(json!({"matchLabels": {"app": "web"}}), 1)),
            Arc::new(second),
        ]);
        let mut web = workload("arcgis", &[("app", "web")]);
        let names: Vec<_> = budgets.covering(&web).iter().map(|b| b.key().name).collect();
        assert_eq!(names, ["a-pdb", "web-pdb"]);
        web.0 = "other".to_owned();
        assert!(budgets.covering(&web).is_empty());
    }

    #[test]
    fn a_budget_keeps_its_identity_and_is_listed_from_the_policy_v1_api() {
        let mut parsed = budget(json!({}), 1);
        assert_eq!(
            (
                parsed.metadata.name.as_deref(),
                parsed.metadata.namespace.as_deref(),
                parsed.metadata.resource_version.as_deref(),
                parsed.metadata.generation,
            ),
            (Some("web-pdb"), Some("arcgis"), Some("9"), Some(2))
        );
        assert_eq!(parsed.key(), ObjectKey::new("arcgis", "web-pdb"));
        // kube's watchers list, watch and relist by these.
        assert_eq!(DisruptionBudgetSnapshot::kind(&()), "PodDisruptionBudget");
        assert_eq!(DisruptionBudgetSnapshot::api_version(&()), "policy/v1");
        assert_eq!(
            DisruptionBudgetSnapshot::url_path(&(), Some("arcgis")),
            "/apis/policy/v1/namespaces/arcgis/poddisruptionbudgets"
        );
        assert_eq!(parsed.meta().name.as_deref(), Some("web-pdb"));
        parsed.meta_mut().resource_version = Some("10".to_owned());
        assert_eq!(parsed.metadata.resource_version.as_deref(), Some("10"));
    }
}
