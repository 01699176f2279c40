//! Waiting at start for what a service depends on — its database, its
//! event store, the views' schema — when it is not there yet, as when every
//! container of a deployment starts at the same instant: tried again with
//! back-off (100 ms, doubling, at most 2 s apart) for up to
//! `STARTUP_WAIT_MS`, then the process stops with the last error and how
//! long it waited. A failure that waiting cannot cure (a refused password,
//! a bad URL) stops it at once.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ConfigError, Env};

/// How long a starting service waits for a dependency when
/// `STARTUP_WAIT_MS` is unset.
pub const DEFAULT_STARTUP_WAIT: Duration = Duration::from_secs(60);

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// `STARTUP_WAIT_MS`: how long a starting service waits for a dependency.
pub fn startup_wait(env: &Env) -> Result<Duration, ConfigError> {
    env.millis_or("STARTUP_WAIT_MS", DEFAULT_STARTUP_WAIT)
}

/// Why an attempt failed, as the process would print it (URLs redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The dependency is not there yet: worth trying again.
    Passing(String),
    /// Waiting will not help.
    Lasting(String),
}

impl Failure {
    /// [`Failure::Passing`] when `passing`, else [`Failure::Lasting`].
    pub fn of(passing: bool, text: impl std::fmt::Display) -> Self {
        if passing {
            Self::Passing(text.to_string())
        } else {
            Self::Lasting(text.to_string())
        }
    }
}

/// Runs `attempt` until it succeeds; tries again after a pause while it
/// fails with [`Failure::Passing`], logging at warn what `what` waits for,
/// for up to `within`. The error: a lasting failure's text at once, or
/// the last passing one's once `within` has passed, saying so.
pub async fn until_available<T, Attempt>(
    what: &str,
    within: Duration,
    mut attempt: impl FnMut() -> Attempt,
) -> Result<T, String>
where
    Attempt: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let reason = match attempt().await {
            Ok(found) => return Ok(found),
            Err(Failure::Lasting(reason)) => return Err(reason),
            Err(Failure::Passing(reason)) => reason,
        };
        let waited = started.elapsed();
        if waited >= within {
            return Err(format!(
                "{reason} (gave up waiting for {what} after {} ms, STARTUP_WAIT_MS)",
                waited.as_millis()
            ));
        }
        tracing::warn!("waiting for {what}: {reason}");
        tokio::time::sleep(pause.min(within - waited)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_passing_failure_is_tried_again_until_it_succeeds() {
        let tries = AtomicU32::new(0);
        let found = until_available("the database", Duration::from_secs(60), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..3 => Err(Failure::Passing("refused".to_owned())),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(found, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_failure_stops_at_once() {
        let tries = AtomicU32::new(0);
        let started = Instant::now();
        let found: Result<(), String> = until_available("the database", Duration::from_secs(60), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Lasting("password authentication failed".to_owned()))
        })
        .await;
        assert_eq!(found, Err("password authentication failed".to_owned()));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_after_the_bound_with_the_last_reason() {
        let tries = AtomicU32::new(0);
        let started = Instant::now();
        let found: Result<(), String> = until_available("the database", Duration::from_secs(5), || async {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Passing(format!("refused {n}")))
        })
        .await;
        let error = found.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // 100 ms, 200, 400, 800, 1600, then what is left: 1900.
        assert_eq!(tries.load(Ordering::SeqCst), 7);
        assert_eq!(
            error,
            "refused 6 (gave up waiting for the database after 5000 ms, STARTUP_WAIT_MS)"
        );
    }
}
