import sys

from bulkput.cli import main

sys.exit(main())
