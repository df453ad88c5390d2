"""One module per CLI verb. Each defines ``add_parser(subparsers)`` and ``run(args) -> int``;
commands are thin shells over the engine and the storage interface."""
