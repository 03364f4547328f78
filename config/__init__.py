"""Settings: one frozen object built from the environment, validated at start."""

from ._errors import ConfigError as ConfigError
from ._settings import AssistantPolicy as AssistantPolicy
from ._settings import Environment as Environment
from ._settings import LlmSettings as LlmSettings
from ._settings import QrPolicy as QrPolicy
from ._settings import RateLimit as RateLimit
from ._settings import SendPacing as SendPacing
from ._settings import Settings as Settings
from ._settings import SupervisorLimits as SupervisorLimits
from ._settings import WhatsAppProvider as WhatsAppProvider
from ._settings import WhatsAppStore as WhatsAppStore
from ._settings import settings_from_env as settings_from_env
from ._urls import without_passwords as without_passwords

__all__ = [
    "AssistantPolicy",
    "ConfigError",
    "Environment",
    "LlmSettings",
    "QrPolicy",
    "RateLimit",
    "SendPacing",
    "Settings",
    "SupervisorLimits",
    "WhatsAppProvider",
    "WhatsAppStore",
    "settings_from_env",
    "without_passwords",
]
