//! The one error type of the core, and the status codes it maps to at the C ABI.
use std::fmt;

/// Status codes. Their numbers are the C ABI's `SWO_*` codes and are never renumbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    Ok = 0,
    NullArg = 1,
    InvalidArg = 2,
    OutOfRange = 3,
    Parse = 4,
    BadState = 5,
    NotFound = 6,
    Exists = 7,
    BufferTooSmall = 8,
    Reentrant = 9,
    Io = 10,
    Unsupported = 11,
    Panic = 12,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 13] = [
        Code::Ok,
        Code::NullArg,
        Code::InvalidArg,
        Code::OutOfRange,
        Code::Parse,
        Code::BadState,
        Code::NotFound,
        Code::Exists,
        Code::BufferTooSmall,
        Code::Reentrant,
        Code::Io,
        Code::Unsupported,
        Code::Panic,
    ];

    /// The C constant's name, e.g. `SWO_ERR_NULL_ARG`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "SWO_OK",
            Code::NullArg => "SWO_ERR_NULL_ARG",
            Code::InvalidArg => "SWO_ERR_INVALID_ARG",
            Code::OutOfRange => "SWO_ERR_OUT_OF_RANGE",
            Code::Parse => "SWO_ERR_PARSE",
            Code::BadState => "SWO_ERR_BAD_STATE",
            Code::NotFound => "SWO_ERR_NOT_FOUND",
            Code::Exists => "SWO_ERR_EXISTS",
            Code::BufferTooSmall => "SWO_ERR_BUFFER_TOO_SMALL",
            Code::Reentrant => "SWO_ERR_REENTRANT",
            Code::Io => "SWO_ERR_IO",
            Code::Unsupported => "SWO_ERR_UNSUPPORTED",
            Code::Panic => "SWO_ERR_PANIC",
        }
    }

    /// The code with this number, if there is one.
    pub fn from_u32(value: u32) -> Option<Code> {
        Code::ALL.get(value as usize).copied()
    }
}

/// A failure: a status code and a message for people (QEMU's wording where QEMU has one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
    pub fn null_arg(what: &str) -> Error {
        Error::new(Code::NullArg, format!("'{what}' must not be NULL"))
    }
    pub fn invalid_arg(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidArg, message)
    }
    pub fn out_of_range(message: impl Into<String>) -> Error {
        Error::new(Code::OutOfRange, message)
    }
    pub fn parse(message: impl Into<String>) -> Error {
        Error::new(Code::Parse, message)
    }
    pub fn bad_state(message: impl Into<String>) -> Error {
        Error::new(Code::BadState, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(Code::NotFound, message)
    }
    pub fn exists(message: impl Into<String>) -> Error {
        Error::new(Code::Exists, message)
    }
    pub fn reentrant(call: &str) -> Error {
        Error::new(
            Code::Reentrant,
            format!("{call} called from a callback of the same session; it would wait for itself"),
        )
    }
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(Code::Unsupported, message)
    }
    pub fn io(message: impl Into<String>) -> Error {
        Error::new(Code::Io, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}
