"""``python -m warpinv``: the ``warpinv`` command line."""
from warpinv.cli import main

if __name__ == "__main__":  # importing the module (doctest collection) runs nothing
    raise SystemExit(main())
