//! Kubernetes resource quantities (`500m`, `1.5`, `2Gi`, `1e3`) as
//! `resource.ParseQuantity` reads them, with exact arithmetic: what the
//! scheduler sums (CPU in millicores, memory and pods in whole units, both
//! rounded up as `MilliValue` and `Value` round), and the canonical forms
//! the sim writes into Node statuses. Hand-written because the crates that
//! parse quantities either pin an old `k8s-openapi` or convert only through
//! floating point (which turns `100m` into 101 millicores when rounded up).

use thiserror::Error;

/// Why a quantity did not parse; the texts are `resource.ParseQuantity`'s.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantityError {
    /// Not a number followed by a suffix.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// A suffix Kubernetes does not know (`5Q`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// Too many digits to hold exactly.
    #[error("quantity is too large")]
    TooLarge,
    /// A negative amount where only amounts make sense (CPU, memory).
    #[error("must not be negative")]
    Negative,
}

/// A parsed quantity: `mantissa × 10^exponent × 1024^binary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
    binary: u32,
}

/// More significant digits than any request or capacity needs, few enough
/// that every product below stays inside `i128`.
const MAX_DIGITS: usize = 24;

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let text = text.trim();
        let number_end = text
            .char_indices()
            .find(|(index, ch)| {
                !(ch.is_ascii_digit() || *ch == '.' || (*index == 0 && "+-".contains(*ch)))
            })
            .map_or(text.len(), |(index, _)| index);
        let (number, suffix) = text.split_at(number_end);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(QuantityError::Format);
        }
        let significant = format!("{whole}{fraction}");
        let significant = significant.trim_start_matches('0');
        if significant.len() > MAX_DIGITS {
            return Err(QuantityError::TooLarge);
        }
        let mut mantissa: i128 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| QuantityError::Format)?
        };
        if negative {
            mantissa = -mantissa;
        }
        let (suffix_exponent, binary) = suffix_scale(suffix)?;
        let fraction_digits = i32::try_from(fraction.len()).map_err(|_| QuantityError::TooLarge)?;
        Ok(Quantity { mantissa, exponent: suffix_exponent - fraction_digits, binary })
    }

    /// The value in thousandths, rounded up (`MilliValue`).
    pub fn milli_value(&self) -> i128 {
        self.scaled(3)
    }

    /// The value in whole units, rounded up (`Value`).
    pub fn value(&self) -> i128 {
        self.scaled(0)
    }

    /// `ceil(value × 10^shift)`, saturating.
    fn scaled(&self, shift: i32) -> i128 {
        let mut numerator = self.mantissa;
        for _ in 0..self.binary {
            numerator = numerator.saturating_mul(1024);
        }
        let exponent = self.exponent + shift;
        if exponent >= 0 {
            (0..exponent).fold(numerator, |value, _| value.saturating_mul(10))
        } else {
            let divisor = (0..-exponent).try_fold(1i128, |value, _| value.checked_mul(10));
            match divisor {
                // Rounds towards positive infinity, as the Go code does.
                Some(divisor) => {
                    numerator.div_euclid(divisor) + i128::from(numerator.rem_euclid(divisor) != 0)
                }
                // More than 38 decimal places below the unit: a sliver above zero.
                None => i128::from(numerator > 0),
            }
        }
    }
}

/// The decimal exponent and the power of 1024 a suffix stands for.
fn suffix_scale(suffix: &str) -> Result<(i32, u32), QuantityError> {
    let decimal = |exponent| Ok((exponent, 0));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Ok((0, 1)),
        "Mi" => Ok((0, 2)),
        "Gi" => Ok((0, 3)),
        "Ti" => Ok((0, 4)),
        "Pi" => Ok((0, 5)),
        "Ei" => Ok((0, 6)),
        _ => {
            let Some(exponent) = suffix.strip_prefix(['e', 'E']) else {
                return Err(if suffix.chars().all(|ch| "eEinumkKMGTP+-0123456789".contains(ch)) {
                    QuantityError::Suffix
                } else {
                    QuantityError::Format
                });
            };
            let digits = exponent.trim_start_matches(['+', '-']);
            if digits.is_empty() || !digits.chars().all(|ch| ch.is_ascii_digit()) {
                return Err(QuantityError::Suffix);
            }
            exponent.parse::<i32>().map(decimal).map_err(|_| QuantityError::TooLarge)?
        }
    }
}

