"""The simulation engine: walks a packet through the kernel's path on a HostSnapshot and returns data. Pure: no I/O, no printing, no textual or rich."""
