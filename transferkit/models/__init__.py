"""transferkit.models"""
