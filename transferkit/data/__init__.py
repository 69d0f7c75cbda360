"""transferkit.data"""
