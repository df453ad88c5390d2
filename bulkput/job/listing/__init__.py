"""A store's listing, and how what a job has is compared with it (sync, a resumed job's journal
checked against the store, a shard skipping what the store holds).

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``pages``          one listing read in chunks, each chunk under the job's retry policy
``join``           merge-joins in constant memory: :func:`~bulkput.job.listing.join.join_listing`
                   (any key-sorted stream against a listing) and sync's walk-vs-listing join
``formats``        rclone's ``mtime`` metadata, ``Last-Modified`` dates, the MD5 in an ETag
=================  ==========================================================================

This package file imports nothing, so importing one of them does not pull in the others.
"""
