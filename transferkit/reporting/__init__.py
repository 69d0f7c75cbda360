"""transferkit.reporting"""
