import sys

from commerce_sync.cli import main

sys.exit(main())
