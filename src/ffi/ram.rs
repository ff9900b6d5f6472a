//! C ABI: ram (filled by its issue).
