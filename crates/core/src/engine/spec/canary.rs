//! `spec.pacing.canary` and `spec.pacing.slowStart`: the canary's size (1 to `batchSize`)
//! and its soak (a duration of the `batchTimeout` grammar, 0s to 24h). The schema refuses
//! most of this at admission; a spec that got past it gets the same answer here.

use std::num::NonZeroUsize;

use jiff::SignedDuration;

use super::SpecError;
use super::duration::has_go_duration_shape;
use crate::crd::{MAX_CANARY_SOAK, PacingSpec};

/// Longest soak accepted, as the CRD's validation rule refuses longer ones.
pub const MAX_SOAK: SignedDuration = SignedDuration::from_hours(24);

/// A canary that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidCanary {
    pub size: NonZeroUsize,
    pub soak: SignedDuration,
    /// `spec.pacing.canary.soak` as written, for messages.
    pub soak_text: String,
}

pub(super) fn validate_canary(
    pacing: Option<&PacingSpec>,
    batch_size: NonZeroUsize,
) -> Result<Option<ValidCanary>, SpecError> {
    let Some(canary) = pacing.and_then(|pacing| pacing.canary.as_ref()) else {
        return Ok(None);
    };
    let size = usize::try_from(canary.size)
        .ok()
        .and_then(NonZeroUsize::new)
        .filter(|size| *size <= batch_size)
        .ok_or_else(|| SpecError::InvalidField {
            field: "spec.pacing.canary.size".to_owned(),
            problem: format!(
                "{} is outside the range 1 to spec.batchSize ({batch_size})",
                canary.size
            ),
        })?;
    let refuse = |problem: &str| SpecError::InvalidField {
        field: "spec.pacing.canary.soak".to_owned(),
        problem: format!("{:?} {problem}", canary.soak),
    };
    if !has_go_duration_shape(&canary.soak) {
        return Err(refuse("is not a duration such as 30s, 5m or 1h"));
    }
    let soak = canary
        .soak
        .parse::<SignedDuration>()
        .ok()
        .filter(|soak| *soak <= MAX_SOAK)
        .ok_or_else(|| refuse(&format!("is too long; the maximum is {MAX_CANARY_SOAK}")))?;
    Ok(Some(ValidCanary { size, soak, soak_text: canary.soak.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::CanarySpec;

    fn pacing(size: u32, soak: &str) -> PacingSpec {
        PacingSpec {
            canary: Some(CanarySpec { size, soak: soak.to_owned() }),
            ..PacingSpec::default()
        }
    }

    fn ten() -> NonZeroUsize {
        NonZeroUsize::new(10).expect("not zero")
    }

    #[test]
    fn a_canary_within_the_batch_size_and_a_soak_up_to_a_day_pass() {
        let valid = validate_canary(Some(&pacing(3, "5m")), ten()).expect("valid");
        let valid = valid.expect("a canary");
        assert_eq!((valid.size.get(), valid.soak), (3, SignedDuration::from_mins(5)));
        let zero = validate_canary(Some(&pacing(10, "0s")), ten()).expect("valid");
        assert_eq!(zero.map(|canary| canary.soak), Some(SignedDuration::ZERO));
        assert_eq!(validate_canary(None, ten()), Ok(None));
    }

    #[test]
    fn a_canary_of_zero_or_above_the_batch_size_and_a_bad_soak_are_refused() {
        for (size, soak, words) in [
            (0, "5m", "spec.pacing.canary.size: 0 is outside the range 1 to spec.batchSize (10)"),
            (11, "5m", "spec.pacing.canary.size: 11 is outside the range"),
            (2, "5 minutes", "spec.pacing.canary.soak: \"5 minutes\" is not a duration"),
            (2, "24h1s", "spec.pacing.canary.soak: \"24h1s\" is too long; the maximum is 24h"),
        ] {
            let error = validate_canary(Some(&pacing(size, soak)), ten()).expect_err(soak);
            assert!(error.to_string().starts_with(words), "{error}");
            assert_eq!(error.reason(), "InvalidSpec");
        }
    }
}
