//! Terminal timeline viewer.
