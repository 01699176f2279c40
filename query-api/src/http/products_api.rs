use api_common::problem::{Problem, ProblemResponse};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;
use views::tables::products;

use super::paging::{Limit, MinPosition, Offset, PathId, SkuParam};
use super::{Views, money, reflected};

const READS: &[&str] = &[views::projections::CATALOG];

#[derive(Tags)]
enum Tag {
    /// The product catalog.
    Products,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Product {
    product_id: Uuid,
    sku: String,
    name: String,
    /// A decimal amount such as `"199.50"`.
    price: String,
    /// Units in stock that no order holds.
    available: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<products::Model> for Product {
    fn from(row: products::Model) -> Self {
        Self {
            product_id: row.product_id,
            sku: row.sku,
            name: row.name,
            price: money(row.price_minor),
            available: row.available,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ProductPage {
    items: Vec<Product>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum ListResponse {
    /// A page of products, by SKU.
    #[oai(status = 200)]
    Ok(Json<ProductPage>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`), or both `offset` and
    /// `cursor` were given.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The catalog failed to answer.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The catalog has not reached `minPosition` within the wait, or the
    /// views database is unavailable: retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ListResponse: BadRequest; Unavailable);

#[derive(ApiResponse)]
enum GetResponse {
    /// The product.
    #[oai(status = 200)]
    Ok(Json<Product>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No such product.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The catalog failed to answer.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The catalog has not reached `minPosition` within the wait, or the
    /// views database is unavailable: retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(GetResponse: BadRequest, NotFound; Unavailable);

pub struct ProductsApi;

/// `LIKE` pattern matching `fragment` anywhere in a folded name, with `\`
/// escaping wildcards: the fragment folded as the catalog folds names
/// ([`domain::search::fold`]), so case is ignored alike on SQLite and
/// Postgres, beyond ASCII.
fn contains_pattern(fragment: &str) -> String {
    let escaped: String = domain::search::fold(fragment)
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

#[OpenApi]
impl ProductsApi {
    /// List products in SKU order, filtered by exact SKU or by a fragment of
    /// the name (case-insensitive); paged by `cursor` (the SKU a page ended
    /// with) or by `offset` (with a `cursor`: skipped after it).
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/products",
        method = "get",
        operation_id = "listProducts",
        tag = "Tag::Products"
    )]
    async fn list(
        &self,
        state: Data<&Views>,
        /// How many products a page holds.
        limit: Query<Option<Limit>>,
        /// Products to skip (after `cursor`, when given).
        offset: Query<Option<Offset>>,
        /// From a previous page's `nextCursor`.
        cursor: Query<Option<SkuParam>>,
        /// An exact SKU (case-insensitive).
        sku: Query<Option<SkuParam>>,
        /// A fragment of the name, in any case: "ÉCLAIR" finds "Éclair", "STRASSE" "Straße".
        name: Query<Option<String>>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> ListResponse {
        let answer: Result<_, ProblemResponse> = async {
            let Limit(limit) = limit.0.unwrap_or_default();
            let Offset(offset) = offset.0.unwrap_or_default();
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let mut rows = filtered(sku.0.as_ref(), name.0.as_deref(), cursor.0.as_ref())
                .offset(offset)
                .limit(limit + 1)
                .all(&state.db)
                .await
                .map_err(super::views_failed)?;
            let more = rows.len() as u64 > limit;
            rows.truncate(limit as usize);
            let next_cursor = more.then(|| rows.last().map(|row| row.sku.clone())).flatten();
            let page = ProductPage {
                items: rows.into_iter().map(Product::from).collect(),
                next_cursor,
            };
            Ok(ListResponse::Ok(Json(page), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }

    /// One product.
    #[oai(
        path = "/products/:id",
        method = "get",
        operation_id = "getProduct",
        tag = "Tag::Products"
    )]
    async fn get(
        &self,
        state: Data<&Views>,
        /// The product id (a UUID).
        id: Path<PathId>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> GetResponse {
        let answer: Result<_, ProblemResponse> = async {
            let id = id.uuid()?;
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let row = products::Entity::find_by_id(id)
                .one(&state.db)
                .await
                .map_err(super::views_failed)?
                .ok_or_else(|| ProblemResponse::not_found("no such product"))?;
            Ok(GetResponse::Ok(Json(row.into()), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }
}

/// The products matching an exact SKU and a name fragment, in SKU order,
/// after the SKU `after`.
fn filtered(sku: Option<&SkuParam>, name: Option<&str>, after: Option<&SkuParam>) -> Select<products::Entity> {
    let mut query = products::Entity::find().order_by_asc(products::Column::Sku);
    if let Some(SkuParam(sku)) = sku {
        query = query.filter(products::Column::Sku.eq(sku.as_str()));
    }
    if let Some(fragment) = name.filter(|f| !f.is_empty()) {
        let pattern = LikeExpr::new(contains_pattern(fragment)).escape('\\');
        query = query.filter(Expr::col(products::Column::NameFolded).like(pattern));
    }
    if let Some(SkuParam(after)) = after {
        query = query.filter(products::Column::Sku.gt(after.as_str()));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_fragments_match_literally() {
        assert_eq!(contains_pattern("Mug"), "%mug%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn name_fragments_are_folded_as_names_are() {
        assert_eq!(contains_pattern("ÉCLAIR"), "%éclair%");
        assert_eq!(contains_pattern("Straße"), "%strasse%");
    }
}
