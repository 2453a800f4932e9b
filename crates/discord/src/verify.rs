//! Ed25519 verification of `X-Signature-Ed25519` over `X-Signature-Timestamp` + raw body.

use ed25519_compact::{PublicKey, Signature};

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
    key: PublicKey,
}

impl Verifier {
    /// `public_key_hex` as shown in the Developer Portal (64 hex characters).
    pub fn new(public_key_hex: &str) -> Result<Verifier, String> {
        let bytes = hex::decode(public_key_hex.trim())
            .map_err(|_| "Discord public key is not hex".to_owned())?;
        let key = PublicKey::from_slice(&bytes)
            .map_err(|_| "Discord public key is not 32 bytes".to_owned())?;
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
        let signature = hex::decode(signature_hex)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(VerifyError::MalformedSignature)?;
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        self.key
            .verify(&message, &signature)
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
    use ed25519_compact::{KeyPair, Seed};

    const NOW: u64 = 1_764_000_000;

    fn signed(body: &[u8], timestamp: &str) -> (Verifier, String) {
        let pair = KeyPair::from_seed(Seed::new([7; 32]));
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature = hex::encode(pair.sk.sign(&message, None).as_ref());
        (
            Verifier::new(&hex::encode(pair.pk.as_ref())).unwrap(),
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
}
