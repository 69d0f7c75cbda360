"""transferkit: transfer learning for NLP."""
