"""`python -m modeling_twrvae ...` is the `twrvae` command."""

import sys

from .cli import main

sys.exit(main())
