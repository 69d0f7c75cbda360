"""Strategies defined outside the package, as a third party would write them (see ``consistency``)."""
