//! The one error vocabulary shared by the core and every binding (DESIGN.md §2.9).
//!
//! Every error that crosses a language boundary is `{kind, message}`. A host callback's own
//! error can ride along as an opaque [`Error::payload`], so a binding can hand the caller back
//! the very exception object its callback raised.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The kind of a Baton error; the string forms are the canonical wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    InvalidState,
    NotFound,
    AlreadyExists,
    GuardrailRejected,
    CallbackFailed,
    Upstream,
    Timeout,
    AlreadyShutdown,
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidState,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::GuardrailRejected,
        ErrorKind::CallbackFailed,
        ErrorKind::Upstream,
        ErrorKind::Timeout,
        ErrorKind::AlreadyShutdown,
        ErrorKind::Internal,
    ];

    /// The canonical snake_case name (`invalid_argument`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::GuardrailRejected => "guardrail_rejected",
            ErrorKind::CallbackFailed => "callback_failed",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Timeout => "timeout",
            ErrorKind::AlreadyShutdown => "already_shutdown",
            ErrorKind::Internal => "internal",
        }
    }

    /// Parses a canonical name; `None` for anything else.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Baton error: a kind, a message that names what was wrong, and optionally the host's own
/// error object (kept opaque so the core never needs to know what a Python exception is).
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    payload: Option<Arc<dyn Any + Send + Sync>>,
    exception_type: Option<Arc<str>>,
    detail: Option<serde_json::Value>,
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), payload: None, exception_type: None, detail: None }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn callback_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CallbackFailed, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn already_shutdown() -> Self {
        Self::new(ErrorKind::AlreadyShutdown, "the runtime has been shut down")
    }

    /// Attaches the host's own error object; bindings downcast it to re-raise the original.
    pub fn with_payload(mut self, payload: Arc<dyn Any + Send + Sync>) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Records the host language's type name of the original error (`exception.type`).
    pub fn with_exception_type(mut self, name: impl Into<Arc<str>>) -> Self {
        self.exception_type = Some(name.into());
        self
    }
    /// Structured detail, e.g. `{"guardrail", "reason"}` for `guardrail_rejected`.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
    pub fn detail(&self) -> Option<&serde_json::Value> {
        self.detail.as_ref()
    }
    pub fn exception_type(&self) -> Option<&str> {
        self.exception_type.as_deref()
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn payload(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        self.payload.as_ref()
    }

    /// The `{kind, message}` form every boundary uses.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"kind": self.kind.as_str(), "message": self.message})
    }

    /// Turns a caught panic into an `internal` error carrying the panic message.
    pub(crate) fn from_panic(panic: Box<dyn Any + Send>) -> Self {
        let text = if let Some(s) = panic.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = panic.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        Error::internal(format!("panic: {text}"))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("has_payload", &self.payload.is_some())
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::invalid_argument(format!("invalid JSON: {e}"))
    }
}
