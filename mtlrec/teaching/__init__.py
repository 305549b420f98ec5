"""Teaching aids: the live synthetic lab (lab), the equations with the user's numbers (formulas), how candidate labels move together (correlation)."""
