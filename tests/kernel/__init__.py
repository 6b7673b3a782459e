"""Kernel differential suite: scenarios built in namespaces, packets sent for real, compared with
``journey.engine.simulate``."""
