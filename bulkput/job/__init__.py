"""One upload job: engine, multipart, journal, sync, shards, events, cluster."""
