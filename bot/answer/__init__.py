"""Answers: the one answer model every channel renders, and the composers that build it."""
