use std::sync::Arc;

use domain::ids::ProductId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::fields::{Field, PriceSpec, ProductNameSpec, RestockSpec, SkuSpec, StockSpec, UuidSpec};
use super::problems;
use super::request::causation;
use crate::aggregates::CommandError;
use crate::catalog::{Catalog, CatalogError, Changed, ProductError};
use api_common::bearer::BearerAuth;
use api_common::json_body::JsonBody;
use api_common::problem::ProblemResponse;

#[derive(Tags)]
enum Tag {
    /// Catalog administration (admins only).
    Products,
}

#[derive(Object)]
struct CreateProduct {
    /// Letters, digits, `.`, `_` and `-`, unique regardless of case (stored
    /// in uppercase).
    sku: Field<SkuSpec>,
    /// Stored trimmed; it may not be blank.
    name: Field<ProductNameSpec>,
    /// A decimal amount from `0.01` to `1000000000.00`, with at most two
    /// fraction digits and no leading zeros, such as `"199.50"`.
    price: Field<PriceSpec>,
    /// Units in stock.
    stock: Field<StockSpec>,
}

#[derive(Object)]
struct Rename {
    /// Stored trimmed; it may not be blank.
    name: Field<ProductNameSpec>,
}

#[derive(Object)]
struct Reprice {
    /// A decimal amount from `0.01` to `1000000000.00`, with at most two
    /// fraction digits and no leading zeros, such as `"199.50"`.
    price: Field<PriceSpec>,
}

#[derive(Object)]
struct Restock {
    /// Units to add; the stock may not pass 1000000000 units (409).
    quantity: Field<RestockSpec>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ProductChanged {
    product_id: Uuid,
    /// The global position of the product's last event: the consistency token.
    position: String,
}

#[derive(ApiResponse)]
enum CreateResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ProductChanged>),
}

#[derive(ApiResponse)]
enum ChangeResponse {
    /// Changed (or already as asked).
    #[oai(status = 200)]
    Ok(Json<ProductChanged>),
}

problems! {
    /// The errors of `POST /products`.
    CreateProblem {
        400 BadRequest => "The body is malformed, or a field is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators manage the catalog.",
        409 Conflict => "A product with this SKU exists (regardless of case), or others created it at the same time.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `PUT /products/{id}/name` and `PUT /products/{id}/price`.
    ChangeProblem {
        400 BadRequest => "The body is malformed, or a field or the id is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators manage the catalog.",
        404 NotFound => "No such product.",
        409 Conflict => "Others changed the product at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /products/{id}/restock`.
    RestockProblem {
        400 BadRequest => "The body is malformed, or a field or the id is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators manage the catalog.",
        404 NotFound => "No such product.",
        409 Conflict => "The stock would pass its maximum, or others changed the product at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

impl From<CatalogError> for ProblemResponse {
    fn from(error: CatalogError) -> Self {
        match error {
            CommandError::Refused(ProductError::NotFound) => Self::not_found("no such product"),
            CommandError::Refused(ProductError::DuplicateSku) => {
                Self::conflict("duplicate-sku", "a product with this SKU exists")
            }
            CommandError::Refused(ProductError::StockOverflow { max, .. }) => Self::conflict(
                "stock-overflow",
                format!("the stock would pass the maximum of {max} units"),
            ),
            other => super::failure(other),
        }
    }
}

fn admin(auth: &BearerAuth) -> Result<(), ProblemResponse> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(ProblemResponse::forbidden("only administrators manage the catalog"))
    }
}

fn changed(change: Changed) -> Json<ProductChanged> {
    Json(ProductChanged {
        product_id: change.product_id.as_uuid(),
        position: change.position.map(|p| p.to_string()).unwrap_or_default(),
    })
}

pub struct ProductsApi;

#[OpenApi]
impl ProductsApi {
    /// Create a product.
    ///
    /// The product id is derived from the SKU, so creating the same SKU
    /// twice is refused with 409.
    #[oai(
        path = "/products",
        method = "post",
        operation_id = "createProduct",
        tag = "Tag::Products"
    )]
    async fn create(
        &self,
        catalog: Data<&Arc<Catalog>>,
        auth: BearerAuth,
        request: &Request,
        body: JsonBody<CreateProduct>,
    ) -> Result<CreateResponse, CreateProblem> {
        admin(&auth)?;
        let body = body.0;
        let change = catalog
            .create(
                &body.sku,
                &body.name,
                &body.price,
                *body.stock,
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(CreateResponse::Created(changed(change)))
    }

    /// Rename a product.
    #[oai(
        path = "/products/:id/name",
        method = "put",
        operation_id = "renameProduct",
        tag = "Tag::Products"
    )]
    async fn rename(
        &self,
        catalog: Data<&Arc<Catalog>>,
        auth: BearerAuth,
        request: &Request,
        /// The product's id.
        id: Path<Field<UuidSpec>>,
        body: JsonBody<Rename>,
    ) -> Result<ChangeResponse, ChangeProblem> {
        admin(&auth)?;
        let change = catalog
            .rename(
                ProductId::from_uuid(super::request::path_id(&id)?),
                &body.name,
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(ChangeResponse::Ok(changed(change)))
    }

    /// Change a product's price. Orders already confirmed keep their price.
    #[oai(
        path = "/products/:id/price",
        method = "put",
        operation_id = "repriceProduct",
        tag = "Tag::Products"
    )]
    async fn reprice(
        &self,
        catalog: Data<&Arc<Catalog>>,
        auth: BearerAuth,
        request: &Request,
        /// The product's id.
        id: Path<Field<UuidSpec>>,
        body: JsonBody<Reprice>,
    ) -> Result<ChangeResponse, ChangeProblem> {
        admin(&auth)?;
        let change = catalog
            .reprice(
                ProductId::from_uuid(super::request::path_id(&id)?),
                &body.price,
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(ChangeResponse::Ok(changed(change)))
    }

    /// Add stock to a product.
    #[oai(
        path = "/products/:id/restock",
        method = "post",
        operation_id = "restockProduct",
        tag = "Tag::Products"
    )]
    async fn restock(
        &self,
        catalog: Data<&Arc<Catalog>>,
        auth: BearerAuth,
        request: &Request,
        /// The product's id.
        id: Path<Field<UuidSpec>>,
        body: JsonBody<Restock>,
    ) -> Result<ChangeResponse, RestockProblem> {
        admin(&auth)?;
        let change = catalog
            .restock(
                ProductId::from_uuid(super::request::path_id(&id)?),
                *body.quantity,
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(ChangeResponse::Ok(changed(change)))
    }
}
