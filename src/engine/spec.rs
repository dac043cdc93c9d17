//! Validation of a `ServiceRefreshSpec` beyond what the CRD schema can express: durations,
//! label selectors, glob patterns and object names. A spec that passes becomes a
//! [`ValidSpec`], the parsed form planning and the run state machine work from; one that
//! fails yields a [`SpecError`] whose message names the offending field so a person can fix it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::crd::{FailurePolicy, ServiceRefreshSpec};

/// A spec the schema let through but the operator cannot act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec.batchTimeout {0:?} is not a duration such as 90s, 10m or 1h30m")]
    MalformedDuration(String),
    #[error("spec.batchTimeout {0:?} must be longer than zero")]
    ZeroDuration(String),
    #[error("spec.batchTimeout {0:?} is too long; the maximum is 168h (one week)")]
    DurationTooLong(String),
    #[error("{field}: {problem}")]
    InvalidField { field: String, problem: String },
}

impl SpecError {
    fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidField { field: field.into(), problem: problem.into() }
    }
}

/// Longest batch timeout accepted, in milliseconds (one week). Far beyond any sensible
/// rollout, and it keeps the wake-up deadlines handed to the controller's timers sane.
pub const MAX_BATCH_TIMEOUT_MILLIS: i64 = 7 * 24 * 3_600_000;

/// Largest batch the CRD schema allows; checked again because a schema can be bypassed
/// (an older CRD version, or a status written by hand).
pub const MAX_BATCH_SIZE: u32 = 100;

/// A spec that passed validation, in the parsed form the engine works with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidSpec {
    pub batch_size: usize,
    pub batch_timeout: SignedDuration,
    pub failure_policy: FailurePolicy,
    pub selector: Selector,
    /// Empty means every name matches.
    pub name_patterns: Vec<Glob>,
    pub exclude: BTreeSet<String>,
    /// Empty means the ServiceRefresh's own namespace.
    pub namespaces: BTreeSet<String>,
}

impl ValidSpec {
    /// The namespaces whose Deployments are candidates for a plan.
    pub fn target_namespaces(&self, own_namespace: &str) -> BTreeSet<String> {
        if self.namespaces.is_empty() {
            BTreeSet::from([own_namespace.to_owned()])
        } else {
            self.namespaces.clone()
        }
    }

    /// Whether a name passes `namePatterns` (when any) and is not excluded.
    pub fn name_in_scope(&self, name: &str) -> bool {
        let pattern_ok = self.name_patterns.is_empty()
            || self.name_patterns.iter().any(|glob| glob.matches(name));
        pattern_ok && !self.exclude.contains(name)
    }
}

/// Checks everything about a spec the schema cannot, and parses it.
pub fn validate(spec: &ServiceRefreshSpec) -> Result<ValidSpec, SpecError> {
    if spec.batch_size == 0 || spec.batch_size > MAX_BATCH_SIZE {
        return Err(SpecError::field(
            "spec.batchSize",
            format!("{} is outside the range 1 to {MAX_BATCH_SIZE}", spec.batch_size),
        ));
    }
    let batch_timeout = parse_batch_timeout(&spec.batch_timeout)?;
    let selector = Selector::compile(&spec.selector)?;

    let mut name_patterns = Vec::with_capacity(spec.name_patterns.len());
    for (index, pattern) in spec.name_patterns.iter().enumerate() {
        name_patterns.push(
            Glob::compile(pattern).map_err(|problem| {
                SpecError::field(format!("spec.namePatterns[{index}]"), problem)
            })?,
        );
    }

    for (index, name) in spec.exclude.iter().enumerate() {
        check_dns_subdomain(name).map_err(|problem| {
            SpecError::field(format!("spec.exclude[{index}]"), format!("{name:?} {problem}"))
        })?;
    }

    for (index, namespace) in spec.namespaces.iter().enumerate() {
        check_dns_label(namespace).map_err(|problem| {
            SpecError::field(
                format!("spec.namespaces[{index}]"),
                format!("{namespace:?} {problem}"),
            )
        })?;
    }

    for (index, trigger) in spec.config_map_triggers.iter().enumerate() {
        check_dns_subdomain(&trigger.name).map_err(|problem| {
            SpecError::field(
                format!("spec.configMapTriggers[{index}].name"),
                format!("{:?} {problem}", trigger.name),
            )
        })?;
        if let Some(namespace) = &trigger.namespace {
            check_dns_label(namespace).map_err(|problem| {
                SpecError::field(
                    format!("spec.configMapTriggers[{index}].namespace"),
                    format!("{namespace:?} {problem}"),
                )
            })?;
        }
        for (key_index, key) in trigger.keys.iter().enumerate() {
            check_config_map_key(key).map_err(|problem| {
                SpecError::field(
                    format!("spec.configMapTriggers[{index}].keys[{key_index}]"),
                    format!("{key:?} {problem}"),
                )
            })?;
        }
    }

    Ok(ValidSpec {
        // Bounded by MAX_BATCH_SIZE above, so it fits any usize.
        batch_size: spec.batch_size as usize,
        batch_timeout,
        failure_policy: spec.failure_policy,
        selector,
        name_patterns,
        exclude: spec.exclude.iter().cloned().collect(),
        namespaces: spec.namespaces.iter().cloned().collect(),
    })
}

