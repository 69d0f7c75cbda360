"""transferkit.tasks"""
