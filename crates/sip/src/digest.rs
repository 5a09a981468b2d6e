//! SIP secrets and their digest hashes (RFC 2617 HA1; HA1b is Kamailio's variant for clients
//! that send `user@domain` as the username).

use md5::{Digest, Md5};
use rand::Rng;

/// Letters and digits only: every softphone's settings form accepts them.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Characters of a secret: 24 of 57 symbols are 140 bits (the brief asks at least 128).
const SECRET_LEN: usize = 24;

/// A new random SIP secret.
pub fn new_secret() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// `MD5(user:realm:secret)`.
pub fn ha1(user: &str, realm: &str, secret: &str) -> String {
    md5_hex(&format!("{user}:{realm}:{secret}"))
}

/// `MD5(user@realm:realm:secret)`.
pub fn ha1b(user: &str, realm: &str, secret: &str) -> String {
    md5_hex(&format!("{user}@{realm}:{realm}:{secret}"))
}

/// The digest `response` a phone sends for `qop=auth` (RFC 2617 §3.2.2.1): what tests of
/// attacks compute with a wrong secret.
pub fn response(ha1: &str, nonce: &str, cnonce: &str, method: &str, uri: &str) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_follow_rfc_2617() {
        // RFC 2617 §3.5 example user, realm and password.
        assert_eq!(
            ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
        assert_eq!(
            ha1b("101", "pbx.example.com", "s"),
            md5_hex("101@pbx.example.com:pbx.example.com:s")
        );
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, b);
        let bits = SECRET_LEN as f64 * (ALPHABET.len() as f64).log2();
        assert!(bits >= 128.0, "{bits} bits");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
