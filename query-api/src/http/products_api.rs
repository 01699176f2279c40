use api_common::problem::ProblemResponse;
use domain::product::Sku;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;
use views::tables::products;

use super::{Views, money, paging, path_id, reflected};

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
}

#[derive(ApiResponse)]
enum GetResponse {
    /// The product.
    #[oai(status = 200)]
    Ok(Json<Product>, #[oai(header = "X-Position")] String),
}

pub struct ProductsApi;

/// `LIKE` pattern matching `fragment` anywhere, with `\` escaping wildcards.
fn contains_pattern(fragment: &str) -> String {
    let escaped: String = fragment
        .to_lowercase()
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
    /// the name (case-insensitive); paged by `cursor` or by `offset`.
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
        /// 1 to 100, default 20.
        limit: Query<Option<i64>>,
        /// Products to skip (not with `cursor`).
        offset: Query<Option<i64>>,
        /// From a previous page's `nextCursor`.
        cursor: Query<Option<String>>,
        /// An exact SKU (case-insensitive).
        sku: Query<Option<String>>,
        /// A fragment of the name (case-insensitive).
        name: Query<Option<String>>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<String>>,
        #[oai(name = "X-Min-Position")] min_position_header: Header<Option<String>>,
    ) -> Result<ListResponse, ProblemResponse> {
        let limit = paging::limit(limit.0)?;
        let offset = paging::offset(offset.0)?;
        if offset > 0 && cursor.0.is_some() {
            return Err(ProblemResponse::invalid(&domain::validation::InvalidField::new(
                "offset",
                domain::validation::Problem::Malformed {
                    what: "page position: use either offset or cursor",
                },
            )));
        }
        let position = reflected(
            &state.freshness,
            READS,
            min_position.as_deref(),
            min_position_header.as_deref(),
        )
        .await?;
        let mut query = products::Entity::find().order_by_asc(products::Column::Sku);
        if let Some(sku) = sku.0.as_deref() {
            let sku = Sku::parse(sku).map_err(|e| ProblemResponse::invalid(&e))?;
            query = query.filter(products::Column::Sku.eq(sku.as_str()));
        }
        if let Some(fragment) = name.0.as_deref().filter(|f| !f.is_empty()) {
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(products::Column::Name)))
                    .like(LikeExpr::new(contains_pattern(fragment)).escape('\\')),
            );
        }
        if let Some(cursor) = cursor.0.as_deref() {
            query = query.filter(products::Column::Sku.gt(paging::decode_cursor(cursor)?));
        }
        let mut rows = query
            .offset(offset)
            .limit(limit + 1)
            .all(&state.db)
            .await
            .map_err(ProblemResponse::internal)?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|row| paging::encode_cursor(&row.sku)))
            .flatten();
        Ok(ListResponse::Ok(
            Json(ProductPage {
                items: rows.into_iter().map(Product::from).collect(),
                next_cursor,
            }),
            position,
        ))
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
        id: Path<String>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<String>>,
        #[oai(name = "X-Min-Position")] min_position_header: Header<Option<String>>,
    ) -> Result<GetResponse, ProblemResponse> {
        let id = path_id(&id)?;
        let position = reflected(
            &state.freshness,
            READS,
            min_position.as_deref(),
            min_position_header.as_deref(),
        )
        .await?;
        let row = products::Entity::find_by_id(id)
            .one(&state.db)
            .await
            .map_err(ProblemResponse::internal)?
            .ok_or_else(|| ProblemResponse::not_found("no such product"))?;
        Ok(GetResponse::Ok(Json(row.into()), position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_fragments_match_literally() {
        assert_eq!(contains_pattern("Mug"), "%mug%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
