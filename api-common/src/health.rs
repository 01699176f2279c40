//! Liveness and readiness probes, the same on every service; each service
//! says what being ready means for it (its dependencies answer).

use std::sync::Arc;

use futures::future::BoxFuture;
use poem::web::Data;
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};

/// Answers `Ok` when the service can do its work, else why it cannot.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Tags)]
enum Tag {
    /// Liveness and readiness probes.
    Health,
}

#[derive(ApiResponse)]
enum Readiness {
    /// Every dependency answers.
    #[oai(status = 200)]
    Ready(PlainText<String>),
    /// A dependency does not answer; the body says which.
    #[oai(status = 503)]
    NotReady(PlainText<String>),
}

/// The probes. What "ready" means comes from the request's data (the
/// [`ReadinessCheck`] that [`crate::routes::routes`] adds), so the API itself
/// holds nothing and its spec can be printed with no dependency at hand.
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// The process is up.
    #[oai(path = "/health/live", method = "get", operation_id = "live", tag = "Tag::Health")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The process can do its work: the store or database it depends on
    /// answers.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready", tag = "Tag::Health")]
    async fn ready(&self, Data(check): Data<&ReadinessCheck>) -> Readiness {
        match check().await {
            Ok(()) => Readiness::Ready(PlainText("ready".to_owned())),
            Err(reason) => Readiness::NotReady(PlainText(reason)),
        }
    }
}
