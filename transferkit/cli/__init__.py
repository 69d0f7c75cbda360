"""transferkit.cli"""
