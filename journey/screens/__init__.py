"""The TUI's screens, one thin module each; state lives in ``journey.app.JourneyApp``."""

from journey.screens.dialogs import PathPrompt
from journey.screens.help import HelpScreen
from journey.screens.host import HostScreen
from journey.screens.journey_screen import JourneyScreen
from journey.screens.packet import PacketScreen
from journey.screens.path_map import PathMapScreen
from journey.screens.rules import RulesScreen

__all__ = [
    "HelpScreen",
    "HostScreen",
    "JourneyScreen",
    "PacketScreen",
    "PathMapScreen",
    "PathPrompt",
    "RulesScreen",
]
