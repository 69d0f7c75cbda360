"""transferkit.strategies"""
