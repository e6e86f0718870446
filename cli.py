"""glm command line: `python cli.py COMMAND ...` (see `python cli.py --help`; the commands are in glm.commands)."""

import sys

from glm.commands import main

if __name__ == "__main__":
    sys.exit(main(prog="cli.py"))
