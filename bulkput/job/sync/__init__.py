"""``bulkput sync``: which local files to upload, which objects to skip or delete, and why.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``formats``        rclone's ``mtime`` metadata, ``Last-Modified`` dates, the MD5 in an ETag
``strategies``     pure per-key decisions (size+mtime, size-only, checksum, update,
                   ignore-existing), each docstring its truth table
``join``           merge-joins in constant memory: :func:`~bulkput.job.sync.join.join_listing`
                   (any key-sorted stream against a listing) and sync's walk-vs-listing join
``plan``           one joined pair -> one plan entry (upload, skip, delete, fail, resolve)
``run``            :class:`~bulkput.job.sync.run.SyncRun` (:func:`bulkput.api.sync_dir` for scripts)
=================  ==========================================================================

This package file imports nothing, so importing the join (from the engine or the journal)
does not pull in the whole sync run.
"""
