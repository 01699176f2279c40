//! How the command API's answers feed its next requests and the query
//! API's reads (OpenAPI `links`, see [`api_common::openapi_links`]).

use api_common::openapi_links::{Link, Target};

/// The query API's `GET /orders/{id}` and `GET /products/{id}`, in the
/// committed document beside this one.
const GET_ORDER: Target = Target::Elsewhere("query-api.json#/paths/~1orders~1{id}/get");
const GET_PRODUCT: Target = Target::Elsewhere("query-api.json#/paths/~1products~1{id}/get");

const PRODUCT_ID: &[(&str, &str)] = &[("id", "$response.body#/productId")];
const ORDER_ID: &[(&str, &str)] = &[("id", "$response.body#/orderId")];
/// A read that waits for the answer's position: read-your-writes.
const ORDER_AT_POSITION: &[(&str, &str)] = &[
    ("id", "$response.body#/orderId"),
    ("minPosition", "$response.body#/position"),
];
const PRODUCT_AT_POSITION: &[(&str, &str)] = &[
    ("id", "$response.body#/productId"),
    ("minPosition", "$response.body#/position"),
];

const fn product(name: &'static str, to: &'static str, description: &'static str) -> Link {
    Link {
        from: "createProduct",
        status: "201",
        name,
        to: Target::Operation(to),
        parameters: PRODUCT_ID,
        description,
    }
}

const fn order(
    status: &'static str,
    name: &'static str,
    to: Target,
    parameters: &'static [(&'static str, &'static str)],
) -> Link {
    let description = match to {
        Target::Operation(_) => "Cancel the order just placed.",
        Target::Elsewhere(_) => "Read the order back on the query API once the views show it.",
    };
    Link {
        from: "placeOrder",
        status,
        name,
        to,
        parameters,
        description,
    }
}

pub const LINKS: &[Link] = &[
    product("renameProduct", "renameProduct", "Rename the product just created."),
    product("repriceProduct", "repriceProduct", "Reprice the product just created."),
    product("restockProduct", "restockProduct", "Restock the product just created."),
    Link {
        from: "createProduct",
        status: "201",
        name: "getProduct",
        to: GET_PRODUCT,
        parameters: PRODUCT_AT_POSITION,
        description: "Read the product back on the query API once the views show it.",
    },
    order("201", "cancelOrder", Target::Operation("cancelOrder"), ORDER_ID),
    order("202", "cancelOrder", Target::Operation("cancelOrder"), ORDER_ID),
    order("201", "getOrder", GET_ORDER, ORDER_AT_POSITION),
    order("202", "getOrder", GET_ORDER, ORDER_AT_POSITION),
    Link {
        from: "cancelOrder",
        status: "200",
        name: "getOrder",
        to: GET_ORDER,
        parameters: ORDER_AT_POSITION,
        description: "Read the cancelled order back on the query API once the views show it.",
    },
    Link {
        from: "settlePayment",
        status: "200",
        name: "closeOrder",
        to: Target::Operation("closeOrder"),
        parameters: ORDER_ID,
        description: "Close the order once it is fulfilled.",
    },
    Link {
        from: "settlePayment",
        status: "200",
        name: "getOrder",
        to: GET_ORDER,
        parameters: ORDER_AT_POSITION,
        description: "Read the paid order back on the query API once the views show it.",
    },
    Link {
        from: "closeOrder",
        status: "200",
        name: "getOrder",
        to: GET_ORDER,
        parameters: ORDER_AT_POSITION,
        description: "Read the closed order back on the query API once the views show it.",
    },
];