/// CPU millicores of a quantity (`500m` → 500, `1.5` → 1500), rounded up;
/// a negative quantity is an error here, as no CPU amount is negative.
pub fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    let millis = Quantity::parse(text)?.milli_value();
    u64::try_from(millis).map_err(|_| QuantityError::Negative)
}

/// Whole units of a quantity (`1Gi` → 1073741824, `110` → 110), rounded
/// up; negative quantities are an error.
pub fn whole_units(text: &str) -> Result<u64, QuantityError> {
    let value = Quantity::parse(text)?.value();
    u64::try_from(value).map_err(|_| QuantityError::Negative)
}

/// Millicores in the canonical form the API server writes: whole cores
/// without a suffix (`4`), else millicores (`3920m`).
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) { (millis / 1000).to_string() } else { format!("{millis}m") }
}

/// Bytes in the binary form kubelets report memory in (`16777216Ki`), or
/// plain bytes when not a whole number of KiB.
pub fn format_bytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) { format!("{}Ki", bytes / 1024) } else { bytes.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_become_millicores_rounded_up() {
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("1"), Ok(1000));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("0.1"), Ok(100));
        assert_eq!(cpu_millis(".25"), Ok(250));
        assert_eq!(cpu_millis("100m"), Ok(100));
        assert_eq!(cpu_millis("0.0005"), Ok(1), "MilliValue rounds up");
        assert_eq!(cpu_millis("1500000u"), Ok(1500));
        assert_eq!(cpu_millis("2k"), Ok(2_000_000));
        assert_eq!(cpu_millis("1e3"), Ok(1_000_000));
        assert_eq!(cpu_millis("15E-1"), Ok(1500));
        assert_eq!(cpu_millis("+2"), Ok(2000));
        assert_eq!(cpu_millis("0"), Ok(0));
    }

    #[test]
    fn memory_quantities_become_bytes() {
        assert_eq!(whole_units("1Ki"), Ok(1024));
        assert_eq!(whole_units("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(whole_units("512Mi"), Ok(536_870_912));
        assert_eq!(whole_units("1G"), Ok(1_000_000_000));
        assert_eq!(whole_units("110"), Ok(110));
        assert_eq!(whole_units("1500m"), Ok(2), "Value rounds up");
    }

    #[test]
    fn malformed_quantities_are_refused_with_the_api_servers_words() {
        for text in ["", "m", "abc", "1.2.3", "--1", "1 m"] {
            assert_eq!(cpu_millis(text), Err(QuantityError::Format), "{text:?}");
        }
        for text in ["5Q", "1Kii", "3e", "1mm"] {
            assert!(cpu_millis(text).is_err(), "{text:?}");
        }
        assert_eq!(cpu_millis("1Kii"), Err(QuantityError::Suffix));
        assert_eq!(cpu_millis("-1"), Err(QuantityError::Negative));
        assert_eq!(Quantity::parse("-1").map(|quantity| quantity.milli_value()), Ok(-1000));
        assert_eq!(
            QuantityError::Format.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(cpu_millis("1234567890123456789012345"), Err(QuantityError::TooLarge));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(format_cpu(4000), "4");
        assert_eq!(format_cpu(3920), "3920m");
        assert_eq!(format_bytes(16 * 1024 * 1024 * 1024), "16777216Ki");
        assert_eq!(format_bytes(1000), "1000");
    }
}
