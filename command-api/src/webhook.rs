//! Payment providers' webhooks: a request to settle a payment signed with
//! the secret shared with the provider (`PAYMENT_WEBHOOK_SECRET`) instead
//! of an administrator's token. The signature covers a timestamp, the
//! order's id and the raw body, so neither the body nor the order can be
//! changed, and a captured request is refused once stale or once it
//! settled.

mod replays;
pub mod signature;

use std::time::{SystemTime, UNIX_EPOCH};

use self::replays::Replays;

/// How far a signature's timestamp may be from now, either way: Stripe's
/// default tolerance.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Signatures remembered against replay; a provider sends far fewer
/// within [`TOLERANCE_SECONDS`].
const REPLAY_CAPACITY: usize = 100_000;

/// The secret shared with the payment provider, at least
/// [`WebhookSecret::MIN_BYTES`] bytes. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// As long as the HMAC-SHA256 output: a shorter key is easier to guess
    /// than the signature it makes.
    pub const MIN_BYTES: usize = 32;

    /// Its bytes as given, trailing line endings aside (a secret file
    /// usually ends with one).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let secret = raw.trim_end_matches(['\r', '\n']);
        if secret.len() < Self::MIN_BYTES {
            return Err(format!(
                "{} bytes; at least {} are required",
                secret.len(),
                Self::MIN_BYTES
            ));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

/// Why a signed request was refused; each says so in its 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    #[error("payment webhooks are not accepted here (no PAYMENT_WEBHOOK_SECRET): an administrator's token is required")]
    NotConfigured,
    #[error("the Shop-Signature header must read t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<order id>.<body>\">")]
    Malformed,
    #[error("the Shop-Signature does not match this order and body")]
    WrongSignature,
    #[error("the Shop-Signature's timestamp is more than {TOLERANCE_SECONDS} seconds from now")]
    Stale,
    #[error("this Shop-Signature was used already")]
    Replayed,
}

/// A signature that verified, to record once its request settled
/// ([`Webhooks::settled`]).
#[derive(Debug)]
pub struct Verified {
    signature: Vec<u8>,
    stale_after: i64,
}

/// Checks the signatures of webhook requests.
pub struct Webhooks {
    secret: Option<WebhookSecret>,
    replays: Replays,
}

impl Webhooks {
    /// Without a secret every signed request is refused.
    pub fn new(secret: Option<WebhookSecret>) -> Self {
        Self {
            secret,
            replays: Replays::new(REPLAY_CAPACITY),
        }
    }

    /// Whether `header` signs `body` for the order `order_id` now. Records
    /// nothing: a request whose settle fails may be sent again.
    pub fn verify(&self, header: &str, order_id: &str, body: &[u8]) -> Result<Verified, WebhookRefusal> {
        self.verify_at(header, order_id, body, unix_now())
    }

    /// Spends the signature of a request that settled: the same request
    /// again is refused. Settling is idempotent by reference, so a
    /// duplicate that verified before this settles nothing more.
    pub fn settled(&self, verified: &Verified) {
        self.replays
            .record(&verified.signature, verified.stale_after, unix_now());
    }

    /// The signature first, so a caller without the secret learns nothing
    /// else; then its age; then whether a request with it settled.
    fn verify_at(&self, header: &str, order_id: &str, body: &[u8], now: i64) -> Result<Verified, WebhookRefusal> {
        let secret = self.secret.as_ref().ok_or(WebhookRefusal::NotConfigured)?;
        let header = signature::parse(header)?;
        let matched =
            signature::matching(secret.as_bytes(), &header, order_id, body).ok_or(WebhookRefusal::WrongSignature)?;
        if header.timestamp.abs_diff(now) > TOLERANCE_SECONDS.unsigned_abs() {
            return Err(WebhookRefusal::Stale);
        }
        if self.replays.used(matched, now) {
            return Err(WebhookRefusal::Replayed);
        }
        Ok(Verified {
            signature: matched.to_vec(),
            stale_after: header.timestamp.saturating_add(TOLERANCE_SECONDS),
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_0123456789abcdef0123456789abcdef";

    fn webhooks() -> Webhooks {
        Webhooks::new(Some(WebhookSecret::parse(SECRET).unwrap()))
    }

    const ORDER: &str = "0190a3c2-7b1e-7c4d-9f00-5a6b7c8d9e0f";

    fn header(timestamp: i64, body: &[u8]) -> String {
        format!(
            "t={timestamp},v1={}",
            signature::sign(SECRET.as_bytes(), timestamp, ORDER, body)
        )
    }

    #[test]
    fn a_secret_is_at_least_32_bytes_and_never_printed() {
        assert!(WebhookSecret::parse(&"s".repeat(31)).is_err());
        assert!(WebhookSecret::parse(&format!("{}\n", "s".repeat(31))).is_err());
        assert_eq!(
            WebhookSecret::parse(&format!("{}\r\n", "s".repeat(32)))
                .unwrap()
                .as_bytes()
                .len(),
            32
        );
        assert!(!format!("{:?}", WebhookSecret::parse(SECRET).unwrap()).contains("whsec"));
    }

    #[test]
    fn each_refusal_in_its_turn() {
        let body = br#"{"reference":"pi_1","amount":"1.00"}"#;
        let now = 1_700_000_000;
        let verify = |webhooks: &Webhooks, header: &str, order: &str, body: &[u8]| {
            webhooks.verify_at(header, order, body, now).map(|_| ())
        };
        assert_eq!(
            verify(&Webhooks::new(None), &header(now, body), ORDER, body),
            Err(WebhookRefusal::NotConfigured)
        );
        let webhooks = webhooks();
        assert_eq!(verify(&webhooks, "t=1", ORDER, body), Err(WebhookRefusal::Malformed));
        assert_eq!(
            verify(&webhooks, &header(now, body), ORDER, b"{}"),
            Err(WebhookRefusal::WrongSignature)
        );
        assert_eq!(
            verify(
                &webhooks,
                &header(now, body),
                "0190a3c2-7b1e-7c4d-9f00-5a6b7c8d9e10",
                body
            ),
            Err(WebhookRefusal::WrongSignature),
            "signed for another order"
        );
        for skew in [TOLERANCE_SECONDS + 1, -TOLERANCE_SECONDS - 1] {
            assert_eq!(
                verify(&webhooks, &header(now - skew, body), ORDER, body),
                Err(WebhookRefusal::Stale),
                "{skew}"
            );
        }
        let at_the_edge = header(now - TOLERANCE_SECONDS, body);
        let verified = webhooks.verify_at(&at_the_edge, ORDER, body, now).unwrap();
        assert_eq!(
            verify(&webhooks, &at_the_edge, ORDER, body),
            Ok(()),
            "not spent until settled"
        );
        webhooks.replays.record(&verified.signature, verified.stale_after, now);
        assert_eq!(
            verify(&webhooks, &at_the_edge, ORDER, body),
            Err(WebhookRefusal::Replayed)
        );
        assert_eq!(verify(&webhooks, &header(now, body), ORDER, body), Ok(()));
    }
}
