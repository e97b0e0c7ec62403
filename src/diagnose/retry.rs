//! Whether a failed request may be retried, as the protocol decides it (RFC 9110 §9.2.2,
//! RFC 9112 §9.3.2 and §9.6): a request the server provably never processed may be sent
//! again whatever its method; otherwise only an idempotent one (by method, or made so by an
//! `Idempotency-Key`). Over TLS the method cannot be seen, so the answer is "unknown",
//! never "not idempotent".

use super::finding::RequestRef;

/// What the packets say of whether the server processed the request.
#[derive(Copy, Clone, Debug)]
pub enum Processed {
    /// It did not, and why (a clause that reads after "because").
    No(&'static str),
    /// It did: it began answering.
    Yes,
    /// Nobody can tell from the packets.
    Unknown,
}

impl Processed {
    /// `Some(false)`, `Some(true)` or `None`, for the JSON field.
    pub fn known(self) -> Option<bool> {
        match self {
            Processed::No(_) => Some(false),
            Processed::Yes => Some(true),
            Processed::Unknown => None,
        }
    }
}

/// The sentence on retrying `r`. `failed`: the request got no (complete) response.
pub fn advice(r: &RequestRef, processed: Processed, failed: bool) -> String {
    let m = &r.method;
    if let Processed::No(why) = processed {
        return format!(
            "it was not processed ({why}), so retrying it is safe whatever its method (RFC 9112 §9.3.2)."
        );
    }
    if &**m == "TLS" {
        return "the request inside cannot be seen through TLS, so whether a retry is safe is unknown: retry it only if the application knows it is idempotent.".to_string();
    }
    let applied = match processed {
        Processed::Yes => "it was applied",
        _ if failed => "the packets cannot prove whether it was applied",
        _ => "it may have been applied",
    };
    if r.idempotency_key {
        format!("{m} carries an Idempotency-Key, so it can be retried safely.")
    } else if r.idempotent {
        format!("{m} is idempotent, so a retry is safe.")
    } else {
        format!(
            "{m} is not idempotent and {applied}, so it must not be retried blindly (RFC 9110 §9.2.2)."
        )
    }
}
