//! The disruption controller's arithmetic, as `getExpectedPodCount`,
//! `countHealthyPods` and `updatePdbStatus` compute it: how many pods a
//! budget expects, how many must stay healthy, and how many may go.

use serde_json::Value;

/// `intstr.GetScaledValueFromIntOrPercent`: an integer as it is, a
/// percentage of `total` rounded up or down; the error is Go's.
pub fn scaled_value(value: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    if let Some(number) = value.as_i64() {
        return Ok(number);
    }
    let Some(text) = value.as_str() else {
        return Err(
            "invalid value for IntOrString: invalid type: neither int nor percentage".into()
        );
    };
    let Some(digits) = text.strip_suffix('%') else {
        return Err(
            "invalid value for IntOrString: invalid type: string is not a percentage".into()
        );
    };
    let percent: i64 = digits.parse().map_err(|_| {
        format!("invalid value for IntOrString: strconv.Atoi: parsing {digits:?}: invalid syntax")
    })?;
    let scaled = percent * total;
    let floor = scaled.div_euclid(100);
    Ok(if round_up && scaled.rem_euclid(100) != 0 { floor + 1 } else { floor })
}

/// Whether a budget's expected pod count is its pods' controllers' summed
/// scale (`maxUnavailable`, or a percentage `minAvailable`) rather than
/// the number of pods its selector matches (an integer `minAvailable`).
pub fn needs_controller_scale(spec: &Value) -> bool {
    let present = |key: &str| spec.get(key).is_some_and(|value| !value.is_null());
    present("maxUnavailable") || (present("minAvailable") && !spec["minAvailable"].is_i64())
}

/// `(expectedPods, desiredHealthy)` of a budget `spec`, given the number of
/// matching pods and the controllers' summed scale.
pub fn expected_and_desired(
    spec: &Value,
    matching_pods: i64,
    scale: i64,
) -> Result<(i64, i64), String> {
    let present = |key: &str| spec.get(key).filter(|value| !value.is_null());
    if let Some(max_unavailable) = present("maxUnavailable") {
        let unavailable = scaled_value(max_unavailable, scale, true)?;
        return Ok((scale, (scale - unavailable).max(0)));
    }
    match present("minAvailable") {
        Some(min_available) if min_available.is_i64() => {
            Ok((matching_pods, min_available.as_i64().unwrap_or(0)))
        }
        Some(min_available) => Ok((scale, scaled_value(min_available, scale, true)?)),
        None => Ok((0, 0)),
    }
}

/// `disruptionsAllowed`: the healthy pods beyond the desired ones, none
/// while the budget expects no pods.
pub fn disruptions_allowed(current_healthy: i64, desired_healthy: i64, expected: i64) -> i64 {
    let allowed = current_healthy - desired_healthy;
    if expected <= 0 || allowed <= 0 { 0 } else { allowed }
}

/// Whether a pod counts as healthy: not being deleted, and Ready.
pub fn is_healthy(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn percentages_round_as_the_controller_rounds() {
        assert_eq!(scaled_value(&json!("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&json!("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&json!("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&json!("0%"), 10, true), Ok(0));
        assert_eq!(scaled_value(&json!(2), 10, true), Ok(2));
        assert_eq!(
            scaled_value(&json!("2"), 10, true),
            Err("invalid value for IntOrString: invalid type: string is not a percentage".into())
        );
    }

    #[test]
    fn min_available_integer_counts_the_matching_pods() {
        let spec = json!({"minAvailable": 2});
        assert!(!needs_controller_scale(&spec));
        assert_eq!(expected_and_desired(&spec, 3, 99), Ok((3, 2)));
        assert_eq!(disruptions_allowed(3, 2, 3), 1);
        assert_eq!(disruptions_allowed(2, 2, 3), 0);
    }

    #[test]
    fn min_available_percent_takes_the_controllers_scale_rounded_up() {
        let spec = json!({"minAvailable": "50%"});
        assert!(needs_controller_scale(&spec));
        // 50% of 3 desired replicas is 1.5: two must stay healthy.
        assert_eq!(expected_and_desired(&spec, 2, 3), Ok((3, 2)));
        assert_eq!(disruptions_allowed(3, 2, 3), 1);
    }

    #[test]
    fn max_unavailable_rounds_the_unavailable_share_up() {
        let spec = json!({"maxUnavailable": "34%"});
        assert!(needs_controller_scale(&spec));
        // 34% of 3 is 1.02: two may be unavailable, one must stay.
        assert_eq!(expected_and_desired(&spec, 3, 3), Ok((3, 1)));
        assert_eq!(disruptions_allowed(3, 1, 3), 2);
        let spec = json!({"maxUnavailable": 1});
        assert_eq!(expected_and_desired(&spec, 3, 3), Ok((3, 2)));
        let spec = json!({"maxUnavailable": 5});
        assert_eq!(expected_and_desired(&spec, 3, 3), Ok((3, 0)), "never below zero");
    }

    #[test]
    fn no_expected_pods_allow_no_disruption() {
        assert_eq!(disruptions_allowed(2, 0, 0), 0);
        assert_eq!(expected_and_desired(&json!({}), 2, 2), Ok((0, 0)));
        assert!(!needs_controller_scale(&json!({})));
    }
}