/// Parses a Go-style duration restricted to the units the CRD pattern allows
/// (`ms`, `s`, `m`, `h`), such as `90s`, `10m`, `1h30m` or `500ms`.
pub fn parse_batch_timeout(text: &str) -> Result<SignedDuration, SpecError> {
    let malformed = || SpecError::MalformedDuration(text.to_owned());
    let too_long = || SpecError::DurationTooLong(text.to_owned());
    if text.is_empty() {
        return Err(malformed());
    }
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut total_millis: i64 = 0;
    while position < bytes.len() {
        let digits_start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        if position == digits_start {
            return Err(malformed());
        }
        let amount: i64 = text[digits_start..position].parse().map_err(|_| too_long())?;
        let rest = &text[position..];
        // "ms" must be tried before "m", or "500ms" would read as 500 minutes then junk.
        let (unit_millis, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return Err(malformed());
        };
        position += unit_len;
        let millis = amount.checked_mul(unit_millis).ok_or_else(too_long)?;
        total_millis = total_millis.checked_add(millis).ok_or_else(too_long)?;
    }
    if total_millis == 0 {
        return Err(SpecError::ZeroDuration(text.to_owned()));
    }
    if total_millis > MAX_BATCH_TIMEOUT_MILLIS {
        return Err(too_long());
    }
    Ok(SignedDuration::from_millis(total_millis))
}

/// A compiled label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Operator {
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Checks a LabelSelector the way the API server's selector conversion does, and compiles it.
    pub fn compile(selector: &LabelSelector) -> Result<Self, SpecError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            let field = format!("spec.selector.matchLabels[{key:?}]");
            check_label_key(key).map_err(|problem| SpecError::field(&field, problem))?;
            check_label_value(value).map_err(|problem| SpecError::field(&field, problem))?;
            requirements.push(Requirement {
                key: key.clone(),
                operator: Operator::In(BTreeSet::from([value.clone()])),
            });
        }
        for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("spec.selector.matchExpressions[{index}]");
            check_label_key(&expression.key)
                .map_err(|problem| SpecError::field(format!("{field}.key"), problem))?;
            let values = expression.values.clone().unwrap_or_default();
            let operator = match expression.operator.as_str() {
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
                    let set: BTreeSet<String> = values.into_iter().collect();
                    if expression.operator == "In" {
                        Operator::In(set)
                    } else {
                        Operator::NotIn(set)
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        return Err(SpecError::field(
                            format!("{field}.values"),
                            format!("must be empty when the operator is {}", expression.operator),
                        ));
                    }
                    if expression.operator == "Exists" {
                        Operator::Exists
                    } else {
                        Operator::DoesNotExist
                    }
                }
                other => {
                    return Err(SpecError::field(
                        format!("{field}.operator"),
                        format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
                    ));
                }
            };
            requirements.push(Requirement { key: expression.key.clone(), operator });
        }
        Ok(Self { requirements })
    }

    /// Whether a set of labels satisfies every requirement; an empty selector matches all.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match &requirement.operator {
                Operator::In(values) => value.is_some_and(|value| values.contains(value)),
                // As in Kubernetes, NotIn also matches objects without the label.
                Operator::NotIn(values) => value.is_none_or(|value| !values.contains(value)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }

    /// Whether the selector selects every object (`{}`).
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// A compiled glob on Deployment names: `*` matches any run of characters, `?` exactly one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    /// Checks a pattern: non-empty, and made only of characters a Deployment name can hold
    /// plus the two wildcards, so a typo like `arcgis_*` is reported instead of matching nothing.
    fn compile(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("a name pattern must not be empty".to_owned());
        }
        if pattern.len() > 253 {
            return Err(format!("{pattern:?} is longer than 253 characters"));
        }
        if let Some(bad) = pattern.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '*' | '?'))
        }) {
            return Err(format!(
                "{pattern:?} contains {bad:?}; use lowercase letters, digits, '-', '.', and the wildcards '*' and '?'"
            ));
        }
        Ok(Self { pattern: pattern.chars().collect() })
    }

    /// Matches the whole name. Greedy with one backtrack point per `*`, which keeps it linear
    /// in practice and never exponential.
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut last_star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < self.pattern.len() && (self.pattern[p] == '?' || self.pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if p < self.pattern.len() && self.pattern[p] == '*' {
                last_star = Some((p, t));
                p += 1;
            } else if let Some((star_p, star_t)) = last_star {
                p = star_p + 1;
                t = star_t + 1;
                last_star = Some((star_p, star_t + 1));
            } else {
                return false;
            }
        }
        self.pattern[p..].iter().all(|&c| c == '*')
    }
}

