"""`python -m selfinstruct` and the `selfinstruct` command: Ctrl+C while the command line is still
loading exits 130 quietly, as it does later."""

import sys


def main() -> None:
    try:
        from .cli import app
    except KeyboardInterrupt:
        sys.exit(130)
    app(prog_name="selfinstruct")


if __name__ == "__main__":
    main()
