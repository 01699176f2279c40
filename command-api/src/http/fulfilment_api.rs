use std::sync::Arc;

use domain::ids::OrderId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::fields::{AmountSpec, Field, PaymentReferenceSpec, UuidSpec};
use super::payment_auth::PaymentAuth;
use super::request::causation;
use super::signed_body::SignedBody;
use super::{order_refusals, problems};
use crate::settlement::{Changed, Settlement};
use crate::webhook::{Verified, Webhooks};
use api_common::bearer::BearerAuth;
use api_common::order_schema::{OrderStatus, PaymentStatus};
use api_common::problem::ProblemResponse;

#[derive(Tags)]
enum Tag {
    /// Paying for confirmed orders and closing paid ones (administrators,
    /// and the payment provider's signed webhook).
    Fulfilment,
}

#[derive(Object)]
struct SettleRequest {
    /// The payment provider's reference for the payment, such as
    /// `pi_3Nx…`: printable ASCII without spaces. The same reference again
    /// settles nothing more and answers as the first time.
    reference: Field<PaymentReferenceSpec>,
    /// The amount paid, a decimal such as `"43.47"`: exactly the order's
    /// total, else 422.
    amount: Field<AmountSpec>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct PaymentSettled {
    order_id: Uuid,
    // `confirmed` (or `closed`, or `cancelled` with payment `refunded`,
    // when the same reference comes again later).
    status: OrderStatus,
    payment_status: PaymentStatus,
    payment_reference: String,
    amount: String,
    settled_at: chrono::DateTime<chrono::Utc>,
    /// The global position this answer reflects: the consistency token.
    position: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderClosed {
    order_id: Uuid,
    // Always `closed`.
    status: OrderStatus,
    // Always `settled`.
    payment_status: PaymentStatus,
    closed_at: chrono::DateTime<chrono::Utc>,
    /// The global position this answer reflects: the consistency token.
    position: String,
}

#[derive(ApiResponse)]
enum SettleResponse {
    /// Settled, or settled before with this reference (nothing changed).
    #[oai(status = 200)]
    Ok(Json<PaymentSettled>),
}

#[derive(ApiResponse)]
enum CloseResponse {
    /// Closed, or closed before (nothing changed).
    #[oai(status = 200)]
    Ok(Json<OrderClosed>),
}

problems! {
    /// The errors of `POST /orders/{id}/payment`.
    SettleProblem {
        400 BadRequest => "The body is malformed, or a field or the id is invalid (named in `field`); only once the caller is authorised.",
        401 Unauthorized => "No valid access token, or a `Shop-Signature` refused: no secret configured, malformed, not matching this order and body, more than 5 minutes old or ahead, or spent by a request that settled (`detail` says which).",
        403 Forbidden => "The token's user is not an administrator.",
        404 NotFound => "No such order.",
        409 Conflict => "The order cannot be paid (`detail` says why: pending, rejected, cancelled and why, or paid already with another reference), or others changed it at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        422 Unprocessable => "The amount is not the order's total (named in `detail`); nothing changed.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /orders/{id}/close`.
    CloseProblem {
        400 BadRequest => "The id is invalid.",
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators close orders.",
        404 NotFound => "No such order.",
        409 Conflict => "The order is not settled (`detail` says where it stands), or others changed it at the same time: retry.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

/// Who settles: an administrator, or the payment provider with the
/// signature to spend once the settle succeeded.
enum Payer {
    Admin(Uuid),
    Provider(Verified),
}

impl Payer {
    /// The acting user recorded with the events; the provider is none.
    fn user(&self) -> Option<Uuid> {
        match self {
            Self::Admin(user) => Some(*user),
            Self::Provider(_) => None,
        }
    }
}

/// Who asks, judged before the body is parsed (a signature covers its raw
/// bytes and the order id as the path names it), so a caller who may not
/// settle learns nothing of the body's fields.
fn authorise(auth: &PaymentAuth, webhooks: &Webhooks, order_id: &str, body: &[u8]) -> Result<Payer, ProblemResponse> {
    match auth {
        PaymentAuth::Bearer(bearer) if bearer.is_admin() => Ok(Payer::Admin(bearer.0.sub)),
        PaymentAuth::Bearer(_) => Err(ProblemResponse::forbidden(
            "only administrators and the payment provider settle payments",
        )),
        PaymentAuth::Signature(signature) => match webhooks.verify(&signature.0.key, order_id, body) {
            Ok(verified) => Ok(Payer::Provider(verified)),
            Err(refusal) => {
                tracing::info!(%refusal, "payment webhook refused");
                Err(ProblemResponse::unauthorized(refusal.to_string()))
            }
        },
    }
}

fn settled(order_id: OrderId, changed: Changed) -> Result<PaymentSettled, ProblemResponse> {
    let (Some((status, payment_status)), Some(payment)) = (changed.state.status(), changed.state.payment()) else {
        return Err(ProblemResponse::internal(
            "a settle succeeded on an order without a payment",
        ));
    };
    Ok(PaymentSettled {
        order_id: order_id.as_uuid(),
        status: status.into(),
        payment_status: payment_status.into(),
        payment_reference: payment.reference.to_string(),
        amount: payment.amount.to_string(),
        settled_at: payment.settled_at,
        position: changed.position.to_string(),
    })
}

fn closed(order_id: OrderId, changed: Changed) -> Result<OrderClosed, ProblemResponse> {
    let domain::order::OrderState::Closed { closed_at, .. } = changed.state else {
        return Err(ProblemResponse::internal(
            "a close succeeded on an order that is not closed",
        ));
    };
    Ok(OrderClosed {
        order_id: order_id.as_uuid(),
        status: OrderStatus::Closed,
        payment_status: PaymentStatus::Settled,
        closed_at,
        position: changed.position.to_string(),
    })
}

pub struct FulfilmentApi;

#[OpenApi]
impl FulfilmentApi {
    /// Settle a confirmed order's payment.
    ///
    /// Called by an administrator, or by the payment provider's webhook
    /// signed with `Shop-Signature` (then judged by the signature alone):
    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<order id>.<raw body>">`
    /// with the order id as in the path, so a signed request settles only
    /// the order it was signed for. The caller is authorised before the
    /// body is parsed. A signature is spent only by a request answered 200:
    /// one refused for any other reason may be sent again.
    /// The amount must be the order's total exactly. Idempotent by
    /// `reference`: the same reference again answers 200 as the first time
    /// and records nothing; another reference for a paid order is a 409.
    #[oai(
        path = "/orders/:id/payment",
        method = "post",
        operation_id = "settlePayment",
        tag = "Tag::Fulfilment"
    )]
    async fn settle(
        &self,
        settlement: Data<&Arc<Settlement>>,
        webhooks: Data<&Arc<Webhooks>>,
        auth: PaymentAuth,
        request: &Request,
        /// The order's id.
        id: Path<Field<UuidSpec>>,
        body: SignedBody<SettleRequest>,
    ) -> Result<SettleResponse, SettleProblem> {
        let payer = authorise(&auth, &webhooks, &id, &body.raw)?;
        let order_id = OrderId::from_uuid(super::request::path_id(&id)?);
        let payment = body.parse()?;
        let changed = settlement
            .settle(
                order_id,
                &payment.reference,
                &payment.amount,
                causation(request, payer.user()),
            )
            .await
            .map_err(order_refusals::settle)?;
        let answer = settled(order_id, changed)?;
        if let Payer::Provider(verified) = &payer {
            webhooks.settled(verified);
        }
        Ok(SettleResponse::Ok(Json(answer)))
    }

    /// Close a settled order: fulfilled, the end of the sale.
    ///
    /// A closed order can no longer be cancelled. Closing it again answers
    /// 200 as the first time and records nothing.
    #[oai(
        path = "/orders/:id/close",
        method = "post",
        operation_id = "closeOrder",
        tag = "Tag::Fulfilment"
    )]
    async fn close(
        &self,
        settlement: Data<&Arc<Settlement>>,
        auth: BearerAuth,
        request: &Request,
        /// The order's id.
        id: Path<Field<UuidSpec>>,
    ) -> Result<CloseResponse, CloseProblem> {
        if !auth.is_admin() {
            return Err(ProblemResponse::forbidden("only administrators close orders").into());
        }
        let order_id = OrderId::from_uuid(super::request::path_id(&id)?);
        let changed = settlement
            .close(order_id, causation(request, Some(auth.0.sub)))
            .await
            .map_err(order_refusals::close)?;
        Ok(CloseResponse::Ok(Json(closed(order_id, changed)?)))
    }
}
