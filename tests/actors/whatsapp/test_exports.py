"""The package's export list is complete and every name in it exists."""

from __future__ import annotations

import types

import actors.whatsapp as wa


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(wa).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.discard("annotations")
    assert public == set(wa.__all__)


def test_all_names_resolve() -> None:
    for name in wa.__all__:
        assert getattr(wa, name) is not None


def test_importing_the_package_does_not_import_neonize() -> None:
    import subprocess
    import sys

    code = "import sys, actors.whatsapp; print('neonize' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
