"""``bulkput sync``: which local files to upload, which objects to skip or delete, and why.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``strategies``     pure per-key decisions (size+mtime, size-only, checksum, update,
                   ignore-existing), each docstring its truth table
``plan``           one joined pair -> one plan entry (upload, skip, delete, fail, resolve)
``run``            :class:`~bulkput.job.sync.run.SyncRun` (:func:`bulkput.api.sync_dir` for scripts)
=================  ==========================================================================

The listing it is planned against, the walk-vs-listing join and the formats of ``mtime`` and
MD5 are in :mod:`bulkput.job.listing`, which resume and resume from the store share.
"""
