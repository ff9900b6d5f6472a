//! C ABI: report (filled by its issue).
