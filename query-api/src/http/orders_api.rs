use api_common::bearer::BearerAuth;
use api_common::order_schema::{Failure, OrderStatus, PaymentStatus};
use api_common::problem::{Problem, ProblemResponse};
use domain::order::{LineFailure, UnknownStatus};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;
use views::tables::{order_lines, orders};

use super::lifecycle::Lifecycle;
use super::paging::{Limit, MinPosition, OrdersCursor, PathId};
use super::{Views, money, reflected};

const READS: &[&str] = &[views::projections::ORDERS];

#[derive(Tags)]
enum Tag {
    /// Your orders (all orders, for admins).
    Orders,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderSummary {
    order_id: Uuid,
    customer_id: Uuid,
    status: OrderStatus,
    payment_status: PaymentStatus,
    /// Once confirmed: a decimal amount such as `"199.50"`.
    #[oai(skip_serializing_if_is_none)]
    total: Option<String>,
    placed_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    #[oai(flatten)]
    lifecycle: Lifecycle,
}

impl TryFrom<&orders::Model> for OrderSummary {
    type Error = ProblemResponse;

    fn try_from(row: &orders::Model) -> Result<Self, ProblemResponse> {
        let (status, payment_status) = statuses(row)?;
        Ok(Self {
            order_id: row.order_id,
            customer_id: row.customer_id,
            status,
            payment_status,
            total: row.total_minor.map(money),
            placed_at: row.placed_at,
            updated_at: row.updated_at,
            lifecycle: Lifecycle::of(row, status, payment_status)?,
        })
    }
}

/// The row's statuses; a spelling this build does not know is a broken
/// view, answered as an internal error rather than hidden.
fn statuses(row: &orders::Model) -> Result<(OrderStatus, PaymentStatus), ProblemResponse> {
    let unreadable =
        |error: UnknownStatus| ProblemResponse::internal(format!("order {} in the view: {error}", row.order_id));
    let status = row.status.parse::<domain::order::OrderStatus>().map_err(unreadable)?;
    let payment = row
        .payment_status
        .parse::<domain::order::PaymentStatus>()
        .map_err(unreadable)?;
    Ok((status.into(), payment.into()))
}

/// The rejection reasons the orders projection stored, in the domain's
/// serde form.
fn failures(row: &orders::Model) -> Result<Option<Vec<Failure>>, ProblemResponse> {
    let Some(stored) = &row.failures else {
        return Ok(None);
    };
    let failures: Vec<LineFailure> = serde_json::from_str(stored).map_err(|error| {
        ProblemResponse::internal(format!(
            "order {} in the view: unreadable failures: {error}",
            row.order_id
        ))
    })?;
    Ok(Some(failures.iter().map(Failure::from).collect()))
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderPage {
    /// Newest first.
    items: Vec<OrderSummary>,
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Line {
    product_id: Uuid,
    quantity: i32,
    /// Once confirmed.
    #[oai(skip_serializing_if_is_none)]
    sku: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    name: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    unit_price: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    line_total: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Contact {
    #[oai(skip_serializing_if_is_none)]
    name: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    email: Option<String>,
    phone: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Shipping {
    address: String,
    city: String,
    state: String,
    country: String,
    postal_code: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct OrderDetail {
    order_id: Uuid,
    customer_id: Uuid,
    status: OrderStatus,
    payment_status: PaymentStatus,
    #[oai(skip_serializing_if_is_none)]
    total: Option<String>,
    lines: Vec<Line>,
    customer: Contact,
    shipping: Shipping,
    /// Once rejected: the products that could not be reserved.
    #[oai(skip_serializing_if_is_none)]
    failures: Option<Vec<Failure>>,
    #[oai(skip_serializing_if_is_none)]
    cancel_reason: Option<String>,
    placed_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    #[oai(flatten)]
    lifecycle: Lifecycle,
}

#[derive(ApiResponse)]
enum ListResponse {
    /// A page of your orders.
    #[oai(status = 200)]
    Ok(Json<OrderPage>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The views failed to answer, or hold an order this build cannot read.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The orders view has not reached `minPosition` within the wait, or
    /// the views database is unavailable: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ListResponse: BadRequest, Unauthorized; Unavailable);

#[derive(ApiResponse)]
enum DetailResponse {
    /// The order.
    #[oai(status = 200)]
    Ok(Json<Box<OrderDetail>>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// No such order, or not yours.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The views failed to answer, or hold an order this build cannot read.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The orders view has not reached `minPosition` within the wait, or
    /// the views database is unavailable: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(DetailResponse: BadRequest, Unauthorized, NotFound; Unavailable);

#[derive(ApiResponse)]
enum AllOrdersResponse {
    /// A page of every customer's orders.
    #[oai(status = 200)]
    Ok(Json<OrderPage>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an administrator.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The views failed to answer, or hold an order this build cannot read.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The orders view has not reached `minPosition` within the wait, or
    /// the views database is unavailable: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(AllOrdersResponse: BadRequest, Unauthorized, Forbidden; Unavailable);

pub struct OrdersApi;

/// A cursor names the last order of a page: its time and id.
fn cursor_of(row: &orders::Model) -> String {
    OrdersCursor {
        placed_at: row.placed_at,
        order_id: row.order_id,
    }
    .encode()
}

#[OpenApi]
impl OrdersApi {
    /// Your orders, newest first, paged by `cursor`.
    #[oai(
        path = "/me/orders",
        method = "get",
        operation_id = "listMyOrders",
        tag = "Tag::Orders"
    )]
    async fn mine(
        &self,
        state: Data<&Views>,
        auth: BearerAuth,
        /// How many orders a page holds.
        limit: Query<Option<Limit>>,
        /// From a previous page's `nextCursor`.
        cursor: Query<Option<OrdersCursor>>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> ListResponse {
        let answer: Result<_, ProblemResponse> = async {
            let Limit(limit) = limit.0.unwrap_or_default();
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let mine = orders::Entity::find().filter(orders::Column::CustomerId.eq(auth.0.sub));
            let page = page(&state, mine, cursor.0, limit).await?;
            Ok(ListResponse::Ok(Json(page), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }

    /// One of your orders (any order, for admins). Another customer's order
    /// answers 404: its existence is not revealed.
    #[oai(path = "/orders/:id", method = "get", operation_id = "getOrder", tag = "Tag::Orders")]
    async fn detail(
        &self,
        state: Data<&Views>,
        auth: BearerAuth,
        /// The order id (a UUID).
        id: Path<PathId>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> DetailResponse {
        let answer: Result<_, ProblemResponse> = async {
            let id = id.uuid()?;
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let row = orders::Entity::find_by_id(id)
                .one(&state.db)
                .await
                .map_err(super::views_failed)?
                .filter(|row| row.customer_id == auth.0.sub || auth.is_admin())
                .ok_or_else(|| ProblemResponse::not_found("no such order"))?;
            let lines = order_lines::Entity::find()
                .filter(order_lines::Column::OrderId.eq(id))
                .order_by_asc(order_lines::Column::LineNo)
                .all(&state.db)
                .await
                .map_err(super::views_failed)?;
            Ok(DetailResponse::Ok(Json(Box::new(detail_of(row, lines)?)), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }

    /// Every customer's orders (admins only), newest first, optionally of
    /// one status and one payment status, paged by `cursor`: the list an
    /// operator works from. Orders placed while paging show on no page
    /// already read, and never twice.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/orders", method = "get", operation_id = "listOrders", tag = "Tag::Orders")]
    async fn all(
        &self,
        state: Data<&Views>,
        auth: BearerAuth,
        /// Only orders with this status.
        status: Query<Option<OrderStatus>>,
        /// Only orders whose payment stands so.
        #[oai(name = "paymentStatus")]
        payment_status: Query<Option<PaymentStatus>>,
        /// How many orders a page holds.
        limit: Query<Option<Limit>>,
        /// From a previous page's `nextCursor` (with the same filters).
        cursor: Query<Option<OrdersCursor>>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> AllOrdersResponse {
        let answer: Result<_, ProblemResponse> = async {
            if !auth.is_admin() {
                return Err(ProblemResponse::forbidden("only administrators list every order"));
            }
            let Limit(limit) = limit.0.unwrap_or_default();
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let filtered = filtered(status.0, payment_status.0);
            let page = page(&state, filtered, cursor.0, limit).await?;
            Ok(AllOrdersResponse::Ok(Json(page), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }
}

/// Every order, or those of `status` and `payment`, as the view spells
/// them (the domain's spelling, which the API's enums follow).
fn filtered(status: Option<OrderStatus>, payment: Option<PaymentStatus>) -> Select<orders::Entity> {
    use domain::order::{OrderStatus as Status, PaymentStatus as Payment};
    let mut query = orders::Entity::find();
    if let Some(status) = status.and_then(|s| Status::ALL.into_iter().find(|d| OrderStatus::from(*d) == s)) {
        query = query.filter(orders::Column::Status.eq(status.as_str()));
    }
    if let Some(payment) = payment.and_then(|p| Payment::ALL.into_iter().find(|d| PaymentStatus::from(*d) == p)) {
        query = query.filter(orders::Column::PaymentStatus.eq(payment.as_str()));
    }
    query
}

/// The page of `query`'s orders after the cursor's, newest first, with the
/// cursor of the next page when there is one.
async fn page(
    state: &Views,
    query: Select<orders::Entity>,
    after: Option<OrdersCursor>,
    limit: u64,
) -> Result<OrderPage, ProblemResponse> {
    let mut rows = newest_first(query, after)
        .limit(limit + 1)
        .all(&state.db)
        .await
        .map_err(super::views_failed)?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(cursor_of)).flatten();
    Ok(OrderPage {
        items: rows.iter().map(OrderSummary::try_from).collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// `query`'s orders newest first (the id breaks ties), after the cursor's.
fn newest_first(query: Select<orders::Entity>, after: Option<OrdersCursor>) -> Select<orders::Entity> {
    let query = query
        .order_by_desc(orders::Column::PlacedAt)
        .order_by_desc(orders::Column::OrderId);
    match after {
        None => query,
        // One row comparison, which Postgres reads as a bound of the
        // newest-first indexes; the same test spelt with OR is a filter
        // over every row before the page.
        Some(OrdersCursor { placed_at, order_id }) => query.filter(
            Expr::tuple([Expr::col(orders::Column::PlacedAt), Expr::col(orders::Column::OrderId)])
                .lt(Expr::tuple([Expr::val(placed_at), Expr::val(order_id)])),
        ),
    }
}

fn detail_of(row: orders::Model, lines: Vec<order_lines::Model>) -> Result<OrderDetail, ProblemResponse> {
    let (status, payment_status) = statuses(&row)?;
    let failures = failures(&row)?;
    let lifecycle = Lifecycle::of(&row, status, payment_status)?;
    Ok(OrderDetail {
        order_id: row.order_id,
        customer_id: row.customer_id,
        status,
        payment_status,
        total: row.total_minor.map(money),
        lines: lines
            .into_iter()
            .map(|line| Line {
                product_id: line.product_id,
                quantity: line.quantity,
                sku: line.sku,
                name: line.name,
                unit_price: line.unit_price_minor.map(money),
                line_total: line.line_total_minor.map(money),
            })
            .collect(),
        customer: Contact {
            name: row.customer_name,
            email: row.customer_email,
            phone: row.customer_phone,
        },
        shipping: Shipping {
            address: row.address,
            city: row.city,
            state: row.state,
            country: row.country,
            postal_code: row.postal_code,
        },
        failures,
        cancel_reason: row.cancel_reason,
        placed_at: row.placed_at,
        updated_at: row.updated_at,
        lifecycle,
    })
}
