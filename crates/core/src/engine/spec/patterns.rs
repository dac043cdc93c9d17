//! `spec.namePatterns`: globs on Deployment names (`*` any run of characters, `?` exactly
//! one), matched by `wildmatch`. Patterns are checked for characters no Deployment name can
//! hold, so a typo like `arcgis_*` is reported instead of silently matching nothing.

use wildmatch::WildMatch;

/// A checked name pattern.
#[derive(Clone, Debug)]
pub struct NamePattern {
    text: String,
    glob: WildMatch,
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NamePattern {}

impl NamePattern {
    pub fn compile(pattern: &str) -> Result<Self, String> {
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
        Ok(Self { text: pattern.to_owned(), glob: WildMatch::new(pattern) })
    }

    /// Whether the whole name matches.
    pub fn matches(&self, name: &str) -> bool {
        self.glob.matches(name)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_equal_by_their_text() {
        // A checked spec compares by what the user wrote: equal text must compare equal,
        // although the compiled globs cannot be compared.
        let glob = |pattern: &str| NamePattern::compile(pattern).expect(pattern);
        assert_eq!(glob("arcgis-*"), glob("arcgis-*"));
        assert_ne!(glob("arcgis-*"), glob("arcgis-?"));
    }

    #[test]
    fn patterns_are_as_long_as_a_name_may_be() {
        assert!(NamePattern::compile(&"a".repeat(253)).is_ok());
        assert!(NamePattern::compile(&"a".repeat(254)).is_err());
    }

    #[test]
    fn globs_match_whole_names() {
        let glob = |pattern: &str| NamePattern::compile(pattern).expect(pattern);
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
    fn patterns_with_impossible_characters_are_refused() {
        assert!(NamePattern::compile("").is_err());
        assert!(NamePattern::compile("Arc_*").unwrap_err().contains("contains 'A'"));
        assert!(NamePattern::compile(&"a".repeat(254)).is_err());
    }
}
