"""Privacy: erasure of a person across every domain."""
