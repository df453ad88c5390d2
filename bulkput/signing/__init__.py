"""Request signing: one module per algorithm behind :class:`bulkput.signing.base.Signer`."""
