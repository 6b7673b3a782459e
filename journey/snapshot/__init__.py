"""Host snapshot: live collection, file format, importers and parsers of raw tool output."""
