//! C ABI: engine (filled by its issue).
