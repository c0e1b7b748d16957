//! Layer tars: unpack untrusted tars into overlay-ready directories, and write directories back as tars.
