"""Models: encoders, cores, decoders, action heads and actor-critics (Sample Factory's ``model`` package)."""
