"""``python -m transferkit``: the command line, so launchers that take a module run it unchanged.

``accelerate launch -m transferkit train ...`` (or ``torchrun -m transferkit train ...``) starts one such
process per device; see README "More than one machine".
"""

from transferkit.cli.main import main

if __name__ == "__main__":
    main()
