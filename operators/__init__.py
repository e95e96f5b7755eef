"""kopf operators that converge the cluster to Sandlåda's custom resources."""
