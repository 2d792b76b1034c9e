//! Passwords: hashed with Argon2id (the `argon2` crate's defaults, OWASP's
//! recommended memory-hard parameters), checked in constant time by the
//! same crate, and held to a policy when set.
//!
//! Never: a password in a log, an error or a database column other than
//! its PHC hash string.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

/// Shortest password accepted.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (bounds the hashing work an attacker can ask).
pub const MAX_LEN: usize = 128;

/// Passwords too common to accept whatever their length.
const COMMON: [&str; 8] = [
    "password1234",
    "passwordpassword",
    "123456789012",
    "qwertyuiopas",
    "iloveyou1234",
    "sportello123",
    "sportello2026",
    "administrator",
];

/// Why a password is refused, in words for the person choosing it.
pub fn policy(password: &str, login: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err("must be at least 12 characters");
    }
    if chars > MAX_LEN {
        return Err("must be at most 128 characters");
    }
    let lower = password.to_lowercase();
    if !login.is_empty() && lower.contains(&login.to_lowercase()) {
        return Err("must not contain the login");
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err("must use at least 5 different characters");
    }
    if COMMON.iter().any(|c| lower.starts_with(c)) {
        return Err("is too common");
    }
    Ok(())
}

/// The PHC string of a password's Argon2id hash, with a fresh salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// [`hash`] on the blocking pool: Argon2 takes tens of milliseconds of
/// CPU and memory, which must not stall the async workers.
pub async fn hash_blocking(password: String) -> Result<String, crate::error::ApiError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| crate::error::ApiError::Internal(e.into()))
}

/// Whether `password` matches the stored hash. With no hash (an unknown
/// login, an account without a password) a dummy hash is checked anyway,
/// so the answer takes as long and tells nothing.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password anyone has"));
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert_eq!(policy("short", "x"), Err("must be at least 12 characters"));
        assert_eq!(
            policy(&"ab1!".repeat(40), "x"),
            Err("must be at most 128 characters")
        );
        assert_eq!(
            policy("mario.rossi-2026!", "Mario.Rossi"),
            Err("must not contain the login")
        );
        assert_eq!(
            policy("aaaaaaaaaaaabbbb", "x"),
            Err("must use at least 5 different characters")
        );
        assert_eq!(policy("Password1234!", "x"), Err("is too common"));
        assert_eq!(policy("correct horse battery", "mario"), Ok(()));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterY", Some(&h)));
        assert!(!verify("correct horse battery", None));
        assert!(!verify("x", Some("not a hash")));
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash("correct horse battery"));
    }
}
