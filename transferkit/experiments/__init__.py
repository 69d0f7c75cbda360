"""transferkit.experiments"""
