//! The catalog a fresh local run starts with: 100 products, added through
//! the catalog's commands so they are events like any other.

use command_api::aggregates::Causation;
use command_api::catalog::ProductError;
use command_api::catalog::{Catalog, CatalogError};

const ADJECTIVES: [&str; 10] = [
    "Classic", "Compact", "Deluxe", "Eco", "Handmade", "Portable", "Rustic", "Smart", "Vintage", "Wireless",
];
const NOUNS: [&str; 10] = [
    "Backpack",
    "Desk Lamp",
    "Headphones",
    "Kettle",
    "Mug",
    "Notebook",
    "Speaker",
    "Sunglasses",
    "Teapot",
    "Watch",
];

/// Adds the sample products that are not there yet; returns how many it added.
pub async fn add(catalog: &Catalog) -> Result<usize, CatalogError> {
    let mut added = 0;
    for n in 0..100u64 {
        let sku = format!("SAMPLE-{:03}", n + 1);
        let name = format!("{} {}", ADJECTIVES[(n % 10) as usize], NOUNS[(n / 10) as usize]);
        // Prices from 1.00 to 1000.00 and stock from 10 to 100, spread by
        // a fixed multiplier so every run adds the same catalog.
        let price_minor = 100 + (n * 7_919) % 99_901;
        let price = format!("{}.{:02}", price_minor / 100, price_minor % 100);
        let stock = 10 + (n * 37) % 91;
        let causation = Causation::request(uuid::Uuid::now_v7(), None);
        match catalog.create(&sku, &name, &price, stock as i64, causation).await {
            Ok(_) => added += 1,
            Err(CatalogError::Refused(ProductError::DuplicateSku)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(added)
}
