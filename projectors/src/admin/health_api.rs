use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::Projectors;

#[derive(Tags)]
enum Tag {
    /// Liveness and readiness probes.
    Health,
}

#[derive(ApiResponse)]
enum Readiness {
    /// The event store and the views database answer.
    #[oai(status = 200)]
    Ready(PlainText<String>),
    /// The event store or the views database does not answer.
    #[oai(status = 503)]
    NotReady(PlainText<String>),
}

pub struct HealthApi {
    pub projectors: Projectors,
}

#[OpenApi]
impl HealthApi {
    /// The process is up.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Health")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The process can project: the event store and the views database answer.
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Health")]
    async fn ready(&self) -> Readiness {
        if let Err(error) = self.projectors.store.head().await {
            return Readiness::NotReady(PlainText(format!("event store unavailable: {error}")));
        }
        match self.projectors.db.ping().await {
            Ok(()) => Readiness::Ready(PlainText("ready".to_owned())),
            Err(error) => Readiness::NotReady(PlainText(format!("views database unavailable: {error}"))),
        }
    }
}
