//! Access tokens made by the tests: the claims of a token the server issued,
//! signed again with exactly one thing wrong (expired, a foreign Ed25519
//! key, HS256 keyed with the public key or a guessable secret, no
//! signature at all), beside the same claims signed right, the control that
//! shows the one wrong thing is what gets a token refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use command_api::auth::tokens::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The key the server under test signs with, so the tests can sign too.
pub const SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIErPwvNfy9dvwHS0fg7pTf0hIJvFbpiq2wDnWeJiOLm7
-----END PRIVATE KEY-----
";

/// A valid Ed25519 key the server knows nothing of.
pub const FOREIGN_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIDrTx4I+iV8fysFpbp2IVpd8QUD7RYm6N/E3z5a7VB6O
-----END PRIVATE KEY-----
";

pub fn server_key() -> SigningKey {
    SigningKey::from_pem(SERVER_KEY_PEM).unwrap()
}

/// A token that must be refused, and what is wrong with it.
pub struct Forged {
    pub what: &'static str,
    pub token: String,
}

/// What the tests make from one token the server issued.
pub struct Minted {
    /// The same claims, freshly dated, signed with the server's key: accepted.
    pub control: String,
    pub forged: Vec<Forged>,
}

/// Re-signs the claims of `issued` (a token from `POST /auth/login` of a
/// server signing with [`SERVER_KEY_PEM`]).
pub fn mint(issued: &str) -> Minted {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(issued).unwrap();
    let key_id = jsonwebtoken::decode_header(issued).unwrap().kid;
    let now = chrono::Utc::now().timestamp();
    let dated = |iat: i64, exp: i64| {
        let mut claims = claims.clone();
        claims["iat"] = json!(iat);
        claims["exp"] = json!(exp);
        claims
    };
    let fresh = dated(now, now + 3600);
    let eddsa = |claims: &Value, pem: &str| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid.clone_from(&key_id);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()).unwrap()
    };
    let hs256 = |secret: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid.clone_from(&key_id);
        jsonwebtoken::encode(&header, &fresh, &EncodingKey::from_secret(secret)).unwrap()
    };
    let public_pem = server_key().public_key_pem();
    let raw_public_key = server_key().public_key().raw().to_vec();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(fresh.to_string()),
    );
    Minted {
        control: eddsa(&fresh, SERVER_KEY_PEM),
        forged: vec![
            Forged {
                what: "expired two minutes ago, past the 30 s leeway",
                token: eddsa(&dated(now - 3600, now - 120), SERVER_KEY_PEM),
            },
            Forged {
                what: "signed with a foreign Ed25519 key",
                token: eddsa(&fresh, FOREIGN_KEY_PEM),
            },
            Forged {
                what: "HS256 keyed with the public key's PEM",
                token: hs256(public_pem.as_bytes()),
            },
            Forged {
                what: "HS256 keyed with the raw public key",
                token: hs256(&raw_public_key),
            },
            Forged {
                what: "HS256 keyed with a guessable secret",
                token: hs256(b"secret"),
            },
            Forged {
                what: "alg none, unsigned",
                token: unsigned,
            },
        ],
    }
}

/// Whether `response` is the refusal a bad token must get: 401,
/// problem+json, `WWW-Authenticate: Bearer`; `Ok` has the problem, `Err`
/// says what differs.
pub async fn refused(response: reqwest::Response) -> Result<Value, String> {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    let (content_type, challenge) = (header("content-type"), header("www-authenticate"));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == reqwest::StatusCode::UNAUTHORIZED
        && content_type.starts_with("application/problem+json")
        && challenge == "Bearer"
        && body["status"] == 401
    {
        Ok(body)
    } else {
        Err(format!(
            "got {status}, content-type {content_type:?}, WWW-Authenticate {challenge:?}: {body}"
        ))
    }
}

/// The claims of `issued` (a token of a server signing with
/// [`SERVER_KEY_PEM`]), issued now to live `lifetime_seconds`, signed with
/// the server's key under header `kid`: with the right kid and lifetime the
/// control, otherwise a token that names no key or lives too long.
pub fn resigned(issued: &str, kid: Option<&str>, lifetime_seconds: i64) -> String {
    let mut claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(issued).unwrap();
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + lifetime_seconds);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_pem(SERVER_KEY_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The `kid` in `token`'s header.
pub fn key_id(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).unwrap().kid
}
