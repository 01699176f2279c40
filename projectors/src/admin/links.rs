//! How the projections list leads to a replay, a rebuild and a
//! verification (OpenAPI `links`, see [`api_common::openapi_links`]).

use api_common::openapi_links::{Link, Target};

const FIRST_PROJECTION: &[(&str, &str)] = &[("name", "$response.body#/projections/0/name")];

pub const LINKS: &[Link] = &[
    Link {
        from: "listProjections",
        status: "200",
        name: "replayProjection",
        to: Target::Operation("replayProjection"),
        parameters: FIRST_PROJECTION,
        description: "Replay the first projection listed.",
    },
    Link {
        from: "listProjections",
        status: "200",
        name: "rebuildProjection",
        to: Target::Operation("rebuildProjection"),
        parameters: FIRST_PROJECTION,
        description: "Rebuild the first projection listed as a next generation.",
    },
    Link {
        from: "listProjections",
        status: "200",
        name: "verifyProjection",
        to: Target::Operation("verifyProjection"),
        parameters: FIRST_PROJECTION,
        description: "Verify the first projection listed against what the log says.",
    },
];
