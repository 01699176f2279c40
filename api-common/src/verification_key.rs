//! One Ed25519 public key that verifies access tokens, named by its RFC
//! 7638 JWK thumbprint: the command API puts that name in each token's
//! `kid`, and every verifier computes it from the same key, so no key
//! names are configured anywhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

use crate::verifier::VerifyError;

/// The SubjectPublicKeyInfo of an Ed25519 key: this fixed 12-byte prefix
/// (RFC 8410) followed by the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

const KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    raw: Vec<u8>,
    id: String,
}

impl VerificationKey {
    /// From the raw 32-byte Ed25519 public key.
    pub fn from_raw(raw: &[u8]) -> Result<Self, VerifyError> {
        if raw.len() != KEY_BYTES {
            return Err(VerifyError::Key(format!("{} bytes, not {KEY_BYTES}", raw.len())));
        }
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(raw),
        }))
        .map_err(|e| VerifyError::Key(e.to_string()))?;
        let id = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| VerifyError::Key(e.to_string()))?;
        Ok(Self { raw: raw.to_vec(), id })
    }

    /// Every `PUBLIC KEY` block of `text`, in order; at least one.
    pub fn parse_pems(text: &str) -> Result<Vec<Self>, VerifyError> {
        let blocks = pem::parse_many(text).map_err(|e| VerifyError::Key(e.to_string()))?;
        if blocks.is_empty() {
            return Err(VerifyError::Key("no PEM block".to_owned()));
        }
        blocks.iter().map(Self::from_pem_block).collect()
    }

    fn from_pem_block(block: &pem::Pem) -> Result<Self, VerifyError> {
        if block.tag() != "PUBLIC KEY" {
            return Err(VerifyError::Key(format!("found a {:?} block", block.tag())));
        }
        match block.contents().strip_prefix(SPKI_PREFIX.as_slice()) {
            Some(raw) => Self::from_raw(raw),
            None => Err(VerifyError::Key("not an Ed25519 SubjectPublicKeyInfo".to_owned())),
        }
    }

    /// The key's name in tokens and in the JWKS: its RFC 7638 thumbprint.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// As a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for configuring
    /// verifiers.
    pub fn pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem::encode(&pem::Pem::new("PUBLIC KEY", der))
    }

    /// As a JWK (RFC 8037), as the JWKS publishes it.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.raw),
            "kid": self.id,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public key of RFC 8410, section 10.1.
    const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn the_id_is_the_rfc_7638_thumbprint() {
        let key = &VerificationKey::parse_pems(PUBLIC_KEY).unwrap()[0];
        // SHA-256 of {"crv":"Ed25519","kty":"OKP","x":"<x>"}, base64url,
        // computed independently with `printf ... | openssl dgst -sha256 -binary | basenc --base64url`.
        assert_eq!(key.id(), "3YZxBJ12jO3n_mXt_q-j_Z-TFP1vt-NiI3OCf-fEnHQ");
        assert_eq!(
            VerificationKey::parse_pems(&key.pem()).unwrap(),
            std::slice::from_ref(key)
        );
    }

    #[test]
    fn several_keys_parse_in_order_and_other_blocks_are_refused() {
        let other = VerificationKey::from_raw(&[7; 32]).unwrap();
        let keys = VerificationKey::parse_pems(&format!("{PUBLIC_KEY}{}", other.pem())).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1], other);
        let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        assert!(VerificationKey::parse_pems(private).is_err());
        assert!(VerificationKey::parse_pems("").is_err());
        assert!(VerificationKey::parse_pems("not a key").is_err());
    }
}
