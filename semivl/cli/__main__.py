"""``python -m semivl.cli`` (what ``torchrun ... -m semivl.cli train`` runs)."""

import sys

from semivl.cli import main

sys.exit(main())
