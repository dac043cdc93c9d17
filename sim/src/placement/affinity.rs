//! Which nodes a pod may go to, room aside: its `nodeSelector` and required
//! node affinity, as the `NodeAffinity` plugin reads them (its pre-filter
//! keeps only the nodes that every term names by `metadata.name`, when all
//! do, as a DaemonSet's pods do; its filter matches the terms' label
//! expressions and fields), and whether it tolerates a cordoned node (the
//! `NodeUnschedulable` plugin lets through a pod that tolerates the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint, as DaemonSet pods
//! do).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::cache::NodeView;

/// The taint a cordoned node stands for.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// One requirement of a node selector term, on a label or a field.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: String,
    values: Vec<String>,
}

impl Requirement {
    fn of(value: &Value) -> Requirement {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let values = value
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|value| value.as_str().map(String::from))
            .collect();
        Requirement { key: text("key"), operator: text("operator"), values }
    }

    /// Whether `actual` (the label's or field's value; `None` when the
    /// node has no such label) satisfies the requirement.
    fn matches(&self, actual: Option<&str>) -> bool {
        let listed = |value: &str| self.values.iter().any(|listed| listed == value);
        let compare = |wanted: fn(i64, i64) -> bool| {
            let bound = match self.values.as_slice() {
                [only] => only.parse::<i64>().ok(),
                _ => None,
            };
            match (actual.and_then(|value| value.parse::<i64>().ok()), bound) {
                (Some(value), Some(bound)) => wanted(value, bound),
                _ => false,
            }
        };
        match self.operator.as_str() {
            "In" => actual.is_some_and(listed),
            "NotIn" => actual.is_none_or(|value| !listed(value)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            "Gt" => compare(|value, bound| value > bound),
            "Lt" => compare(|value, bound| value < bound),
            _ => false,
        }
    }
}

/// A node selector term: label expressions and fields, all of which must
/// hold.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    expressions: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Term {
    fn of(value: &Value) -> Term {
        let list = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Requirement::of)
                .collect()
        };
        Term { expressions: list("matchExpressions"), fields: list("matchFields") }
    }

    /// An empty term matches no node; `metadata.name` is the only field.
    fn matches(&self, node: &NodeView) -> bool {
        if self.expressions.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.expressions.iter().all(|requirement| {
            requirement.matches(node.labels.get(&requirement.key).map(String::as_str))
        }) && self.fields.iter().all(|requirement| {
            requirement.key == "metadata.name" && requirement.matches(Some(&node.name))
        })
    }

    /// The nodes its `metadata.name In` fields allow (all of them must);
    /// `None` when it names none.
    fn named_nodes(&self) -> Option<BTreeSet<String>> {
        self.fields
            .iter()
            .filter(|field| field.key == "metadata.name" && field.operator == "In")
            .map(|field| field.values.iter().cloned().collect::<BTreeSet<String>>())
            .reduce(|all, one| all.intersection(&one).cloned().collect())
    }
}

/// What a pod asks of a node besides room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConstraints {
    /// `spec.nodeSelector`.
    selector: BTreeMap<String, String>,
    /// The required node affinity's terms (any one must hold), if it has
    /// any.
    terms: Option<Vec<Term>>,
    /// A toleration of the `node.kubernetes.io/unschedulable:NoSchedule`
    /// taint.
    tolerates_unschedulable: bool,
}

impl NodeConstraints {
    /// A pod's constraints.
    pub fn of(pod: &Value) -> NodeConstraints {
        let selector = pod
            .pointer("/spec/nodeSelector")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_string()))
            .collect();
        let terms = pod
            .pointer(
                "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms",
            )
            .and_then(Value::as_array)
            .map(|terms| terms.iter().map(Term::of).collect());
        let tolerations = pod.pointer("/spec/tolerations").and_then(Value::as_array);
        let tolerates_unschedulable = tolerations.into_iter().flatten().any(|toleration| {
            let text = |key: &str| toleration.get(key).and_then(Value::as_str).unwrap_or("");
            let effect = text("effect");
            let key = text("key");
            (effect.is_empty() || effect == "NoSchedule")
                && (key.is_empty() || key == UNSCHEDULABLE_TAINT)
                && match text("operator") {
                    "Exists" => true,
                    "" | "Equal" => text("value").is_empty(),
                    _ => false,
                }
        });
        NodeConstraints { selector, terms, tolerates_unschedulable }
    }

    /// The nodes the `NodeAffinity` pre-filter keeps: those named by
    /// `metadata.name In` in every term (their union), when every term
    /// names some; `None`: every node.
    pub fn candidates(&self) -> Option<BTreeSet<String>> {
        let terms = self.terms.as_ref().filter(|terms| !terms.is_empty())?;
        let mut union = BTreeSet::new();
        for term in terms {
            union.extend(term.named_nodes()?);
        }
        Some(union)
    }

    /// Whether the node's labels and name satisfy the pod's node selector
    /// and required affinity (the `NodeAffinity` filter).
    pub fn matches(&self, node: &NodeView) -> bool {
        let selected = self.selector.iter().all(|(key, value)| node.labels.get(key) == Some(value));
        let affine =
            self.terms.as_ref().is_none_or(|terms| terms.iter().any(|term| term.matches(node)));
        selected && affine
    }

    /// Whether the pod may go to a cordoned node.
    pub fn tolerates_unschedulable(&self) -> bool {
        self.tolerates_unschedulable
    }
}
