use std::sync::Arc;

use domain::ids::OrderId;
use domain::money::Money;
use domain::order::{OrderError, PricedLine};
use event_store::Position;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, ResponseContent, Tags};
use uuid::Uuid;

use super::fields::{
    AddressSpec, CitySpec, CountrySpec, CustomerNameSpec, EmailSpec, Field, IdempotencyKeySpec, LinesSpec, PhoneSpec,
    PostalCodeSpec, QuantitySpec, ReasonSpec, RegionSpec, UuidSpec,
};
use super::problems;
use super::request::causation;
use crate::aggregates::CommandError;
use crate::orders::{Orders, OrdersError, PlaceOrder, Placed};
use api_common::bearer::BearerAuth;
use api_common::json_body::JsonBody;
use api_common::order_schema::{Failure, OrderStatus, PaymentStatus};
use api_common::problem::{Problem, ProblemResponse};

use super::order_refusals;

#[derive(Tags)]
enum Tag {
    /// Placing and cancelling orders.
    Orders,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderItem {
    /// The product's id.
    product_id: Field<UuidSpec>,
    /// Units of the product. Lines of the same product are merged, and the
    /// merged quantity is bounded the same way (else 422 names the line).
    quantity: Field<QuantitySpec>,
}

/// Who to contact about the order.
#[derive(Object)]
struct CustomerContact {
    /// The name for delivery, trimmed; it may not be blank.
    name: Option<Field<CustomerNameSpec>>,
    /// One `@`, a dot in the domain, no spaces.
    email: Option<Field<EmailSpec>>,
    /// Digits, spaces and `+ - ( )`, with at least 7 digits.
    phone: Field<PhoneSpec>,
}

/// Where the order is shipped. Every field is trimmed and may not be blank.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Shipping {
    address: Field<AddressSpec>,
    city: Field<CitySpec>,
    state: Field<RegionSpec>,
    country: Field<CountrySpec>,
    /// Letters, digits, spaces and `-`.
    postal_code: Field<PostalCodeSpec>,
}

