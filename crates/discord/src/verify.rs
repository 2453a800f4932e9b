//! Ed25519 verification of `X-Signature-Ed25519` over `X-Signature-Timestamp` + raw body.
//!
//! ed25519-dalek rather than a smaller crate: the verify runs in every request's fresh Wasm
//! instance, and curve25519-dalek's 32-bit field arithmetic (chosen for wasm32) is about twice as
//! fast there as 64-bit limbs whose 128-bit products Wasm has to emulate.

use ed25519_dalek::{Signature, VerifyingKey};

/// Requests older (or newer) than this are refused as replays.
pub const MAX_CLOCK_SKEW_S: u64 = 300;

/// Why a request was refused. Every variant means 401 and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature or timestamp header missing")]
    Missing,
    #[error("signature is not 64 bytes of hex")]
    MalformedSignature,
    #[error("timestamp is not a Unix time in seconds")]
    MalformedTimestamp,
    #[error("timestamp is {skew_s} s away from now (a replay?)")]
    Stale { skew_s: u64 },
    #[error("signature does not match")]
    Mismatch,
}

/// The application's public key, parsed once.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// `public_key_hex` as shown in the Developer Portal (64 hex characters).
    pub fn new(public_key_hex: &str) -> Result<Verifier, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(public_key_hex.trim(), &mut bytes)
            .map_err(|_| "Discord public key is not 32 bytes of hex".to_owned())?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "Discord public key is not a valid Ed25519 key".to_owned())?;
        Ok(Verifier { key })
    }

    /// Checks a request: the signature over `timestamp + body`, then the timestamp's age.
    pub fn verify(
        &self,
        signature_hex: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now_unix_s: u64,
    ) -> Result<(), VerifyError> {
        let (Some(signature_hex), Some(timestamp)) = (signature_hex, timestamp) else {
            return Err(VerifyError::Missing);
        };
        let mut signature = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut signature)
            .map_err(|_| VerifyError::MalformedSignature)?;
        let signature = Signature::from_bytes(&signature);
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        // Strict, like libsodium's verify: no small-order key or R, no non-canonical S.
        self.key
            .verify_strict(&message, &signature)
            .map_err(|_| VerifyError::Mismatch)?;
        let sent: u64 = timestamp
            .parse()
            .map_err(|_| VerifyError::MalformedTimestamp)?;
        let skew_s = sent.abs_diff(now_unix_s);
        if skew_s > MAX_CLOCK_SKEW_S {
            return Err(VerifyError::Stale { skew_s });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: u64 = 1_764_000_000;

    fn signed(body: &[u8], timestamp: &str) -> (Verifier, String) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature = hex::encode(key.sign(&message).to_bytes());
        (
            Verifier::new(&hex::encode(key.verifying_key().as_bytes())).unwrap(),
            signature,
        )
    }

    #[test]
    fn accepts_a_fresh_signed_request() {
        let (verifier, sig) = signed(b"{\"type\":1}", "1764000000");
        assert_eq!(
            verifier.verify(Some(&sig), Some("1764000000"), b"{\"type\":1}", NOW),
            Ok(())
        );
    }

    #[test]
    fn refuses_a_changed_body_or_timestamp() {
        let (verifier, sig) = signed(b"{\"type\":1}", "1764000000");
        let body = verifier.verify(Some(&sig), Some("1764000000"), b"{\"type\":2}", NOW);
        assert_eq!(body, Err(VerifyError::Mismatch));
        let stamp = verifier.verify(Some(&sig), Some("1764000001"), b"{\"type\":1}", NOW);
        assert_eq!(stamp, Err(VerifyError::Mismatch));
    }

    #[test]
    fn refuses_replays_of_old_requests() {
        let (verifier, sig) = signed(b"{}", "1763990000");
        assert_eq!(
            verifier.verify(Some(&sig), Some("1763990000"), b"{}", NOW),
            Err(VerifyError::Stale { skew_s: 10_000 })
        );
    }

    #[test]
    fn refuses_missing_and_malformed_headers() {
        let (verifier, sig) = signed(b"{}", "1764000000");
        assert_eq!(
            verifier.verify(None, Some("1764000000"), b"{}", NOW),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verifier.verify(Some("zz"), Some("1764000000"), b"{}", NOW),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            verifier.verify(Some(&sig[..64]), Some("1764000000"), b"{}", NOW),
            Err(VerifyError::MalformedSignature)
        );
        assert!(Verifier::new("abcd").is_err());
    }

    #[test]
    fn refuses_a_small_order_key() {
        // With the identity as key, R = identity and S = 0 verify for any message unless the
        // key's order is checked.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let verifier = Verifier::new(&hex::encode(identity)).unwrap();
        let mut forged = [0u8; 64];
        forged[0] = 1;
        let signature = hex::encode(forged);
        assert_eq!(
            verifier.verify(Some(&signature), Some("1764000000"), b"{}", NOW),
            Err(VerifyError::Mismatch)
        );
    }
}
