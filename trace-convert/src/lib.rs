//! Trace file readers, merger and writers.
