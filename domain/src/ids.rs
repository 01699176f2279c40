//! Identifiers of the aggregates.
//!
//! Users and products have ids derived from their natural keys (UUIDv5 of the
//! canonical username or SKU). Their streams are named after those ids, so
//! "the username is taken" and "the SKU exists" are both answered atomically
//! by the event store: creating the stream with the expectation "no stream"
//! fails for the second writer. Orders get fresh random ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::Username;
use crate::product::Sku;

const USER_NAMESPACE: Uuid = Uuid::from_u128(0x5d0b_1c3e_7a52_4f0e_9b8e_2f6a_4c11_d001);
const PRODUCT_NAMESPACE: Uuid = Uuid::from_u128(0x5d0b_1c3e_7a52_4f0e_9b8e_2f6a_4c11_d002);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(raw).map(Self)
            }
        }
    };
}

id_type!(
    /// A registered user; derived from the canonical username.
    UserId
);
id_type!(
    /// A catalog product; derived from the canonical SKU.
    ProductId
);
id_type!(
    /// An order; chosen by whoever places it.
    OrderId
);

impl UserId {
    pub fn for_username(username: &Username) -> Self {
        Self(Uuid::new_v5(&USER_NAMESPACE, username.as_str().as_bytes()))
    }
}

impl ProductId {
    pub fn for_sku(sku: &Sku) -> Self {
        Self(Uuid::new_v5(&PRODUCT_NAMESPACE, sku.as_str().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_is_the_same_for_every_spelling_of_a_username() {
        let lower = Username::parse("alice").unwrap();
        let upper = Username::parse("ALICE").unwrap();
        assert_eq!(UserId::for_username(&lower), UserId::for_username(&upper));
        assert_ne!(
            UserId::for_username(&lower),
            UserId::for_username(&Username::parse("alicia").unwrap())
        );
    }

    #[test]
    fn product_id_follows_the_sku_and_differs_from_a_user_id_of_the_same_text() {
        let sku = Sku::parse("abc-1").unwrap();
        assert_eq!(
            ProductId::for_sku(&sku),
            ProductId::for_sku(&Sku::parse("ABC-1").unwrap())
        );
        let user = Username::parse("abc-1").unwrap();
        assert_ne!(
            ProductId::for_sku(&sku).as_uuid(),
            UserId::for_username(&user).as_uuid()
        );
    }
}
