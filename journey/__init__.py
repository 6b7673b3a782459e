"""journey: follow a packet through the Linux kernel, stage by stage, on a real host's state.

The package is layered: ``journey.model`` (pure values) <- ``journey.snapshot`` (collection,
file format, parsers) and ``journey.engine`` (the simulation) <- ``journey.render`` <- the CLI and
the Textual TUI. Nothing below the front ends imports textual.
"""

__version__ = "0.1.0"
