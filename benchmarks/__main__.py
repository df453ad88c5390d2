"""``python -m benchmarks [--quick] [--scenario NAME ...] [--runs N]``: the benchmark harness."""

import sys

from bulkput.bench.harness import main

sys.exit(main(prog="python -m benchmarks"))
