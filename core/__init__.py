"""Pieces every app shares: the domain errors. Imports nothing of the project."""
