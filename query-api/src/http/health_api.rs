use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use sea_orm::DatabaseConnection;

#[derive(Tags)]
enum Tag {
    /// Liveness and readiness probes.
    Health,
}

#[derive(ApiResponse)]
enum Readiness {
    /// The views database answers.
    #[oai(status = 200)]
    Ready(PlainText<String>),
    /// The views database does not answer.
    #[oai(status = 503)]
    NotReady(PlainText<String>),
}

pub struct HealthApi {
    pub db: DatabaseConnection,
}

#[OpenApi]
impl HealthApi {
    /// The process is up.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Health")]
    async fn live(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The process can serve reads: its views database answers.
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Health")]
    async fn ready(&self) -> Readiness {
        match self.db.ping().await {
            Ok(()) => Readiness::Ready(PlainText("ready".to_owned())),
            Err(error) => Readiness::NotReady(PlainText(format!("views database unavailable: {error}"))),
        }
    }
}
