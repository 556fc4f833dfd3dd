import sys

from sparkml_jobs.cli import main

sys.exit(main())
