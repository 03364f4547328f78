"""A fake YClients for tests and local runs: partner endpoints, booking API, limits, faults.

    async with running_fake_yclients() as fake:
        client = YClientsClient(fake.base_url, PARTNER_TOKEN)
        fake.fail("/api/v1/book_record/*", 503, times=1, after_handler=True)
        ...
        assert fake.max_requests_in_window(1.0) <= 5

Salons from a catalog file instead of the three built-in ones::

    async with running_fake_yclients(catalog="catalog.example.json") as fake:
        ...
        assert fake.record_by_key(555100, "rustam-haircut")["deleted"]

Local runs: ``python -m tests.fakes.yclients [--catalog FILE] --port 8081``.
"""

from ._app import ACCEPT as ACCEPT
from ._app import APPLICATION_ID as APPLICATION_ID
from ._app import PARTNER_TOKEN as PARTNER_TOKEN
from ._app import USER_TOKEN as USER_TOKEN
from ._app import YCLIENTS_LIMITS as YCLIENTS_LIMITS
from ._app import FakeYClients as FakeYClients
from ._app import SentWebhook as SentWebhook
from ._catalog import CatalogError as CatalogError
from ._catalog import load_catalog as load_catalog
from ._data import BORODA_ID as BORODA_ID
from ._data import LOTOS_ID as LOTOS_ID
from ._data import ORCHID_ID as ORCHID_ID
from ._data import FakeSalon as FakeSalon
from ._data import seed_salons as seed_salons
from ._server import running_fake_yclients as running_fake_yclients
from ._server import serve_fake_yclients as serve_fake_yclients
from ._wire import Fault as Fault
from ._wire import RecordedRequest as RecordedRequest

__all__ = [
    "ACCEPT",
    "APPLICATION_ID",
    "BORODA_ID",
    "LOTOS_ID",
    "ORCHID_ID",
    "PARTNER_TOKEN",
    "USER_TOKEN",
    "YCLIENTS_LIMITS",
    "CatalogError",
    "FakeSalon",
    "FakeYClients",
    "Fault",
    "RecordedRequest",
    "SentWebhook",
    "load_catalog",
    "running_fake_yclients",
    "seed_salons",
    "serve_fake_yclients",
]
