"""One module per ``journey`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
