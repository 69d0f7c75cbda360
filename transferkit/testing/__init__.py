"""transferkit.testing"""