fn is_alphanumeric_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: what namespaces are.
fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long".to_owned());
    }
    let chars: Vec<char> = name.chars().collect();
    let edges_ok = is_alphanumeric_lower(chars[0]) && is_alphanumeric_lower(chars[chars.len() - 1]);
    if !edges_ok || !chars.iter().all(|&c| is_alphanumeric_lower(c) || c == '-') {
        return Err("is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit".to_owned());
    }
    Ok(())
}

/// RFC 1123 subdomain: what Deployment and ConfigMap names are.
fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters long".to_owned());
    }
    for part in name.split('.') {
        let chars: Vec<char> = part.chars().collect();
        let ok = !chars.is_empty()
            && is_alphanumeric_lower(chars[0])
            && is_alphanumeric_lower(chars[chars.len() - 1])
            && chars.iter().all(|&c| is_alphanumeric_lower(c) || c == '-');
        if !ok {
            return Err("is not a valid name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit".to_owned());
        }
    }
    Ok(())
}

fn check_config_map_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err("must be 1 to 253 characters long".to_owned());
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(
            "is not a valid ConfigMap key: use letters, digits, '-', '_' and '.'".to_owned()
        );
    }
    Ok(())
}

/// The "name" part of a qualified name: 1 to 63 characters, alphanumeric at both ends,
/// with '-', '_' and '.' inside.
fn check_qualified_name_part(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    !chars.is_empty()
        && chars.len() <= 63
        && chars[0].is_ascii_alphanumeric()
        && chars[chars.len() - 1].is_ascii_alphanumeric()
        && chars.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && check_dns_subdomain(prefix).is_err()
    {
        return Err(format!("label key {key:?} has an invalid prefix {prefix:?}"));
    }
    if !check_qualified_name_part(name) {
        return Err(format!(
            "label key {key:?} is not valid: the name part must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || check_qualified_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is not valid: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;
    use crate::crd::ConfigMapTrigger;

    fn spec() -> ServiceRefreshSpec {
        serde_json::from_value(serde_json::json!({"selector": {}})).expect("minimal spec parses")
    }

    fn expression(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.map(|values| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn durations_parse_like_go() {
        let cases = [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1m500ms", 60_500),
            ("2h", 7_200_000),
            ("0h1s", 1_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_batch_timeout(text),
                Ok(SignedDuration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_are_explained() {
        for text in ["10x", "", "m", "10", "1.5h", "-1m", "10 m", "1d", "s10"] {
            let error = parse_batch_timeout(text).expect_err(text);
            assert_eq!(error, SpecError::MalformedDuration(text.to_owned()));
        }
        assert_eq!(
            parse_batch_timeout("10x").unwrap_err().to_string(),
            r#"spec.batchTimeout "10x" is not a duration such as 90s, 10m or 1h30m"#
        );
        assert_eq!(parse_batch_timeout("0s"), Err(SpecError::ZeroDuration("0s".to_owned())));
        assert_eq!(
            parse_batch_timeout("0m0ms").unwrap_err().to_string(),
            r#"spec.batchTimeout "0m0ms" must be longer than zero"#
        );
        assert!(matches!(
            parse_batch_timeout("99999999999999999999h"),
            Err(SpecError::DurationTooLong(_))
        ));
        assert!(matches!(
            parse_batch_timeout("9999999999999999h"),
            Err(SpecError::DurationTooLong(_))
        ));
        assert_eq!(parse_batch_timeout("168h"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(
            parse_batch_timeout("168h1ms").unwrap_err().to_string(),
            r#"spec.batchTimeout "168h1ms" is too long; the maximum is 168h (one week)"#
        );
    }

    #[test]
    fn selector_semantics_follow_kubernetes() {
        let selector = Selector::compile(&LabelSelector {
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

        let everything = Selector::compile(&LabelSelector::default()).expect("empty selector");
        assert!(everything.is_everything());
        assert!(everything.matches(&BTreeMap::new()));
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let compile = |expressions: Vec<LabelSelectorRequirement>| {
            Selector::compile(&LabelSelector {
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

        let bad_label = Selector::compile(&LabelSelector {
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

    #[test]
    fn globs_match_whole_names() {
        let glob = |pattern: &str| Glob::compile(pattern).expect(pattern);
        assert!(glob("arcgis-*-mapserver-*").matches("arcgis-roads-mapserver-abc"));
        assert!(!glob("arcgis-*-mapserver-*").matches("arcgis-roads-featureserver-abc"));
        assert!(glob("*").matches(""));
        assert!(glob("a?c").matches("abc"));
        assert!(!glob("a?c").matches("ac"));
        assert!(glob("*a*a*a*").matches("banana-a"));
        assert!(!glob("*a*a*a*b").matches("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(glob("exact").matches("exact"));
        assert!(!glob("exact").matches("exactly"));
        assert!(glob("*ly").matches("exactly"));
    }

    #[test]
    fn validate_reports_each_kind_of_bad_field() {
        let mut bad_pattern = spec();
        bad_pattern.name_patterns = vec!["ok-*".to_owned(), "Arc_*".to_owned()];
        assert!(
            validate(&bad_pattern)
                .unwrap_err()
                .to_string()
                .starts_with("spec.namePatterns[1]: \"Arc_*\" contains 'A'")
        );

        let mut bad_namespace = spec();
        bad_namespace.namespaces = vec!["arcgis".to_owned(), "Arcgis".to_owned()];
        assert!(
            validate(&bad_namespace)
                .unwrap_err()
                .to_string()
                .starts_with("spec.namespaces[1]: \"Arcgis\" is not a valid name")
        );

        let mut bad_exclude = spec();
        bad_exclude.exclude = vec!["".to_owned()];
        assert_eq!(
            validate(&bad_exclude).unwrap_err().to_string(),
            "spec.exclude[0]: \"\" must be 1 to 253 characters long"
        );

        let mut bad_trigger = spec();
        bad_trigger.config_map_triggers = vec![ConfigMapTrigger {
            name: "proxy".to_owned(),
            namespace: None,
            keys: vec!["a b".to_owned()],
        }];
        assert!(
            validate(&bad_trigger)
                .unwrap_err()
                .to_string()
                .starts_with("spec.configMapTriggers[0].keys[0]:")
        );

        let mut bad_size = spec();
        bad_size.batch_size = 0;
        assert_eq!(
            validate(&bad_size).unwrap_err().to_string(),
            "spec.batchSize: 0 is outside the range 1 to 100"
        );

        let mut bad_timeout = spec();
        bad_timeout.batch_timeout = "10x".to_owned();
        assert_eq!(validate(&bad_timeout), Err(SpecError::MalformedDuration("10x".to_owned())));
    }

    #[test]
    fn valid_spec_resolves_scope() {
        let mut spec = spec();
        spec.name_patterns = vec!["arcgis-*".to_owned()];
        spec.exclude = vec!["arcgis-keep".to_owned()];
        let valid = validate(&spec).expect("valid");
        assert_eq!(valid.batch_size, 10);
        assert_eq!(valid.batch_timeout, SignedDuration::from_mins(10));
        assert_eq!(valid.target_namespaces("own"), BTreeSet::from(["own".to_owned()]));
        assert!(valid.name_in_scope("arcgis-map"));
        assert!(!valid.name_in_scope("arcgis-keep"));
        assert!(!valid.name_in_scope("other"));
    }
}
