"""Renderers: text, JSON, Markdown and rich views of model values. No textual."""
