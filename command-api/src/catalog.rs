//! Catalog administration: create products, rename, reprice, restock.

use std::sync::Arc;

use domain::ids::ProductId;
use domain::money::Price;
/// The product aggregate's refusals, which callers of the catalog match on.
pub use domain::product::ProductError;
use domain::product::{Product, ProductCommand, ProductName, Sku};
use domain::quantity::{RestockQuantity, StockLevel};
use event_store::Position;

use crate::aggregates::{Aggregates, Causation, CommandError};

/// What the catalog's commands fail with: an unknown product, a duplicate
/// SKU or a stock overflow is the product aggregate's own refusal.
pub type CatalogError = CommandError<ProductError>;

/// A product command's result: which product, and where its event landed.
pub struct Changed {
    pub product_id: ProductId,
    pub position: Option<Position>,
}

pub struct Catalog {
    products: Arc<Aggregates<Product>>,
}

impl Catalog {
    pub fn new(products: Arc<Aggregates<Product>>) -> Self {
        Self { products }
    }

    pub async fn create(
        &self,
        sku: &str,
        name: &str,
        price: &str,
        stock: i64,
        causation: Causation,
    ) -> Result<Changed, CatalogError> {
        let sku = Sku::parse(sku)?;
        let name = ProductName::parse(name)?;
        let price = Price::parse_decimal(price)?;
        let initial_stock = StockLevel::parse_field("stock", stock)?;
        let product_id = ProductId::for_sku(&sku);
        let now = chrono::Utc::now();
        self.change(product_id, causation, || ProductCommand::Create {
            product_id,
            sku: sku.clone(),
            name: name.clone(),
            price,
            initial_stock,
            now,
        })
        .await
    }

    pub async fn rename(
        &self,
        product_id: ProductId,
        name: &str,
        causation: Causation,
    ) -> Result<Changed, CatalogError> {
        let name = ProductName::parse(name)?;
        let now = chrono::Utc::now();
        self.change(product_id, causation, || ProductCommand::Rename {
            name: name.clone(),
            now,
        })
        .await
    }

    pub async fn reprice(
        &self,
        product_id: ProductId,
        price: &str,
        causation: Causation,
    ) -> Result<Changed, CatalogError> {
        let price = Price::parse_decimal(price)?;
        let now = chrono::Utc::now();
        self.change(product_id, causation, || ProductCommand::Reprice { price, now })
            .await
    }

    pub async fn restock(
        &self,
        product_id: ProductId,
        quantity: i64,
        causation: Causation,
    ) -> Result<Changed, CatalogError> {
        let quantity = RestockQuantity::parse_field("quantity", quantity)?;
        let now = chrono::Utc::now();
        self.change(product_id, causation, || ProductCommand::Restock { quantity, now })
            .await
    }

    async fn change(
        &self,
        product_id: ProductId,
        causation: Causation,
        command: impl Fn() -> ProductCommand,
    ) -> Result<Changed, CatalogError> {
        let decided = self.products.execute(product_id, causation, command).await?;
        Ok(Changed {
            product_id,
            position: decided.position,
        })
    }
}
