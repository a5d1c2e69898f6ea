//! palisade-client: see the crate description in Cargo.toml.
