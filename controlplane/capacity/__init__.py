"""GPU capacity ledger: what the cluster offers and what approvals have reserved."""
