"""``python -m actors.whatsapp.host``: run a session host (see :mod:`._host`)."""

from __future__ import annotations

from ._host import main

if __name__ == "__main__":
    main()
