//! Discord without I/O: verifying interaction requests, reading slash commands, writing the
//! answers, and building the REST requests that report back.

pub mod access;
pub mod embed;
pub mod interaction;
pub mod rest;
pub mod verify;

pub use access::Access;
pub use embed::{Embed, Field};
pub use interaction::{parse, Incoming, ParseError, Question, Reply};
pub use verify::{Verifier, VerifyError};
