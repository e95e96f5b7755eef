"""Usage metering: pod and volume intervals from the cluster, daily rollups, the usage API."""
