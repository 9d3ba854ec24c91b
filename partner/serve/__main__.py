import sys

from partner.cli.serve import main

sys.exit(main())
