"""`python -m selfinstruct` and the `selfinstruct` command: Ctrl+C while the command line is still
loading exits 130 quietly, as it does later."""

import sys


def main() -> None:
    try:
        from selfinstruct.cli import app

        app(prog_name="selfinstruct")  # commands handle Ctrl+C themselves; this covers building them
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
