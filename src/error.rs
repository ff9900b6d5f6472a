//! The one error type of the core, and the status codes it maps to at the C ABI.
use std::fmt;

crate::abi_enum::abi_enum! {
    /// Status codes. Their numbers are the C ABI's `SWO_*` codes and are never renumbered;
    /// their names the C constants' (`SWO_ERR_NULL_ARG`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Code {
        Ok = 0 => "SWO_OK",
        NullArg = 1 => "SWO_ERR_NULL_ARG",
        InvalidArg = 2 => "SWO_ERR_INVALID_ARG",
        OutOfRange = 3 => "SWO_ERR_OUT_OF_RANGE",
        Parse = 4 => "SWO_ERR_PARSE",
        BadState = 5 => "SWO_ERR_BAD_STATE",
        NotFound = 6 => "SWO_ERR_NOT_FOUND",
        Exists = 7 => "SWO_ERR_EXISTS",
        BufferTooSmall = 8 => "SWO_ERR_BUFFER_TOO_SMALL",
        Reentrant = 9 => "SWO_ERR_REENTRANT",
        Io = 10 => "SWO_ERR_IO",
        Unsupported = 11 => "SWO_ERR_UNSUPPORTED",
        Panic = 12 => "SWO_ERR_PANIC",
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
