"""`python -m modeling_twrvae ...` is the `twrvae` command."""

import sys

from .commands.cli import main

sys.exit(main())
