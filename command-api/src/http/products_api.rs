use std::sync::Arc;

use domain::ids::ProductId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

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
    /// 1 to 64 characters of `A-Z 0-9 . _ -`, case-insensitive, unique.
    sku: String,
    /// 1 to 200 characters.
    name: String,
    /// A decimal amount with at most two fraction digits, such as `"199.50"`.
    price: String,
    /// Units in stock, 0 or more.
    stock: i64,
}

#[derive(Object)]
struct Rename {
    /// 1 to 200 characters.
    name: String,
}

#[derive(Object)]
struct Reprice {
    /// A decimal amount with at most two fraction digits, such as `"199.50"`.
    price: String,
}

#[derive(Object)]
struct Restock {
    /// Units to add, at least 1.
    quantity: i64,
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
    ) -> Result<CreateResponse, ProblemResponse> {
        admin(&auth)?;
        let body = body.0;
        let change = catalog
            .create(
                &body.sku,
                &body.name,
                &body.price,
                body.stock,
                causation(request, Some(auth.0.sub)),
            )
            .await?;
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
        /// The id (a UUID).
        id: Path<String>,
        body: JsonBody<Rename>,
    ) -> Result<ChangeResponse, ProblemResponse> {
        admin(&auth)?;
        let change = catalog
            .rename(
                ProductId::from_uuid(super::request::path_id(&id)?),
                &body.name,
                causation(request, Some(auth.0.sub)),
            )
            .await?;
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
        /// The id (a UUID).
        id: Path<String>,
        body: JsonBody<Reprice>,
    ) -> Result<ChangeResponse, ProblemResponse> {
        admin(&auth)?;
        let change = catalog
            .reprice(
                ProductId::from_uuid(super::request::path_id(&id)?),
                &body.price,
                causation(request, Some(auth.0.sub)),
            )
            .await?;
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
        /// The id (a UUID).
        id: Path<String>,
        body: JsonBody<Restock>,
    ) -> Result<ChangeResponse, ProblemResponse> {
        admin(&auth)?;
        let change = catalog
            .restock(
                ProductId::from_uuid(super::request::path_id(&id)?),
                body.quantity,
                causation(request, Some(auth.0.sub)),
            )
            .await?;
        Ok(ChangeResponse::Ok(changed(change)))
    }
}
