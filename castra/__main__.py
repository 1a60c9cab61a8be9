"""`python -m castra`: the same as the `castra` command."""

from castra.cli import main

if __name__ == "__main__":
    main()
