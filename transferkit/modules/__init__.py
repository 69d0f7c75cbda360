"""transferkit.modules"""
