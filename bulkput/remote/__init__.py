"""Talking to a store: targets, credentials, signing, dialects, HTTP transport, retries."""
