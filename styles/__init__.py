"""Textual CSS for dockui (shipped as package data)."""
