#!/usr/bin/env python3
"""``benchmarks/run.py [--quick] [--scenario NAME ...] [--runs N]``: the benchmark harness.

The same as ``python -m benchmarks``; runnable from any folder.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import main

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/run.py"))
