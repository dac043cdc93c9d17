//! A table-driven [`Authority`] for tests: known tokens map to a caller and the accesses it
//! holds; any other token is invalid. It answers without a cluster, so the HTTP layer can be
//! tested on its own, and it counts the reviews it answered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::{BoxFuture, FutureExt};

use super::{Access, AuthError, Authority, Caller};
use crate::config::TargetRef;

/// Tokens, their callers and their rights.
#[derive(Debug, Default)]
pub struct StaticAuthority {
    users: BTreeMap<String, (Caller, BTreeSet<Access>)>,
    reviews: AtomicUsize,
}

impl StaticAuthority {
    /// Adds a token for `username` holding `accesses` on any target.
    pub fn user(mut self, token: &str, username: &str, accesses: &[Access]) -> Self {
        let caller = Caller { username: username.to_owned(), ..Caller::default() };
        self.users.insert(token.to_owned(), (caller, accesses.iter().copied().collect()));
        self
    }

    /// How many token and access reviews were answered.
    pub fn reviews(&self) -> usize {
        self.reviews.load(Ordering::Relaxed)
    }
}

impl Authority for StaticAuthority {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Caller>, AuthError>> {
        // Counted when asked (polled), like a review sent to the API server.
        async move {
            self.reviews.fetch_add(1, Ordering::Relaxed);
            Ok(self.users.get(token).map(|(caller, _)| caller.clone()))
        }
        .boxed()
    }

    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        access: Access,
        _target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        async move {
            self.reviews.fetch_add(1, Ordering::Relaxed);
            Ok(self.users.values().any(|(known, accesses)| {
                known.username == caller.username && accesses.contains(&access)
            }))
        }
        .boxed()
    }
}
