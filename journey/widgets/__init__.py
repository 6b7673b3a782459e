"""The TUI's widgets, named for what they show. Depend on textual, rich and the pure model."""
