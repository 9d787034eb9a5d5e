"""``python -m walloc_cli``: the same entry point as the ``walloc`` console script."""

from walloc_cli.cli.app import main

if __name__ == "__main__":
    main()
