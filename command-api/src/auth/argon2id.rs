//! argon2id with the OWASP parameters, on working memory a hasher keeps
//! from one hash to the next.
//!
//! `argon2`'s own `hash_password` allocates its 19 MiB of blocks for every
//! hash and frees them after: the kernel maps and zeroes 4,864 fresh pages
//! each time, and unmapping them stops every thread of the process that
//! faults a page meanwhile. A [`Hasher`] allocates once and reuses the
//! blocks while it has work; [`Hasher::release`] gives them back when it
//! has none.
//!
//! "Gives them back" needs care with glibc's allocator: once a 19 MiB
//! block it had mapped is freed, it raises its mapping threshold to that
//! size, serves the next ones from a thread's arena, and keeps them there
//! when freed (19 MiB of an idle command API's 39 were such a block). It
//! never raises the threshold past 32 MiB, so the blocks are allocated
//! with room for [`RESERVED_BYTES`]: mapped on their own (unless an arena
//! happens to hold a free chunk that large, or mapping is turned off with
//! `MALLOC_MMAP_MAX_=0`), unmapped when freed, and only the pages used are
//! resident. Other allocators ignore the extra room.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash as ParsedHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use domain::account::{Password, PasswordHash};

/// OWASP's first recommended argon2id setting: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// The capacity the blocks are allocated with: past glibc's largest
/// mapping threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit), so
/// that freeing them returns them to the system. Address space only: the
/// pages past the blocks used are never touched.
const RESERVED_BYTES: usize = 33 << 20;

/// Hashes and verifies on the current thread, reusing its working memory.
#[derive(Default)]
pub struct Hasher {
    blocks: Vec<Block>,
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashFailed(String);

impl Hasher {
    /// A new PHC string for `password`, with a fresh random salt.
    pub fn hash(&mut self, password: &Password) -> Result<PasswordHash, HashFailed> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(failed)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let output = self.output(&argon2, password.expose().as_bytes(), &salt.as_salt())?;
        let phc = ParsedHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: argon2.params().try_into().map_err(failed)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(PasswordHash::from_phc(phc.to_string()))
    }

    /// Whether `password` is the one `hash` was made from, computed with the
    /// algorithm, version and parameters `hash` names and compared in
    /// constant time. A malformed stored hash verifies nothing.
    pub fn verify(&mut self, password: &str, hash: &PasswordHash) -> bool {
        let Ok(parsed) = ParsedHash::new(hash.as_phc()) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let argon2 = match (
            Algorithm::try_from(parsed.algorithm),
            parsed.version.map_or(Ok(Version::default()), Version::try_from),
            Params::try_from(&parsed),
        ) {
            (Ok(algorithm), Ok(version), Ok(params)) => Argon2::new(algorithm, version, params),
            _ => return false,
        };
        // `Output`'s equality is constant-time.
        self.output(&argon2, password.as_bytes(), &salt)
            .is_ok_and(|computed| computed == expected)
    }

    /// Gives the working memory back; the next hash allocates it again.
    pub fn release(&mut self) {
        self.blocks = Vec::new();
    }

    fn output(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &argon2::password_hash::Salt<'_>,
    ) -> Result<Output, HashFailed> {
        let needed = argon2.params().block_count();
        if self.blocks.len() < needed {
            let reserved = RESERVED_BYTES / std::mem::size_of::<Block>();
            let mut blocks = Vec::with_capacity(needed.max(reserved));
            blocks.resize(needed, Block::default());
            self.blocks = blocks;
        }
        let mut salt_bytes = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_bytes).map_err(failed)?;
        let length = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        Output::init_with(length, |out| {
            argon2
                .hash_password_into_with_memory(password, salt, out, &mut self.blocks)
                .map_err(Into::into)
        })
        .map_err(failed)
    }
}

fn failed(error: impl std::fmt::Display) -> HashFailed {
    HashFailed(error.to_string())
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn password(text: &str) -> Password {
        Password::parse(text).unwrap()
    }

    #[test]
    fn hashes_with_the_owasp_parameters_and_verifies_the_right_password_only() {
        let mut hasher = Hasher::default();
        let hash = hasher.hash(&password("correct horse")).unwrap();
        assert!(
            hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_phc()
        );
        assert!(hasher.verify("correct horse", &hash));
        assert!(!hasher.verify("wrong horse", &hash));
        assert!(!hasher.verify("correct horse ", &hash));
    }

    /// The hashes stay what `argon2`'s own hasher makes and checks, both
    /// ways: stored hashes from before keep verifying.
    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        let argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2.hash_password(b"correct horse", &salt).unwrap().to_string();
        let mut hasher = Hasher::default();
        assert!(hasher.verify("correct horse", &PasswordHash::from_phc(theirs)));
        let ours = hasher.hash(&password("correct horse")).unwrap();
        let parsed = ParsedHash::new(ours.as_phc()).unwrap();
        assert!(argon2.verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2.verify_password(b"wrong horse", &parsed).is_err());
    }

    /// A hash made with other parameters (an older setting) is checked with
    /// its own: smaller ones in part of the memory held, larger ones in
    /// more, and the usual ones again in part of that.
    #[test]
    fn verifies_a_hash_made_with_other_parameters() {
        let mut hasher = Hasher::default();
        let usual = hasher.hash(&password("the usual one")).unwrap();
        for (memory, iterations) in [(8_192, 3), (32_768, 1)] {
            let argon2 = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(memory, iterations, 1, None).unwrap(),
            );
            let salt = SaltString::generate(&mut OsRng);
            let phc = argon2.hash_password(b"older", &salt).unwrap().to_string();
            let hash = PasswordHash::from_phc(phc);
            assert!(hasher.verify("older", &hash), "m={memory}");
            assert!(!hasher.verify("newer", &hash), "m={memory}");
        }
        assert!(hasher.verify("the usual one", &usual));
        assert!(!hasher.verify("an unusual one", &usual));
    }

    #[test]
    fn keeps_its_memory_until_released() {
        let mut hasher = Hasher::default();
        assert!(hasher.blocks.is_empty());
        let hash = hasher.hash(&password("correct horse")).unwrap();
        assert!(!hasher.blocks.is_empty());
        assert!(
            hasher.blocks.capacity() * std::mem::size_of::<Block>() >= RESERVED_BYTES,
            "allocated past glibc's largest mapping threshold, so that freeing it unmaps it"
        );
        hasher.release();
        assert!(hasher.blocks.is_empty());
        assert!(hasher.verify("correct horse", &hash), "allocates again after a release");
    }

    #[test]
    fn a_malformed_stored_hash_verifies_nothing() {
        let mut hasher = Hasher::default();
        for phc in [
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$md5$abc$def",
        ] {
            assert!(!hasher.verify("x", &PasswordHash::from_phc(phc.to_owned())), "{phc}");
        }
    }
}
