//! Liveness and readiness probes, the same on every service; each service
//! says what being ready means for it (its dependencies answer).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use poem::web::Data;
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};

/// How long readiness waits for a service's check before it answers 503:
/// a probe that hangs while a dependency is down is no better than a no,
/// and orchestrators give up on a probe after a second by default
/// (Kubernetes' `timeoutSeconds`).
pub const READINESS_LIMIT: Duration = Duration::from_secs(1);

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
        match tokio::time::timeout(READINESS_LIMIT, check()).await {
            Ok(Ok(())) => Readiness::Ready(PlainText("ready".to_owned())),
            Ok(Err(reason)) => Readiness::NotReady(PlainText(reason)),
            Err(_) => Readiness::NotReady(PlainText(format!(
                "a dependency did not answer within {} ms",
                READINESS_LIMIT.as_millis()
            ))),
        }
    }
}
