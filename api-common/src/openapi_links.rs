//! OpenAPI `links`: which value of one operation's answer feeds which
//! parameter of the next, so that Swagger UI shows the flow and stateful
//! fuzzers (Schemathesis) walk it. poem-openapi cannot declare links, so
//! each service lists its own and they are written into the generated
//! document, both the one served at `/openapi.json` and the committed one.

use serde_json::{Map, Value, json};

/// One link: a `status` answer of operation `from` feeds `to`'s parameters.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// The operationId whose answer holds the value.
    pub from: &'static str,
    /// The status of that answer, as documented (`"201"`).
    pub status: &'static str,
    /// The link's name, unique within that answer.
    pub name: &'static str,
    /// Where it leads.
    pub to: Target,
    /// Each parameter of the target and the runtime expression that fills
    /// it, such as `("id", "$response.body#/orderId")`.
    pub parameters: &'static [(&'static str, &'static str)],
    pub description: &'static str,
}

/// The operation a link leads to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// An operation of the same document, by operationId.
    Operation(&'static str),
    /// An operation of another service's document, by `operationRef`
    /// (relative to this document: the committed documents sit side by
    /// side under `openapi/`).
    Elsewhere(&'static str),
}

/// `spec` with `links` written into its answers.
///
/// # Panics
///
/// When a link names an operation, a status or a target parameter the
/// document does not have: a list of links that drifted from its API is a
/// bug the drift check must catch, not a document to publish.
pub fn with_links(spec: &str, links: &[Link]) -> String {
    let mut document: Value = serde_json::from_str(spec).expect("poem-openapi writes JSON");
    for link in links {
        if let Target::Operation(to) = link.to {
            let target = operation(&document, to).unwrap_or_else(|| panic!("no operation {to}"));
            for (parameter, _) in link.parameters {
                let known = target["parameters"].as_array().into_iter().flatten();
                assert!(
                    known.into_iter().any(|p| p["name"] == *parameter),
                    "{to} has no parameter {parameter}"
                );
            }
        }
        let answers = operation_mut(&mut document, link.from)
            .unwrap_or_else(|| panic!("no operation {}", link.from))
            .pointer_mut(&format!("/responses/{}", link.status))
            .unwrap_or_else(|| panic!("{} documents no {}", link.from, link.status));
        let links = answers
            .as_object_mut()
            .expect("an answer is an object")
            .entry("links")
            .or_insert_with(|| Value::Object(Map::new()));
        links[link.name] = link_object(link);
    }
    serde_json::to_string_pretty(&document).expect("a JSON value prints")
}

fn link_object(link: &Link) -> Value {
    let parameters: Map<String, Value> = link
        .parameters
        .iter()
        .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
        .collect();
    let mut object = json!({ "parameters": parameters, "description": link.description });
    match link.to {
        Target::Operation(id) => object["operationId"] = json!(id),
        Target::Elsewhere(reference) => object["operationRef"] = json!(reference),
    }
    object
}

/// Every operation's path and method.
fn operations(document: &Value) -> impl Iterator<Item = (&str, &str)> {
    let paths = document["paths"].as_object().into_iter().flatten();
    paths.flat_map(|(path, methods)| {
        let methods = methods.as_object().into_iter().flatten();
        methods.map(move |(method, _)| (path.as_str(), method.as_str()))
    })
}

fn operation<'a>(document: &'a Value, id: &str) -> Option<&'a Value> {
    operations(document)
        .map(|(path, method)| &document["paths"][path][method])
        .find(|operation| operation["operationId"] == id)
}

fn operation_mut<'a>(document: &'a mut Value, id: &str) -> Option<&'a mut Value> {
    let (path, method) = operations(document)
        .find(|(path, method)| document["paths"][*path][*method]["operationId"] == id)
        .map(|(path, method)| (path.to_owned(), method.to_owned()))?;
    document["paths"].get_mut(&path)?.get_mut(&method)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"paths": {
        "/orders": {"post": {"operationId": "placeOrder", "responses": {"201": {"description": "placed"}}}},
        "/orders/{id}/cancel": {"post": {"operationId": "cancelOrder",
            "parameters": [{"name": "id", "in": "path"}], "responses": {"200": {"description": "ok"}}}}
    }}"#;

    const CANCEL: Link = Link {
        from: "placeOrder",
        status: "201",
        name: "cancel",
        to: Target::Operation("cancelOrder"),
        parameters: &[("id", "$response.body#/orderId")],
        description: "Cancel the order just placed.",
    };

    #[test]
    fn a_link_is_written_into_its_answer() {
        let document: Value = serde_json::from_str(&with_links(SPEC, &[CANCEL])).unwrap();
        let link = &document["paths"]["/orders"]["post"]["responses"]["201"]["links"]["cancel"];
        assert_eq!(link["operationId"], "cancelOrder");
        assert_eq!(link["parameters"]["id"], "$response.body#/orderId");
        assert_eq!(link["description"], "Cancel the order just placed.");
    }

    #[test]
    fn a_link_elsewhere_is_an_operation_ref() {
        let elsewhere = Link {
            to: Target::Elsewhere("query-api.json#/paths/~1orders~1{id}/get"),
            ..CANCEL
        };
        let document: Value = serde_json::from_str(&with_links(SPEC, &[elsewhere])).unwrap();
        let link = &document["paths"]["/orders"]["post"]["responses"]["201"]["links"]["cancel"];
        assert_eq!(link["operationRef"], "query-api.json#/paths/~1orders~1{id}/get");
        assert!(link.get("operationId").is_none());
    }

    #[test]
    #[should_panic(expected = "documents no 202")]
    fn a_link_from_an_undocumented_status_is_a_bug() {
        with_links(
            SPEC,
            &[Link {
                status: "202",
                ..CANCEL
            }],
        );
    }

    #[test]
    #[should_panic(expected = "cancelOrder has no parameter orderId")]
    fn a_link_to_an_unknown_parameter_is_a_bug() {
        with_links(
            SPEC,
            &[Link {
                parameters: &[("orderId", "$response.body#/orderId")],
                ..CANCEL
            }],
        );
    }

    #[test]
    #[should_panic(expected = "no operation placeOrders")]
    fn a_link_from_an_unknown_operation_is_a_bug() {
        with_links(
            SPEC,
            &[Link {
                from: "placeOrders",
                ..CANCEL
            }],
        );
    }
}
