//! What stands between the network and the password hashes: sign-in
//! attempts limited per username and per client address, and a bound on
//! how many Argon2 hashes run at once.
//!
//! The limits are kept in this instance's memory (`governor`'s keyed
//! GCRA limiters): several instances behind a load balancer each admit
//! their own quota.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::http::error::AppError;

/// Keys a limiter tracks before it forgets those that are no longer held
/// back.
const KEYS_BEFORE_PRUNING: usize = 10_000;

/// The limits on sign-in.
pub struct LoginGuard {
    per_username: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    hashes: Arc<Semaphore>,
    hash_wait: Duration,
}

impl LoginGuard {
    /// The limits `config` sets.
    pub fn new(config: &Config) -> Self {
        Self {
            per_username: limiter(config.login_attempts_per_username_per_minute),
            per_address: limiter(config.login_attempts_per_address_per_minute),
            hashes: Arc::new(Semaphore::new(config.password_hash_concurrency)),
            hash_wait: Duration::from_millis(config.password_hash_wait_ms),
        }
    }

    /// Counts a sign-in attempt as `username` from `client`; refuses it
    /// (`429`) when either has used its quota. Every attempt counts, right
    /// or wrong, before the password is looked at: a guess that comes over
    /// the limit is not checked at all.
    pub fn admit(&self, username: &str, client: Option<IpAddr>) -> Result<(), AppError> {
        if let (Some(limiter), Some(ip)) = (&self.per_address, client) {
            check(limiter, address_key(ip))?;
        }
        if let Some(limiter) = &self.per_username {
            // Usernames are at most 64 characters; a longer one names no
            // one and is kept short in memory.
            let key: String = username.chars().take(64).collect();
            check(limiter, key)?;
        }
        Ok(())
    }

    /// A slot to hash a password in, waiting at most `password_hash_wait_ms`
    /// for one to come free (`503` otherwise).
    pub async fn hash_slot(&self) -> Result<OwnedSemaphorePermit, AppError> {
        let busy = AppError::Overloaded { retry_after: 1 };
        let slot = self.hashes.clone().acquire_owned();
        match tokio::time::timeout(self.hash_wait, slot).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                crate::metrics::rate_limited("password_hashing");
                Err(busy)
            }
        }
    }
}

/// A limiter of `per_minute` attempts per key; `None` for 0 (no limit).
fn limiter<K>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>>
where
    K: std::hash::Hash + Eq + Clone,
{
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: K) -> Result<(), AppError>
where
    K: std::hash::Hash + Eq + Clone,
{
    let outcome = limiter.check_key(&key);
    if limiter.len() > KEYS_BEFORE_PRUNING {
        limiter.retain_recent();
    }
    outcome.map_err(|not_until| {
        crate::metrics::rate_limited("login");
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AppError::RateLimited {
            retry_after: wait.as_secs().saturating_add(1),
        }
    })
}

/// An IPv4 address counts as itself; an IPv6 address by its /64, which a
/// single client usually holds whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// The address of the TCP peer a request came from, when the server was
/// started with it ([`crate::http::serve`]). Behind a reverse proxy that is the
/// proxy's address: forwarded-for headers are not read, since any client
/// can write them.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_quota_admits_its_burst_then_refuses_with_a_wait() {
        let config = Config {
            login_attempts_per_username_per_minute: 2,
            login_attempts_per_address_per_minute: 0,
            ..Config::default()
        };
        let guard = LoginGuard::new(&config);
        assert!(guard.admit("w1", None).is_ok());
        assert!(guard.admit("w1", None).is_ok());
        match guard.admit("w1", None) {
            Err(AppError::RateLimited { retry_after }) => assert!((1..=31).contains(&retry_after)),
            other => panic!("{other:?}"),
        }
        assert!(guard.admit("w2", None).is_ok());
    }
}
