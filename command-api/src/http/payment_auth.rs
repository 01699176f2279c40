//! Who may settle a payment: an administrator's bearer token, or the
//! payment provider's `Shop-Signature` (checked against the order id and
//! the raw body by the operation, as a security scheme sees no body).

use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use api_common::bearer::BearerAuth;

/// The payment provider's webhook signature:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<order id>.<raw body>">`
/// keyed with the shared secret (`PAYMENT_WEBHOOK_SECRET`), after Stripe's
/// scheme with the order id (as in the path) signed too, so a signed
/// request settles no other order. Refused when more than 5 minutes from
/// now either way, or spent by a request that settled.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "Shop-Signature", key_in = "header")]
pub struct PaymentSignature(pub ApiKey);

/// Either scheme. A request with a `Shop-Signature` is judged by it alone;
/// without one, by its bearer token, whose refusal (401, or 503 while the
/// credentials cannot be read) is the answer.
#[derive(SecurityScheme)]
pub enum PaymentAuth {
    Signature(PaymentSignature),
    Bearer(BearerAuth),
}
