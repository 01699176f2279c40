use std::sync::Arc;

use event_store::EventStore;
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};

#[derive(Tags)]
enum Tag {
    /// Liveness and readiness probes.
    Health,
}

#[derive(ApiResponse)]
enum Readiness {
    /// The event store answers.
    #[oai(status = 200)]
    Ready(PlainText<String>),
    /// The event store does not answer.
    #[oai(status = 503)]
    NotReady(PlainText<String>),
}

pub struct HealthApi {
    pub store: Arc<dyn EventStore>,
}

#[OpenApi]
impl HealthApi {
    /// The process is up.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Health")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The process can serve commands: its event store answers.
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Health")]
    async fn ready(&self) -> Readiness {
        match self.store.head().await {
            Ok(_) => Readiness::Ready(PlainText("ready".to_owned())),
            Err(error) => Readiness::NotReady(PlainText(format!("event store unavailable: {error}"))),
        }
    }
}
