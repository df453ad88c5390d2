"""How ``put`` and ``sync`` start (logging set up) and end when their run raises: one line on
standard error naming the verb, and the exit status.

=======================================  ==============================================  ========
raised out of the verb's run             the line                                        exit
=======================================  ==============================================  ========
``UsageError`` (an option, a source)     ``bulkput VERB: <one line>``                    2
another ``BulkputError`` (journal, ...)  ``bulkput VERB: aborted: <one line>``           its own,
                                                                                         3 for 1
``KeyboardInterrupt``                    ``bulkput VERB: interrupted``                   130
any other exception (a bug)              ``bulkput VERB: aborted: unexpected ... (at``   3
=======================================  ==============================================  ========

A bug's traceback is logged at debug level (shown by ``--debug``), never printed otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from bulkput.errors import BulkputError, UnexpectedError, UsageError
from bulkput.redact import ScrubbingFilter


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    if args.verbose >= 2 or args.debug:
        level = logging.DEBUG
    logger = logging.getLogger("bulkput")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(ScrubbingFilter())  # no secret in a log line, whoever wrote it
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def run_verb(verb: str, args: argparse.Namespace, body: Callable[[argparse.Namespace], int]) -> int:
    """``body(args)``'s exit status, logging set up first; what it raises ends as the module's
    table says."""
    from bulkput.job.summary import fatal_exit_code

    setup_logging(args)
    try:
        return body(args)
    except UsageError as error:
        sys.stderr.write(f"bulkput {verb}: {error.one_line()}\n")
        return 2
    except BulkputError as error:  # job-fatal before the job ran (journal, endpoint, ...)
        sys.stderr.write(f"bulkput {verb}: aborted: {error.one_line()}\n")
        return fatal_exit_code(error)
    except KeyboardInterrupt:
        sys.stderr.write(f"bulkput {verb}: interrupted\n")
        return 130
    except Exception as error:  # a bug: one line and exit 3, never a silent 0
        wrapped = UnexpectedError.during(f"bulkput {verb}", error)
        sys.stderr.write(f"bulkput {verb}: aborted: {wrapped.one_line()}\n")
        return wrapped.exit_code
