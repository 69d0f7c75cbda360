"""transferkit.serving"""
