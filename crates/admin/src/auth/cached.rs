//! A short memory of positive reviews, so a job page that reloads itself every few seconds,
//! or a script polling a job, does not cost two API requests per poll. Only successes are
//! remembered, briefly ([`DEFAULT_TTL`]): a token or a right that was refused is asked about
//! again at once, so a grant takes effect immediately, while a revocation takes effect
//! within the TTL (the API server's own webhook authenticators cache much longer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};

use super::{Access, AuthError, Authority, Caller};
use crate::config::TargetRef;

/// How long a positive review is remembered.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Entries kept per kind before the expired ones are dropped (and, if all are fresh, all).
const MAX_ENTRIES: usize = 1024;

type RightKey = (String, Vec<String>, Access, String);

/// Remembers what another [`Authority`] confirmed, for a short while.
pub struct CachedAuthority {
    inner: Arc<dyn Authority>,
    ttl: Duration,
    tokens: Mutex<HashMap<String, (Instant, Caller)>>,
    rights: Mutex<HashMap<RightKey, Instant>>,
}

impl CachedAuthority {
    pub fn new(inner: Arc<dyn Authority>, ttl: Duration) -> Self {
        Self { inner, ttl, tokens: Mutex::default(), rights: Mutex::default() }
    }
}

fn remember<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    expired: impl Fn(&V) -> bool,
) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, value| !expired(value));
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
    map.insert(key, value);
}

impl Authority for CachedAuthority {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Caller>, AuthError>> {
        async move {
            let fresh = |at: &Instant| at.elapsed() < self.ttl;
            {
                let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((at, caller)) = tokens.get(token)
                    && fresh(at)
                {
                    return Ok(Some(caller.clone()));
                }
            }
            let caller = self.inner.authenticate(token).await?;
            if let Some(caller) = &caller {
                let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                remember(
                    &mut tokens,
                    token.to_owned(),
                    (Instant::now(), caller.clone()),
                    |(at, _)| !fresh(at),
                );
            }
            Ok(caller)
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
            let fresh = |at: &Instant| at.elapsed() < self.ttl;
            let key = (caller.username.clone(), caller.groups.clone(), access, target.to_string());
            {
                let rights = self.rights.lock().unwrap_or_else(PoisonError::into_inner);
                if rights.get(&key).is_some_and(fresh) {
                    return Ok(true);
                }
            }
            let allowed = self.inner.authorize(caller, access, target).await?;
            if allowed {
                let mut rights = self.rights.lock().unwrap_or_else(PoisonError::into_inner);
                remember(&mut rights, key, Instant::now(), |at| !fresh(at));
            }
            Ok(allowed)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fake::StaticAuthority;

    #[tokio::test]
    async fn positive_reviews_are_remembered_and_refusals_asked_again() {
        let inner = Arc::new(StaticAuthority::default().user("reader", "bob", &[Access::Read]));
        let cached = CachedAuthority::new(inner.clone(), Duration::from_secs(60));
        let target = TargetRef { namespace: "arcgis".into(), name: "all".into() };
        for _ in 0..3 {
            let caller = cached.authenticate("reader").await.unwrap().expect("known token");
            assert!(cached.authorize(&caller, Access::Read, &target).await.unwrap());
            assert!(!cached.authorize(&caller, Access::Write, &target).await.unwrap());
            assert!(cached.authenticate("garbage").await.unwrap().is_none());
        }
        // One review each for the token and the read right; every refusal was asked again.
        assert_eq!(inner.reviews(), 2 + 3 + 3);

        let forgetful = CachedAuthority::new(inner.clone(), Duration::ZERO);
        let before = inner.reviews();
        forgetful.authenticate("reader").await.unwrap();
        forgetful.authenticate("reader").await.unwrap();
        assert_eq!(inner.reviews(), before + 2);
    }
}
