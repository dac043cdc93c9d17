//! Small helpers every layer shares: a deterministic random generator
//! (SplitMix64) behind the generated fleet, names, uids, rollout jitter and
//! fault injection, the time formats Kubernetes uses, and access to an
//! object's type and metadata fields.

use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

/// SplitMix64: deterministic and seedable, so a seed reproduces a whole
/// simulated cluster; statistical quality beyond that does not matter here.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` characters from `alphabet`.
    pub fn string(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize])).collect()
    }

    /// A random RFC 4122 version-4 UUID (the form `metadata.uid` takes).
    pub fn uuid(&mut self) -> String {
        // Version 4 in the high half, the RFC 4122 variant in the low half.
        let hi = (self.next_u64() & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

/// The alphabet of generated name suffixes (`generateName`): the real
/// server's, without vowels so that no suffix spells a word.
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `rand.SafeEncodeString`: each byte of `text` mapped onto
/// [`NAME_ALPHABET`], as Kubernetes encodes the decimal form of its hashes
/// (`5d8f9c7b6`).
pub fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| char::from(NAME_ALPHABET[usize::from(byte) % NAME_ALPHABET.len()]))
        .collect()
}

/// Now as an RFC 3339 timestamp with second precision, the precision of
/// `metav1.Time` on the wire.
pub fn now_rfc3339() -> String {
    let secs = jiff::Timestamp::now().as_second();
    match jiff::Timestamp::from_second(secs) {
        Ok(whole_seconds) => whole_seconds.to_string(),
        Err(_) => jiff::Timestamp::now().to_string(),
    }
}

/// `seconds` from now as an RFC 3339 timestamp with second precision.
pub fn rfc3339_in(seconds: i64) -> String {
    let at = jiff::Timestamp::now().as_second().saturating_add(seconds);
    jiff::Timestamp::from_second(at).map_or_else(|_| now_rfc3339(), |at| at.to_string())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// The object's `metadata` map, inserted when missing; `None` when the
/// object is not a JSON object.
pub fn metadata_mut(object: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let fields = object.as_object_mut()?;
    if !fields.get("metadata").is_some_and(Value::is_object) {
        fields.insert("metadata".into(), Value::Object(serde_json::Map::new()));
    }
    fields.get_mut("metadata").and_then(Value::as_object_mut)
}

/// A string field of `metadata` (`name`, `uid`, `resourceVersion`, ...).
pub fn metadata_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str()
}

/// Sets an object's `apiVersion` and `kind`.
pub fn set_type_meta(object: &mut Value, api_version: &str, kind: &str) {
    if let Some(fields) = object.as_object_mut() {
        fields.insert("apiVersion".into(), json!(api_version));
        fields.insert("kind".into(), json!(kind));
    }
}

/// One [`Rng`] shared by request handlers and controllers.
#[derive(Debug)]
pub struct SharedRng(Mutex<Rng>);

impl SharedRng {
    /// A shared generator from a seed.
    pub fn new(seed: u64) -> Self {
        SharedRng(Mutex::new(Rng::new(seed)))
    }

    /// Runs `draw` with the generator locked, so that several draws of one
    /// decision come from one uninterrupted sequence.
    pub fn with<R>(&self, draw: impl FnOnce(&mut Rng) -> R) -> R {
        draw(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Rng> {
        // The generator's state is one integer: a panic cannot leave it torn.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
