//! `spec.selector`: checked the way the API server checks a LabelSelector, with each problem
//! named by its field, then compiled into kube's [`Selector`] for matching.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use std::collections::BTreeMap;

use super::SpecError;
use super::names::{check_label_key, check_label_value};

/// A checked label selector and how to show it in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFilter {
    selector: Selector,
}

impl LabelFilter {
    pub fn compile(selector: &LabelSelector) -> Result<Self, SpecError> {
        for (key, value) in selector.match_labels.iter().flatten() {
            let field = format!("spec.selector.matchLabels[{key:?}]");
            check_label_key(key).map_err(|problem| SpecError::field(&field, problem))?;
            check_label_value(value).map_err(|problem| SpecError::field(&field, problem))?;
        }
        for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("spec.selector.matchExpressions[{index}]");
            check_label_key(&expression.key)
                .map_err(|problem| SpecError::field(format!("{field}.key"), problem))?;
            let values = expression.values.as_deref().unwrap_or_default();
            match expression.operator.as_str() {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        return Err(SpecError::field(
                            format!("{field}.values"),
                            format!(
                                "must not be empty when the operator is {}",
                                expression.operator
                            ),
                        ));
                    }
                    for (value_index, value) in values.iter().enumerate() {
                        check_label_value(value).map_err(|problem| {
                            SpecError::field(format!("{field}.values[{value_index}]"), problem)
                        })?;
                    }
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(SpecError::field(
                        format!("{field}.values"),
                        format!("must be empty when the operator is {}", expression.operator),
                    ));
                }
                "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(SpecError::field(
                        format!("{field}.operator"),
                        format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
                    ));
                }
            }
        }
        let selector = Selector::try_from(selector.clone())
            .map_err(|error| SpecError::field("spec.selector", error.0))?;
        Ok(Self { selector })
    }

    /// Whether a set of labels satisfies every requirement; `{}` matches everything. As in
    /// Kubernetes, NotIn also matches objects without the label.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }

    pub fn selects_everything(&self) -> bool {
        self.selector.selects_all()
    }
}

impl std::fmt::Display for LabelFilter {
    /// The selector in kubectl's `-l` syntax; `{}` for the empty one.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.selects_everything() {
            formatter.write_str("{} (every Deployment)")
        } else {
            write!(formatter, "{}", self.selector)
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn expression(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.map(|values| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn selector_semantics_follow_kubernetes() {
        let selector = LabelFilter::compile(&LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_owned(), "arcgis".to_owned())])),
            match_expressions: Some(vec![
                expression("tier", "In", Some(&["map", "feature"])),
                expression("canary", "NotIn", Some(&["true"])),
                expression("gisops.io/managed", "Exists", None),
                expression("skip", "DoesNotExist", Some(&[])),
            ]),
        })
        .expect("valid selector");
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let base = [("app", "arcgis"), ("tier", "map"), ("gisops.io/managed", "")];
        assert!(selector.matches(&labels(&base)));
        assert!(selector.matches(&labels(&[base[0], base[1], base[2], ("canary", "false")])));
        assert!(!selector.matches(&labels(&[base[0], base[1], base[2], ("canary", "true")])));
        assert!(!selector.matches(&labels(&[base[0], base[1], base[2], ("skip", "yes")])));
        assert!(!selector.matches(&labels(&[base[0], ("tier", "gp"), base[2]])));
        assert!(!selector.matches(&labels(&[base[0], base[1]])));
        assert!(!selector.matches(&labels(&[("app", "other"), base[1], base[2]])));
        assert_eq!(
            selector.to_string(),
            "app=arcgis,tier in (feature,map),canary notin (true),gisops.io/managed,!skip"
        );

        let everything = LabelFilter::compile(&LabelSelector::default()).expect("empty selector");
        assert!(everything.selects_everything());
        assert!(everything.matches(&BTreeMap::new()));
        assert_eq!(everything.to_string(), "{} (every Deployment)");
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let compile = |expressions: Vec<LabelSelectorRequirement>| {
            LabelFilter::compile(&LabelSelector {
                match_expressions: Some(expressions),
                match_labels: None,
            })
            .map(|_| ())
            .map_err(|error| error.to_string())
        };
        assert_eq!(
            compile(vec![expression("a", "Exists", None), expression("b", "Foo", None)]),
            Err(r#"spec.selector.matchExpressions[1].operator: "Foo" is not one of In, NotIn, Exists, DoesNotExist"#.to_owned())
        );
        assert_eq!(
            compile(vec![expression("a", "In", None)]),
            Err("spec.selector.matchExpressions[0].values: must not be empty when the operator is In".to_owned())
        );
        assert_eq!(
            compile(vec![expression("a", "NotIn", Some(&[]))]),
            Err("spec.selector.matchExpressions[0].values: must not be empty when the operator is NotIn".to_owned())
        );
        assert_eq!(
            compile(vec![expression("a", "DoesNotExist", Some(&["x"]))]),
            Err("spec.selector.matchExpressions[0].values: must be empty when the operator is DoesNotExist".to_owned())
        );
        assert!(
            compile(vec![expression("bad key!", "Exists", None)])
                .unwrap_err()
                .starts_with("spec.selector.matchExpressions[0].key: label key")
        );
        assert!(compile(vec![expression("Bad_Prefix/x", "Exists", None)]).is_err());
        assert!(
            compile(vec![expression("a", "In", Some(&["-leading-dash"]))])
                .unwrap_err()
                .contains(".values[0]")
        );

        let bad_label = LabelFilter::compile(&LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_owned(), "has space".to_owned())])),
            match_expressions: None,
        });
        assert!(
            bad_label
                .unwrap_err()
                .to_string()
                .starts_with(r#"spec.selector.matchLabels["app"]: label value"#)
        );
    }
}
