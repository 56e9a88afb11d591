"""Fault injection: every sub-command under bad input (a table), signals and damage."""
