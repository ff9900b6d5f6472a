//! `query-migrate` JSON, `info migrate` text (issue: monitor interface).
