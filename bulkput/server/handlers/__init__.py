"""The store's operations, one module per resource: buckets (and the account's bucket list),
objects, multipart uploads. Each handler takes the server and the parsed call, and returns
the answer or raises :class:`~bulkput.server.services.ServeError`; routing is in
:mod:`bulkput.server.routing`."""
