"""Costs: versioned price lists, monthly cost reports and tenant budgets (issue 7)."""
