//! Credential guessing, throttled: token buckets per username and per
//! client address for logins, per address for registrations.
//!
//! Token buckets rather than exponential back-off: a user who mistypes a
//! few times is never slowed, a guesser gets `burst` tries and then one per
//! `refill`, and a bucket refills by itself, so nobody is locked out for
//! longer than `burst × refill` however long an attack went on (back-off
//! that doubles per failure would let an attacker lock an account for
//! days). Each attempt takes its token before the password is hashed, so
//! concurrent guesses cannot overtake the budget, and gives it back when it
//! was never judged (the hashing queue was full, the store was down, the
//! client went away). A failed login keeps its tokens; a successful one
//! fills its username's bucket and gives back its address's token.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use domain::account::Username;

use super::buckets::{Buckets, Budget};

/// The budgets and how many keys each table remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failed logins per username, from any address.
    pub login_per_username: Budget,
    /// Failed logins per client address, for any usernames.
    pub login_per_address: Budget,
    /// Registrations per client address.
    pub register_per_address: Budget,
    /// Keys per table; past it the least recently charged is forgotten.
    pub capacity: usize,
}

/// Refused: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled(pub Duration);

impl Throttled {
    /// Whole seconds, rounded up, at least one: the `Retry-After` value.
    pub fn seconds(self) -> u32 {
        let seconds = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        u32::try_from(seconds.max(1)).unwrap_or(u32::MAX)
    }
}

pub struct Throttle {
    usernames: Buckets<Username>,
    login_addresses: Buckets<IpAddr>,
    registrations: Buckets<IpAddr>,
}

/// The key of a client's address: an IPv4 address, or an IPv6 address's
/// /64 prefix (one host usually holds a whole /64, so its single addresses
/// would be free new budgets). Clients without an IP address (none on the
/// TCP listener) share one key.
pub fn address_key(address: Option<IpAddr>) -> IpAddr {
    match address.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        Some(v4) => v4,
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn throttled(operation: &'static str, retry_after: Duration) -> Throttled {
    metrics::counter!("auth_throttled_total", "operation" => operation).increment(1);
    Throttled(retry_after)
}

impl Throttle {
    pub fn new(config: &ThrottleConfig) -> Self {
        Self {
            usernames: Buckets::new(config.login_per_username, config.capacity),
            login_addresses: Buckets::new(config.login_per_address, config.capacity),
            registrations: Buckets::new(config.register_per_address, config.capacity),
        }
    }

    /// Takes one attempt from `address`'s budget and, when the username can
    /// exist, from `username`'s.
    pub fn login(&self, username: Option<&Username>, address: IpAddr) -> Result<LoginAttempt<'_>, Throttled> {
        let now = Instant::now();
        if let Some(username) = username {
            self.usernames
                .take(username, now)
                .map_err(|after| throttled("login", after))?;
        }
        if let Err(after) = self.login_addresses.take(&address, now) {
            if let Some(username) = username {
                self.usernames.give_back(username, now);
            }
            return Err(throttled("login", after));
        }
        Ok(LoginAttempt {
            throttle: self,
            username: username.cloned(),
            address,
        })
    }

    /// Takes one registration from `address`'s budget.
    pub fn register(&self, address: IpAddr) -> Result<Registration<'_>, Throttled> {
        self.registrations
            .take(&address, Instant::now())
            .map_err(|after| throttled("register", after))?;
        Ok(Registration {
            throttle: self,
            address,
        })
    }
}

/// A login's tokens. They stay spent unless [`LoginAttempt::refund`] gives
/// them back: an attempt dropped unjudged (the client went away) keeps its
/// cost, as its password hash may be running already; else a client that
/// hangs up after each request could keep every hashing thread busy for free.
pub struct LoginAttempt<'a> {
    throttle: &'a Throttle,
    username: Option<Username>,
    address: IpAddr,
}

impl LoginAttempt<'_> {
    /// The password was wrong (or the user unknown): the tokens stay spent.
    pub fn failed(self) {
        metrics::counter!("auth_login_failures_total").increment(1);
    }

    /// The password was right: its username starts afresh.
    pub fn succeeded(self) {
        if let Some(username) = &self.username {
            self.throttle.usernames.forget(username);
        }
        self.throttle.login_addresses.give_back(&self.address, Instant::now());
    }

    /// The server could not judge the attempt (the hashing queue full, the
    /// store down) and hashed nothing: the tokens come back.
    pub fn refund(self) {
        let now = Instant::now();
        if let Some(username) = &self.username {
            self.throttle.usernames.give_back(username, now);
        }
        self.throttle.login_addresses.give_back(&self.address, now);
    }
}

/// A registration's token. It stays spent unless [`Registration::refund`]
/// gives it back (see [`LoginAttempt`] for why).
pub struct Registration<'a> {
    throttle: &'a Throttle,
    address: IpAddr,
}

impl Registration<'_> {
    /// The server hashed nothing (the hashing queue full): the token comes back.
    pub fn refund(self) {
        self.throttle.registrations.give_back(&self.address, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn throttle(per_username: u32, per_address: u32) -> Throttle {
        let budget = |burst| Budget { burst, refill: HOUR };
        Throttle::new(&ThrottleConfig {
            login_per_username: budget(per_username),
            login_per_address: budget(per_address),
            register_per_address: budget(1),
            capacity: 100,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_key_is_the_ipv4_address_or_the_ipv6_slash_64() {
        assert_eq!(address_key(Some(ip("192.0.2.7"))), ip("192.0.2.7"));
        assert_eq!(address_key(Some(ip("::ffff:192.0.2.7"))), ip("192.0.2.7"));
        assert_eq!(address_key(Some(ip("2001:db8:1:2:3:4:5:6"))), ip("2001:db8:1:2::"));
        assert_eq!(address_key(None), ip("::"));
    }

    #[test]
    fn an_attempt_refunded_costs_nothing() {
        let throttle = throttle(1, 1);
        let alice = Username::parse("alice").unwrap();
        for _ in 0..3 {
            throttle.login(Some(&alice), ip("192.0.2.1")).unwrap().refund();
        }
        throttle.login(Some(&alice), ip("192.0.2.1")).unwrap().failed();
        assert!(throttle.login(Some(&alice), ip("192.0.2.1")).is_err());
    }

    /// A client that hangs up mid-login (its attempt dropped unjudged) may
    /// have a hash running: the attempt stays paid for.
    #[test]
    fn an_attempt_dropped_unjudged_stays_spent() {
        let throttle = throttle(1, 1);
        let alice = Username::parse("alice").unwrap();
        {
            let _abandoned = throttle.login(Some(&alice), ip("192.0.2.1")).unwrap();
            let _abandoned = throttle.register(ip("192.0.2.1")).unwrap();
        }
        assert!(throttle.login(Some(&alice), ip("192.0.2.1")).is_err());
        assert!(throttle.register(ip("192.0.2.1")).is_err());
    }

    #[test]
    fn a_refusal_by_address_gives_the_username_its_token_back() {
        let throttle = throttle(1, 1);
        let (alice, bob) = (Username::parse("alice").unwrap(), Username::parse("bob").unwrap());
        throttle.login(Some(&alice), ip("192.0.2.1")).unwrap().failed();
        assert!(throttle.login(Some(&bob), ip("192.0.2.1")).is_err());
        throttle.login(Some(&bob), ip("192.0.2.2")).unwrap().failed();
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Throttled(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(Throttled(Duration::from_millis(59_001)).seconds(), 60);
        assert_eq!(Throttled(Duration::ZERO).seconds(), 1);
    }
}
