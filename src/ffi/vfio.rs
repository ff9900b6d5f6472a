//! C ABI: vfio (filled by its issue).
