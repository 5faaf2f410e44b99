"""The safety layer: every user message is checked for a crisis before retrieval, and a crisis is answered with a
calm message and public help lines instead of career advice."""

from bot.safety.detector import CrisisSignal, detect_crisis, normalize

__all__ = ["CrisisSignal", "detect_crisis", "normalize"]
