//! `spec.batchTimeout`: a Go-style duration such as `90s`, `10m`, `1h30m` or `500ms`, the
//! shape the CRD's pattern admits. jiff parses it; the shape is checked first because jiff
//! also reads forms the schema refuses (`1.5h`, `1 hour`, ISO 8601), and a spec that reached
//! the operator past the schema must get the same answer.

use jiff::SignedDuration;

use super::SpecError;

/// Longest batch timeout accepted (one week): far beyond any sensible rollout, and it keeps
/// the wake-up deadlines handed to the controller's timers sane.
pub const MAX_BATCH_TIMEOUT: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Shortest batch timeout accepted: no rollout becomes ready faster, so anything shorter
/// only records rollouts that go well as TimedOut.
pub const MIN_BATCH_TIMEOUT: SignedDuration = SignedDuration::from_secs(5);

/// Parses a batch timeout; values under 5s and over one week are refused, as the CRD's
/// validation rule refuses them at admission.
pub fn parse_batch_timeout(text: &str) -> Result<SignedDuration, SpecError> {
    let malformed = || SpecError::MalformedDuration(text.to_owned());
    if !has_go_duration_shape(text) {
        return Err(malformed());
    }
    // Once the shape is right, all jiff can refuse is a number too big for it.
    let duration: SignedDuration =
        text.parse().map_err(|_| SpecError::DurationTooLong(text.to_owned()))?;
    if duration < MIN_BATCH_TIMEOUT {
        return Err(SpecError::DurationTooShort(text.to_owned()));
    }
    if duration > MAX_BATCH_TIMEOUT {
        return Err(SpecError::DurationTooLong(text.to_owned()));
    }
    Ok(duration)
}

/// Longest `spec.triggerSettle` accepted, as the CRD's validation rule refuses longer ones.
pub const MAX_TRIGGER_SETTLE: SignedDuration = SignedDuration::from_hours(1);

/// Parses `spec.triggerSettle`: a duration of the same shape, from 0s to one hour.
pub fn parse_trigger_settle(text: &str) -> Result<SignedDuration, SpecError> {
    let refuse = |problem: String| SpecError::InvalidField {
        field: "spec.triggerSettle".to_owned(),
        problem: format!("{text:?} {problem}"),
    };
    if !has_go_duration_shape(text) {
        return Err(refuse("is not a duration such as 5s, 30s or 1m".to_owned()));
    }
    match text.parse::<SignedDuration>() {
        Ok(duration) if duration <= MAX_TRIGGER_SETTLE => Ok(duration),
        _ => Err(refuse("is too long; the maximum is 1h".to_owned())),
    }
}

/// `^([0-9]+(ms|s|m|h))+$`, the CRD's pattern.
pub(super) fn has_go_duration_shape(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        rest = if let Some(after) = rest.strip_prefix("ms") {
            after
        } else if let Some(after) = rest.strip_prefix(['s', 'm', 'h']) {
            after
        } else {
            return false;
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_settle_runs_from_zero_to_an_hour() {
        assert_eq!(parse_trigger_settle("0s"), Ok(SignedDuration::ZERO));
        assert_eq!(parse_trigger_settle("5s"), Ok(SignedDuration::from_secs(5)));
        assert_eq!(parse_trigger_settle("1h"), Ok(MAX_TRIGGER_SETTLE));
        for bad in ["61m", "5 s", "", "-1s"] {
            let error = parse_trigger_settle(bad).expect_err(bad).to_string();
            assert!(error.starts_with("spec.triggerSettle: "), "{error}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        let cases = [
            ("90s", 90_000),
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("5s", 5_000),
            ("4s1000ms", 5_000),
            ("1m500ms", 60_500),
            ("2h", 7_200_000),
            ("0h6s", 6_000),
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
        for text in
            ["10x", "", "m", "10", "1.5h", "-1m", "10 m", "1d", "s10", "1 hour", "PT1H", "5w"]
        {
            let error = parse_batch_timeout(text).expect_err(text);
            assert_eq!(error, SpecError::MalformedDuration(text.to_owned()), "{text}");
        }
        assert_eq!(
            parse_batch_timeout("10x").unwrap_err().to_string(),
            r#"spec.batchTimeout "10x" is not a duration such as 90s, 10m or 1h30m"#
        );
        assert_eq!(parse_batch_timeout("0s"), Err(SpecError::DurationTooShort("0s".to_owned())));
        assert_eq!(
            parse_batch_timeout("4s999ms").unwrap_err().to_string(),
            r#"spec.batchTimeout "4s999ms" is too short; the minimum is 5s"#
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
}
