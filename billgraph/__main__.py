import sys

from billgraph.cli import main

sys.exit(main())
