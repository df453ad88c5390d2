"""Local input: directory walks, manifests, filters, digests, read placement."""
