"""transferkit.evaluation"""
