"""``python -m benchmarks [--quick] [--scenario NAME ...] [--runs N]``: the benchmark harness."""

import sys

from benchmarks.harness import main

sys.exit(main(prog="python -m benchmarks"))
