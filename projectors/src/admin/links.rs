//! How the projections list leads to a replay (OpenAPI `links`, see
//! [`api_common::openapi_links`]).

use api_common::openapi_links::{Link, Target};

pub const LINKS: &[Link] = &[Link {
    from: "listProjections",
    status: "200",
    name: "replayProjection",
    to: Target::Operation("replayProjection"),
    parameters: &[("name", "$response.body#/projections/0/name")],
    description: "Replay the first projection listed.",
}];
