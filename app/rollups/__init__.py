"""Counts per moment and period that insights read instead of the touchpoints.

Writers append narrow, signed count deltas in their own transaction; a background folder
moves committed deltas into the rollups; readers add the rollups and the deltas not yet
folded, in one snapshot. No request updates a row that another request also updates.
"""
