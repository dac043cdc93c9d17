//! A short memory of reviews, so a job page that reloads itself every few seconds, or a
//! script polling a job, does not cost two API requests per poll, and a client repeating a
//! bad token costs one review, not one per request. Answers are kept in time-limited,
//! size-bounded caches (moka): a confirmation for [`POSITIVE_TTL`], so a revocation takes
//! effect within it, and a refusal for [`NEGATIVE_TTL`], so a grant takes effect within that.
//! Tokens are remembered by their SHA-256 digest, never as themselves. Concurrent asks for
//! the same answer wait for one review. Failed reviews are not remembered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use moka::Expiry;
use moka::future::Cache;

use super::{Access, AuthError, Authority, Caller};
use crate::config::TargetRef;

/// How long a confirmed token or right is remembered: the longest a revocation waits.
pub const POSITIVE_TTL: Duration = Duration::from_secs(10);
/// How long a refused token or right is remembered: the longest a grant waits.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Answers kept per kind; the least used go first beyond it.
const MAX_ENTRIES: u64 = 10_000;

/// The SHA-256 digest of a token.
type TokenDigest = [u8; 32];

/// Who, what and where a right is asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RightKey {
    username: String,
    uid: Option<String>,
    groups: Vec<String>,
    extra: BTreeMap<String, Vec<String>>,
    access: Access,
    target: String,
}

/// How long each answer is kept: by whether it confirmed or refused.
#[derive(Clone, Copy, Debug)]
struct ByAnswer {
    positive: Duration,
    negative: Duration,
}

impl Expiry<TokenDigest, Option<Caller>> for ByAnswer {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        caller: &Option<Caller>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if caller.is_some() { self.positive } else { self.negative })
    }
}

impl Expiry<RightKey, bool> for ByAnswer {
    fn expire_after_create(
        &self,
        _key: &RightKey,
        allowed: &bool,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if *allowed { self.positive } else { self.negative })
    }
}

fn digest(token: &str) -> TokenDigest {
    let mut key = [0u8; 32];
    key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    key
}

/// Remembers what another [`Authority`] answered, for a short while.
pub struct CachedAuthority {
    inner: Arc<dyn Authority>,
    tokens: Cache<TokenDigest, Option<Caller>>,
    rights: Cache<RightKey, bool>,
}

impl CachedAuthority {
    /// Remembers confirmations for [`POSITIVE_TTL`] and refusals for [`NEGATIVE_TTL`].
    pub fn new(inner: Arc<dyn Authority>) -> Self {
        Self::with_ttls(inner, POSITIVE_TTL, NEGATIVE_TTL)
    }

    pub fn with_ttls(inner: Arc<dyn Authority>, positive: Duration, negative: Duration) -> Self {
        let expiry = ByAnswer { positive, negative };
        Self {
            inner,
            tokens: Cache::builder().max_capacity(MAX_ENTRIES).expire_after(expiry).build(),
            rights: Cache::builder().max_capacity(MAX_ENTRIES).expire_after(expiry).build(),
        }
    }
}

impl Authority for CachedAuthority {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Caller>, AuthError>> {
        async move {
            self.tokens
                .try_get_with(digest(token), self.inner.authenticate(token))
                .await
                .map_err(AuthError::Shared)
        }
        .boxed()
    }

    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        access: Access,
        target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        async move {
            let key = RightKey {
                username: caller.username.clone(),
                uid: caller.uid.clone(),
                groups: caller.groups.clone(),
                extra: caller.extra.clone(),
                access,
                target: target.to_string(),
            };
            self.rights
                .try_get_with(key, self.inner.authorize(caller, access, target))
                .await
                .map_err(AuthError::Shared)
        }
        .boxed()
    }

    fn known<'a>(&'a self, token: &'a str) -> BoxFuture<'a, bool> {
        async move { matches!(self.tokens.get(&digest(token)).await, Some(Some(_))) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fake::StaticAuthority;

    #[tokio::test]
    async fn answers_are_remembered_by_kind_and_tokens_by_digest() {
        let inner = Arc::new(StaticAuthority::default().user("reader", "bob", &[Access::Read]));
        let cached = CachedAuthority::with_ttls(
            inner.clone(),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let target = TargetRef { namespace: "arcgis".into(), name: "all".into() };
        assert!(!cached.known("reader").await);
        for _ in 0..3 {
            let caller = cached.authenticate("reader").await.unwrap().expect("known token");
            assert!(cached.authorize(&caller, Access::Read, &target).await.unwrap());
            assert!(!cached.authorize(&caller, Access::Write, &target).await.unwrap());
            assert!(cached.authenticate("garbage").await.unwrap().is_none());
        }
        // One review each: the token, the read right, the write refusal, the bad token.
        assert_eq!(inner.reviews(), 4);
        assert!(cached.known("reader").await && !cached.known("garbage").await);
        // The token itself is nowhere in the cache: only its digest.
        let keys: Vec<TokenDigest> = cached.tokens.iter().map(|(key, _)| *key).collect();
        assert!(keys.contains(&digest("reader")) && keys.len() == 2);

        let forgetful = CachedAuthority::with_ttls(inner.clone(), Duration::ZERO, Duration::ZERO);
        let before = inner.reviews();
        forgetful.authenticate("reader").await.unwrap();
        forgetful.authenticate("reader").await.unwrap();
        forgetful.authenticate("garbage").await.unwrap();
        forgetful.authenticate("garbage").await.unwrap();
        assert_eq!(inner.reviews(), before + 4);
    }

    #[tokio::test]
    async fn concurrent_asks_for_one_token_cost_one_review() {
        let inner = Arc::new(StaticAuthority::default().user("reader", "bob", &[Access::Read]));
        let cached = CachedAuthority::new(inner.clone());
        let asks = (0..50).map(|_| cached.authenticate("reader"));
        let answers = futures::future::join_all(asks).await;
        assert!(answers.iter().all(|answer| matches!(answer, Ok(Some(_)))));
        assert_eq!(inner.reviews(), 1);
    }
}
