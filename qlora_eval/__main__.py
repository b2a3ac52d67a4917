"""``python -m qlora_eval COMMAND ...``: the same as the ``qlora-eval`` console script."""

import sys

from qlora_eval.cli.main import main

sys.exit(main())
