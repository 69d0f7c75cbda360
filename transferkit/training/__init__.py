"""transferkit.training"""
