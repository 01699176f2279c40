//! The `Shop-Signature` header, after Stripe's scheme: `t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<order id>.<raw body>">`, with more than one
//! `v1` while a provider rotates its secret. The order id is signed because
//! the body does not name the order: a signature over the body alone would
//! settle any other order of the same total it was sent to.

use hmac::{KeyInit, Mac};

use super::WebhookRefusal;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A parsed `Shop-Signature` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// When the provider signed, in Unix seconds.
    pub timestamp: i64,
    /// Each `v1` signature, decoded.
    pub signatures: Vec<Vec<u8>>,
}

/// Reads `t=…,v1=…[,v1=…]`; other schemes (`v0=…`) are ignored, as Stripe
/// says, so a provider may add them.
pub fn parse(header: &str) -> Result<SignatureHeader, WebhookRefusal> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(WebhookRefusal::Malformed)?;
        match key {
            "t" if timestamp.is_none() => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|_| digits)
                        .ok_or(WebhookRefusal::Malformed)?,
                );
            }
            "t" => return Err(WebhookRefusal::Malformed),
            "v1" => signatures.push(hex::decode(value).map_err(|_| WebhookRefusal::Malformed)?),
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !signatures.is_empty() => Ok(SignatureHeader { timestamp, signatures }),
        _ => Err(WebhookRefusal::Malformed),
    }
}

/// The `v1` signature of `body` for the order `order_id` (as the path
/// names it), signed at `timestamp` with `secret`, in hex: what a provider
/// sends.
pub fn sign(secret: &[u8], timestamp: i64, order_id: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, order_id, body).finalize().into_bytes())
}

/// The signature of `header` that matches `body` for `order_id`, if one
/// does, compared in constant time (`Mac::verify_slice`).
pub fn matching<'a>(secret: &[u8], header: &'a SignatureHeader, order_id: &str, body: &[u8]) -> Option<&'a [u8]> {
    let expected = mac(secret, header.timestamp, order_id, body);
    header
        .signatures
        .iter()
        .find(|signature| expected.clone().verify_slice(signature).is_ok())
        .map(Vec::as_slice)
}

/// Over `"<t>.<order id>.<body>"`. An order id is a UUID, without a dot,
/// so no other split of the same bytes names a valid order.
fn mac(secret: &[u8], timestamp: i64, order_id: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(order_id.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_0123456789abcdef0123456789abcdef";

    const ORDER: &str = "0190a3c2-7b1e-7c4d-9f00-5a6b7c8d9e0f";

    /// Computed apart from this code: Python's `hmac.new(SECRET,
    /// b'1700000000.0190a3c2-7b1e-7c4d-9f00-5a6b7c8d9e0f.{"a":1}',
    /// hashlib.sha256).hexdigest()`.
    const KNOWN: &str = "c121bf1872bd778e7de952528af3a56311e45e61adfbd964c28ff9653e8ca2e5";

    #[test]
    fn a_signature_is_the_hmac_of_timestamp_dot_order_dot_body() {
        assert_eq!(sign(SECRET, 1_700_000_000, ORDER, br#"{"a":1}"#), KNOWN);
    }

    #[test]
    fn the_header_is_read_as_stripe_writes_it() {
        let header = parse("t=12,v1=00ff,v0=zz, v1=01").unwrap();
        assert_eq!(
            header,
            SignatureHeader {
                timestamp: 12,
                signatures: vec![vec![0, 255], vec![1]],
            }
        );
        for bad in [
            "",
            "t=12",
            "v1=00",
            "t=x,v1=00",
            "t=-1,v1=00",
            "t=1,v1=0g",
            "t=1,t=2,v1=00",
            "t1,v1=00",
        ] {
            assert_eq!(parse(bad), Err(WebhookRefusal::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn any_v1_may_match_and_nothing_else_does() {
        let body = br#"{"reference":"pi_1"}"#;
        let good = sign(SECRET, 5, ORDER, body);
        let header = parse(&format!("t=5,v1={},v1={good}", "00".repeat(32))).unwrap();
        assert!(matching(SECRET, &header, ORDER, body).is_some());
        assert!(matching(SECRET, &header, ORDER, br#"{"reference":"pi_2"}"#).is_none());
        assert!(matching(b"another secret of thirty-two bytes!!", &header, ORDER, body).is_none());
        let moved = parse(&format!("t=6,v1={good}")).unwrap();
        assert!(
            matching(SECRET, &moved, ORDER, body).is_none(),
            "the timestamp is signed too"
        );
        let other = "0190a3c2-7b1e-7c4d-9f00-5a6b7c8d9e10";
        assert!(
            matching(SECRET, &header, other, body).is_none(),
            "the order is signed too"
        );
    }
}
