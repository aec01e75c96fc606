"""``python -m course_utils.data build [--out DIR]`` or ``check`` (see ``cli.main``)."""

import sys

from course_utils.data.cli import main

if __name__ == "__main__":
    sys.exit(main())
