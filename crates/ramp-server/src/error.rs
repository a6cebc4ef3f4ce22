//! What can go wrong in the control plane, and the HTTP status each maps to.

use ramp_model::ModelError;

/// A control-plane failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The spec or request is invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// The spec does not parse or validate (400, with every problem).
    #[error(transparent)]
    Spec(#[from] ModelError),
    /// A flag definition the flag engine refuses (400, with every problem located by a JSON
    /// path into the request body).
    #[error("the flag definition is invalid: {}", list_problems(.0))]
    InvalidFlag(Vec<ramp_flags::model::ModelError>),
    /// No such service, revision or flag (404).
    #[error("{0}")]
    NotFound(String),
    /// Another operation is in progress, or the request does not fit the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// State could not be read or written (500).
    #[error("state store: {0}")]
    Store(#[from] ramp_store::StoreError),
    /// The router agent could not be reached or refused a table (503).
    #[error("router agent: {0}")]
    Agent(String),
    /// Something else (500).
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ServerError::Invalid(_) | ServerError::Spec(_) | ServerError::InvalidFlag(_) => 400,
            ServerError::NotFound(_) => 404,
            ServerError::Conflict(_) => 409,
            ServerError::Agent(_) => 503,
            ServerError::Store(_) | ServerError::Internal(_) => 500,
        }
    }
}

fn list_problems(problems: &[ramp_flags::model::ModelError]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
