"""WhatsApp sessions: one interface, a simulated and a neonize backend, session hosts.

Start with :func:`open_gateway`; it gives a :class:`WhatsAppGateway` whose
``open_session(company_id)`` makes a :class:`WhatsAppSession` (``start`` / ``events`` /
``send_text`` / ``pair_phone`` / ``logout`` / ``stop``). Events are the frozen records below;
errors are :class:`WhatsAppError` and its subclasses. :class:`SimulatedWorld` is the
controllable fake WhatsApp (a phone per company) for development, demos and tests.
"""

from ._errors import BackendUnavailable as BackendUnavailable
from ._errors import CommandTimeout as CommandTimeout
from ._errors import HostCrashed as HostCrashed
from ._errors import NeonizeMissing as NeonizeMissing
from ._errors import OutcomeUnknown as OutcomeUnknown
from ._errors import PairingUnavailable as PairingUnavailable
from ._errors import SendFailed as SendFailed
from ._errors import SessionNotConnected as SessionNotConnected
from ._errors import WhatsAppError as WhatsAppError
from ._events import MESSAGE_KINDS as MESSAGE_KINDS
from ._events import Connected as Connected
from ._events import ConnectFailed as ConnectFailed
from ._events import Disconnected as Disconnected
from ._events import InboundMessage as InboundMessage
from ._events import KeepAliveRestored as KeepAliveRestored
from ._events import KeepAliveTimeout as KeepAliveTimeout
from ._events import Linked as Linked
from ._events import LoggedOut as LoggedOut
from ._events import PairingFailed as PairingFailed
from ._events import QrCode as QrCode
from ._events import SessionEvent as SessionEvent
from ._events import SessionLost as SessionLost
from ._events import StaffMessage as StaffMessage
from ._events import StreamReplaced as StreamReplaced
from ._events import TemporaryBan as TemporaryBan
from ._events import event_from_dict as event_from_dict
from ._events import event_to_dict as event_to_dict
from ._gateway import open_gateway as open_gateway
from ._hosted import HostedGateway as HostedGateway
from ._hosted import HostedSession as HostedSession
from ._ids import fake_qr_code as fake_qr_code
from ._ids import new_message_id as new_message_id
from ._neonize import NeonizeGateway as NeonizeGateway
from ._neonize import NeonizeSession as NeonizeSession
from ._neonize import check_neonize as check_neonize
from ._neonize import map_event as map_event
from ._session import GatewaySnapshot as GatewaySnapshot
from ._session import HostSnapshot as HostSnapshot
from ._session import SessionSnapshot as SessionSnapshot
from ._session import SessionState as SessionState
from ._session import WhatsAppGateway as WhatsAppGateway
from ._session import WhatsAppSession as WhatsAppSession
from ._session import next_state as next_state
from ._simulated import SimulatedGateway as SimulatedGateway
from ._simulated import SimulatedSession as SimulatedSession
from ._world import DeliveredMessage as DeliveredMessage
from ._world import SimulatedWorld as SimulatedWorld
from ._world import WorldError as WorldError
from ._world_server import serve_world as serve_world

__all__ = [
    "MESSAGE_KINDS",
    "BackendUnavailable",
    "CommandTimeout",
    "ConnectFailed",
    "Connected",
    "DeliveredMessage",
    "Disconnected",
    "GatewaySnapshot",
    "HostCrashed",
    "HostSnapshot",
    "HostedGateway",
    "HostedSession",
    "InboundMessage",
    "KeepAliveRestored",
    "KeepAliveTimeout",
    "Linked",
    "LoggedOut",
    "NeonizeGateway",
    "NeonizeMissing",
    "NeonizeSession",
    "OutcomeUnknown",
    "PairingFailed",
    "PairingUnavailable",
    "QrCode",
    "SendFailed",
    "SessionEvent",
    "SessionLost",
    "SessionNotConnected",
    "SessionSnapshot",
    "SessionState",
    "SimulatedGateway",
    "SimulatedSession",
    "SimulatedWorld",
    "StaffMessage",
    "StreamReplaced",
    "TemporaryBan",
    "WhatsAppError",
    "WhatsAppGateway",
    "WhatsAppSession",
    "WorldError",
    "check_neonize",
    "event_from_dict",
    "event_to_dict",
    "fake_qr_code",
    "map_event",
    "new_message_id",
    "next_state",
    "open_gateway",
    "serve_world",
]