#[derive(Object)]
struct PlaceOrderRequest {
    /// The lines of the order.
    items: Field<LinesSpec<OrderItem>>,
    customer: CustomerContact,
    shipping: Shipping,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ConfirmedLine {
    product_id: Uuid,
    sku: String,
    name: String,
    quantity: u32,
    /// The price when the stock was reserved, such as `"199.50"`.
    unit_price: String,
    line_total: String,
}

impl From<PricedLine> for ConfirmedLine {
    fn from(line: PricedLine) -> Self {
        Self {
            product_id: line.product_id.as_uuid(),
            sku: line.sku.to_string(),
            name: line.name.to_string(),
            quantity: line.quantity.get(),
            unit_price: line.unit_price.to_string(),
            line_total: line.line_total.to_string(),
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderConfirmed {
    order_id: Uuid,
    // `confirmed`, or `cancelled` when a retried request finds the order
    // cancelled since (said in the 201's description: a doc comment here
    // would wrap the `$ref` in `allOf`).
    status: OrderStatus,
    lines: Vec<ConfirmedLine>,
    total: String,
    /// The global position this answer reflects: the consistency token.
    position: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderRejected {
    order_id: Uuid,
    // Always `rejected`.
    status: OrderStatus,
    failures: Vec<Failure>,
    position: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderPending {
    order_id: Uuid,
    // Always `pending`.
    status: OrderStatus,
    position: String,
}

/// A 409 answer to `POST /orders`: the order, rejected, or a problem.
#[derive(ResponseContent)]
enum OrderConflict {
    Rejected(Json<OrderRejected>),
    #[oai(content_type = "application/problem+json")]
    Problem(Json<Problem>),
}

/// The answers of `POST /orders`. Its 409 carries either a rejected order or
/// a problem, so it cannot be the `Ok` half of a `Result` whose `Err` half
/// holds problems (the document would name 409 twice): it lists its problem
/// statuses itself instead, and [`From<ProblemResponse>`] keeps each of them
/// (another is a bug, answered 500). 413 and 415 come from
/// [`api_common::problem::from_poem_error`], before the operation runs.
#[derive(ApiResponse)]
enum PlaceOrderResponse {
    /// Every line is reserved: the order is confirmed with its prices
    /// (`status` is `confirmed`, or `cancelled` when a retried request finds
    /// the order cancelled since).
    #[oai(status = 201)]
    Confirmed(Json<OrderConfirmed>),
    /// Not decided within the wait (`status` is `pending`); poll the query
    /// API with `position`.
    #[oai(status = 202)]
    Pending(Json<OrderPending>),
    /// Some lines could not be reserved and nothing is held (an order, as
    /// `application/json`, `status` `rejected`); or others changed the order
    /// at the same time, retry (a problem).
    #[oai(status = 409)]
    Conflict(OrderConflict),
    /// The request is malformed, or a field is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The body is too large.
    #[oai(status = 413, content_type = "application/problem+json")]
    #[expect(dead_code, reason = "answered by from_poem_error before the operation runs")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    #[expect(dead_code, reason = "answered by from_poem_error before the operation runs")]
    UnsupportedMediaType(Json<Problem>),
    /// The order is refused as a whole and nothing is reserved: you have
    /// as many orders waiting for payment as allowed
    /// (`MAX_UNSETTLED_ORDERS`). Pay or cancel one, then order again (type
    /// `too-many-unsettled-orders`).
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyUnsettledOrders(Json<Problem>),
    /// The `Idempotency-Key` was used before with a different order, or the
    /// lines of one product add up to more than a line may hold (named in
    /// `field`).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The event store is unavailable: retry after the number of seconds in
    /// `Retry-After` (with the same `Idempotency-Key`, a retry never places
    /// a second order).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] Option<u32>),
}

impl From<ProblemResponse> for PlaceOrderResponse {
    fn from(problem: ProblemResponse) -> Self {
        match problem {
            ProblemResponse::BadRequest(p) => Self::BadRequest(p),
            ProblemResponse::Unauthorized(p) => Self::Unauthorized(p),
            ProblemResponse::Conflict(p) => Self::Conflict(OrderConflict::Problem(p)),
            ProblemResponse::Unprocessable(p) => Self::Unprocessable(p),
            ProblemResponse::Internal(p) => Self::Internal(p),
            ProblemResponse::Unavailable(p, retry_after) => Self::Unavailable(p, retry_after),
            ProblemResponse::Forbidden(p) | ProblemResponse::NotFound(p) => {
                Self::Internal(super::undocumented(p.status))
            }
        }
    }
}

impl From<Placed> for PlaceOrderResponse {
    fn from(placed: Placed) -> Self {
        match placed {
            Placed::Confirmed {
                order_id,
                lines,
                total,
                position,
            } => Self::Confirmed(confirmed(order_id, OrderStatus::Confirmed, lines, total, position)),
            // Still the order as it was confirmed, with the status it has now.
            Placed::Cancelled {
                order_id,
                lines,
                total,
                position,
            } => Self::Confirmed(confirmed(order_id, OrderStatus::Cancelled, lines, total, position)),
            Placed::Rejected {
                order_id,
                failures,
                position,
            } => Self::Conflict(OrderConflict::Rejected(Json(OrderRejected {
                order_id: order_id.as_uuid(),
                status: OrderStatus::Rejected,
                failures: failures.iter().map(Failure::from).collect(),
                position: position.to_string(),
            }))),
            Placed::Refused { refusal, .. } => Self::TooManyUnsettledOrders(Json(Problem {
                kind: "/problems/too-many-unsettled-orders".to_owned(),
                title: "Too Many Requests".to_owned(),
                status: 429,
                detail: refusal.to_string(),
                field: None,
            })),
            Placed::Pending { order_id, position } => Self::Pending(Json(OrderPending {
                order_id: order_id.as_uuid(),
                status: OrderStatus::Pending,
                position: position.to_string(),
            })),
        }
    }
}

fn confirmed(
    order_id: OrderId,
    status: OrderStatus,
    lines: Vec<PricedLine>,
    total: Money,
    position: Position,
) -> Json<OrderConfirmed> {
    Json(OrderConfirmed {
        order_id: order_id.as_uuid(),
        status,
        lines: lines.into_iter().map(ConfirmedLine::from).collect(),
        total: total.to_string(),
        position: position.to_string(),
    })
}

impl From<PlaceOrderRequest> for PlaceOrder {
    fn from(body: PlaceOrderRequest) -> Self {
        Self {
            items: body
                .items
                .0
                .into_iter()
                .map(|item| (item.product_id.0, item.quantity.0))
                .collect(),
            customer_name: body.customer.name.map(|name| name.0),
            customer_email: body.customer.email.map(|email| email.0),
            customer_phone: body.customer.phone.0,
            address: body.shipping.address.0,
            city: body.shipping.city.0,
            state: body.shipping.state.0,
            country: body.shipping.country.0,
            postal_code: body.shipping.postal_code.0,
        }
    }
}

#[derive(Object)]
struct CancelRequest {
    /// Why, trimmed; it may not be blank.
    reason: Field<ReasonSpec>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderCancelled {
    order_id: Uuid,
    // Always `cancelled`.
    status: OrderStatus,
    // `cancelled` for an order that was not paid, `refunded` for a paid one.
    payment_status: PaymentStatus,
    position: String,
}

#[derive(ApiResponse)]
enum CancelResponse {
    /// Cancelled (or cancelled before: nothing changed): the stock goes
    /// back once; `paymentStatus` is `cancelled` for an order that was not
    /// paid, `refunded` for a paid one.
    #[oai(status = 200)]
    Ok(Json<OrderCancelled>),
}

problems! {
    /// The errors of `POST /orders/{id}/cancel`.
    CancelProblem {
        400 BadRequest => "The body is malformed, or a field or the id is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        404 NotFound => "No such order, or not one of yours.",
        409 Conflict => "The order cannot be cancelled (`detail` says why: still pending, rejected, or closed), or others changed it at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

impl From<OrdersError> for ProblemResponse {
    fn from(error: OrdersError) -> Self {
        match error {
            CommandError::Refused(OrderError::IdTaken) => Self::unprocessable(
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different order",
                Some("Idempotency-Key"),
            ),
            CommandError::Refused(OrderError::NotFound | OrderError::NotOwner) => Self::not_found("no such order"),
            CommandError::Refused(OrderError::InvalidTransition {
                status,
                payment,
                cancelled_because,
                ..
            }) => order_refusals::not_cancellable(status, payment, cancelled_because.as_ref()),
            other => super::failure(other),
        }
    }
}

pub struct OrdersApi;

#[OpenApi]
impl OrdersApi {
    /// Place an order.
    ///
    /// Stock is reserved for every line or for none. The call waits a
    /// bounded time for the outcome: 201 confirmed with a price snapshot,
    /// 409 rejected with the reason per product, or 202 pending. With an
    /// `Idempotency-Key`, the same request again gives the same answer and no
    /// second order; the same key with another body gives 422.
    #[oai(path = "/orders", method = "post", operation_id = "placeOrder", tag = "Tag::Orders")]
    async fn place(
        &self,
        orders: Data<&Arc<Orders>>,
        auth: BearerAuth,
        request: &Request,
        /// Names the order: the same key with the same body again answers
        /// as the first time and places no second order.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<Field<IdempotencyKeySpec>>>,
        body: JsonBody<PlaceOrderRequest>,
    ) -> PlaceOrderResponse {
        let placed = orders
            .place(
                auth.user_id(),
                idempotency_key.0.as_ref().map(|key| key.as_str()),
                body.0.into(),
                causation(request, Some(auth.0.sub)),
            )
            .await;
        match placed {
            Ok(placed) => placed.into(),
            Err(error) => ProblemResponse::from(error).into(),
        }
    }

    /// Cancel one of your confirmed orders, paid or not.
    ///
    /// Its stock goes back; a paid order's payment is refunded. A closed
    /// order cannot be cancelled. Cancelling again answers 200 and changes
    /// nothing. Another customer's order answers 404: its existence is not
    /// revealed.
    #[oai(
        path = "/orders/:id/cancel",
        method = "post",
        operation_id = "cancelOrder",
        tag = "Tag::Orders"
    )]
    async fn cancel(
        &self,
        orders: Data<&Arc<Orders>>,
        auth: BearerAuth,
        request: &Request,
        /// The order's id.
        id: Path<Field<UuidSpec>>,
        body: JsonBody<CancelRequest>,
    ) -> Result<CancelResponse, CancelProblem> {
        let order_id = OrderId::from_uuid(super::request::path_id(&id)?);
        let (payment, position) = orders
            .cancel(
                auth.user_id(),
                order_id,
                &body.reason,
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(CancelResponse::Ok(Json(OrderCancelled {
            order_id: order_id.as_uuid(),
            status: OrderStatus::Cancelled,
            payment_status: payment.into(),
            position: position.to_string(),
        })))
    }
}
