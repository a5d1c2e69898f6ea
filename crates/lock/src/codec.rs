//! Encoding helper shared by commands and snapshots.
//!
//! Both are a format version byte followed by postcard. [`to_versioned_vec`] writes the version
//! and the body into one buffer sized for the usual case, instead of encoding the body into a
//! vector of its own (growing from nothing) and copying it behind the version.

use postcard::ser_flavors::Flavor;
use serde::Serialize;

/// A postcard output into a vector that already holds the format version byte.
struct VersionedVec(Vec<u8>);

impl Flavor for VersionedVec {
    type Output = Vec<u8>;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// `version` followed by the postcard encoding of `value`, in a buffer of `capacity` bytes to
/// start with (it grows if needed).
pub(crate) fn to_versioned_vec<T: Serialize + ?Sized>(
    version: u8,
    value: &T,
    capacity: usize,
) -> postcard::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity.max(1));
    out.push(version);
    postcard::serialize_with_flavor(value, VersionedVec(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_then_the_plain_encoding() {
        for len in [0usize, 3, 200] {
            let value = (300u64, "tail".to_string(), vec![7u8; len]);
            let versioned = super::to_versioned_vec(9, &value, 4).unwrap();
            assert_eq!(versioned[0], 9);
            assert_eq!(&versioned[1..], &postcard::to_allocvec(&value).unwrap()[..]);
        }
    }
}
