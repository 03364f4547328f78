"""The URLs the web layer hands out: a salon's connect page, and the ways back to YClients.

One module for them so that route modules, the composition root (the demo salon's link) and
the pages share one definition without importing each other. (``config/_urls.py`` is about
something else: keeping passwords in configured URLs out of logs.)
"""

from __future__ import annotations

from urllib.parse import urlencode

from storage import Company

#: Path of the connect page (``GET``); its query carries the connect token.
CONNECT_PATH = "/marketplace/connect"
#: YClients itself: the way back when the salon is not known.
YCLIENTS_RETURN_URL = "https://yclients.com/"
#: The salon's page of the YClients marketplace (where its admin installed us): the way back
#: from the connect page's success state and from our error pages.
YCLIENTS_SALON_APPSTORE_URL = "https://yclients.com/appstore/{salon_id}"


def connect_url(token: str, company: Company) -> str:
    """The connect page's path and query for ``company`` with its connect ``token`` (relative:
    prefix ``settings.public_base_url`` for a link that leaves the server)."""
    query = urlencode({"token": token, "company": company.id, "salon": company.yclients_id})
    return f"{CONNECT_PATH}?{query}"


def yclients_return_url(salon_id: int | None) -> str:
    """Where "back to YClients" leads: the salon's marketplace page, or YClients itself."""
    if salon_id is None:
        return YCLIENTS_RETURN_URL
    return YCLIENTS_SALON_APPSTORE_URL.format(salon_id=int(salon_id))
