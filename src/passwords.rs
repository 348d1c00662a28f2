//! Local password hashes: argon2id PHC strings.
//!
//! Passwords arrive as bytes (PAM hands over whatever the user typed, not necessarily UTF-8)
//! and live in [`Secret`]s, which are wiped when dropped.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::config::PasswordConfig;

/// A password in memory: zeroed on drop.
pub type Secret = Zeroizing<Vec<u8>>;

/// The longest password accepted; argon2 copes with more, but nothing legitimate needs it
/// and it bounds the work one login can cause.
pub const MAX_PASSWORD_LEN: usize = 4096;

#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("argon2 parameters are invalid: {0}")]
    Params(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("the stored password hash is not an argon2id PHC string; set a new password with `dircache-sync user passwd`")]
    UnsupportedHash,
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("the password is empty")]
    Empty,
    #[error("the password contains a NUL byte, which no login can type (PAM passes passwords as C strings)")]
    Nul,
}

fn hasher(config: &PasswordConfig) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .map_err(|e| PasswordError::Params(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a new password before it is hashed.
pub fn check_new_password(password: &[u8]) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    if password.contains(&0) {
        return Err(PasswordError::Nul);
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt into a PHC string.
pub fn hash_password(password: &[u8], config: &PasswordConfig) -> Result<String, PasswordError> {
    check_new_password(password)?;
    let hash =
        hasher(config)?.hash_password(password).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches `phc`. The comparison inside argon2 is constant-time; only
/// argon2id hashes are accepted, so a planted weaker hash cannot be used.
pub fn verify_password(password: &[u8], phc: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::UnsupportedHash)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(PasswordError::UnsupportedHash);
    }
    // The parameters come from the PHC string, not from the instance.
    Ok(Argon2::default().verify_password(password, &parsed).is_ok())
}

/// Spends the time a real verification would, so that an unknown user or a user without
/// a password cannot be told apart from a wrong password by timing.
pub fn spend_verification_time(password: &[u8], config: &PasswordConfig) {
    let bounded = &password[..password.len().min(MAX_PASSWORD_LEN)];
    if let Ok(hasher) = hasher(config) {
        let _ = hasher.hash_password_with_salt(bounded, b"dircache-timing-salt");
    }
}

#[cfg(test)]
pub(crate) fn fast_test_params() -> PasswordConfig {
    PasswordConfig { argon2_memory_kib: 8192, argon2_iterations: 1, argon2_parallelism: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let config = fast_test_params();
        let phc = hash_password(b"correct horse", &config).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{phc}");
        assert!(verify_password(b"correct horse", &phc).unwrap());
        assert!(!verify_password(b"correct horsf", &phc).unwrap());
        assert!(!verify_password(b"", &phc).unwrap());
    }

    #[test]
    fn odd_bytes_round_trip() {
        let config = fast_test_params();
        let odd = "<&>\"' ]]> ünïcødé 🔑".repeat(40);
        let phc = hash_password(odd.as_bytes(), &config).unwrap();
        assert!(verify_password(odd.as_bytes(), &phc).unwrap());
        let not_utf8 = [0xff, 0xfe, b'a'];
        let phc = hash_password(&not_utf8, &config).unwrap();
        assert!(verify_password(&not_utf8, &phc).unwrap());
    }

    #[test]
    fn salts_differ() {
        let config = fast_test_params();
        assert_ne!(hash_password(b"pw", &config).unwrap(), hash_password(b"pw", &config).unwrap());
    }

    #[test]
    fn refuses_other_algorithms_and_garbage() {
        let config = fast_test_params();
        let argon2i = hash_password(b"pw", &config).unwrap().replace("argon2id", "argon2i");
        assert!(matches!(verify_password(b"pw", &argon2i), Err(PasswordError::UnsupportedHash)));
        assert!(matches!(verify_password(b"pw", "x"), Err(PasswordError::UnsupportedHash)));
        assert!(matches!(
            verify_password(b"pw", "$1$salt$md5"),
            Err(PasswordError::UnsupportedHash)
        ));
    }

    #[test]
    fn length_limits() {
        let config = fast_test_params();
        assert!(matches!(hash_password(b"", &config), Err(PasswordError::Empty)));
        let long = vec![b'a'; MAX_PASSWORD_LEN + 1];
        assert!(matches!(hash_password(&long, &config), Err(PasswordError::TooLong)));
        // Stored, it would lock the user out: PAM cuts a password at its first NUL.
        assert!(matches!(hash_password(b"ab\0cd", &config), Err(PasswordError::Nul)));
    }
}
