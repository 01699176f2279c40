//! docker-compose.yml read as `docker compose up` reads it, as far as
//! tests/compose_as_processes.rs needs: the services that run a Shop image
//! (their Dockerfile target, command, environment interpolated from a
//! `.env`, secrets, replicas and the one-shot services they wait for), the
//! other services' names, and the secrets' names. Services behind a
//! profile are left out, as `up` leaves them out.

pub mod dockerfile;
mod interpolate;

use yaml_rust2::{Yaml, YamlLoader};

/// A service that runs one of the Dockerfile's targets.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    /// The Dockerfile target it builds (`build.target`).
    pub target: String,
    /// Its `command`: the arguments after the image's entrypoint.
    pub command: Vec<String>,
    /// Its `environment`, interpolated, in the file's order.
    pub environment: Vec<(String, String)>,
    /// The secrets it mounts at `/run/secrets/<name>`.
    pub secrets: Vec<String>,
    /// `deploy.replicas` (1 when absent).
    pub replicas: usize,
    /// The services it starts after, once they have exited successfully
    /// (`depends_on: {name: {condition: service_completed_successfully}}`).
    pub after_completion_of: Vec<String>,
}

/// What the file declares.
#[derive(Debug)]
pub struct Compose {
    /// The services running a Shop image, in the file's order.
    pub shop: Vec<Service>,
    /// Every service's name, profiles included (the host names on the
    /// internal network).
    pub hosts: Vec<String>,
    /// The top-level `secrets`' names.
    pub secrets: Vec<String>,
}

/// Reads `text`, interpolating `${...}` from `dotenv` as compose does
/// from `.env`.
pub fn read(text: &str, dotenv: &[(&str, &str)]) -> Compose {
    let documents = YamlLoader::load_from_str(text).expect("docker-compose.yml is YAML");
    let file = &documents[0];
    let services = file["services"].as_hash().expect("services");
    let hosts = services.keys().map(text_of).collect();
    let shop = services
        .iter()
        .filter(|(_, service)| service["profiles"].is_badvalue())
        .filter(|(_, service)| !service["build"]["target"].is_badvalue())
        .map(|(name, service)| shop_service(&text_of(name), service, dotenv))
        .collect();
    let secrets = file["secrets"]
        .as_hash()
        .map(|secrets| secrets.keys().map(text_of).collect())
        .unwrap_or_default();
    Compose { shop, hosts, secrets }
}

fn shop_service(name: &str, service: &Yaml, dotenv: &[(&str, &str)]) -> Service {
    let environment = match &service["environment"] {
        Yaml::Hash(pairs) => pairs
            .iter()
            .map(|(key, value)| (text_of(key), interpolate::expand(&text_of(value), dotenv)))
            .collect(),
        Yaml::BadValue => Vec::new(),
        other => panic!("{name}: write environment as a map, not {other:?}"),
    };
    Service {
        name: name.to_owned(),
        target: text_of(&service["build"]["target"]),
        command: list(&service["command"]),
        environment,
        secrets: list(&service["secrets"]),
        replicas: service["deploy"]["replicas"]
            .as_i64()
            .map_or(1, |replicas| usize::try_from(replicas).expect("replicas >= 0")),
        after_completion_of: completions(&service["depends_on"]),
    }
}

fn completions(depends_on: &Yaml) -> Vec<String> {
    depends_on
        .as_hash()
        .into_iter()
        .flatten()
        .filter(|(_, how)| how["condition"].as_str() == Some("service_completed_successfully"))
        .map(|(name, _)| text_of(name))
        .collect()
}

fn list(value: &Yaml) -> Vec<String> {
    value.as_vec().into_iter().flatten().map(text_of).collect()
}

/// A scalar as compose passes it on: as written.
fn text_of(value: &Yaml) -> String {
    match value {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}
