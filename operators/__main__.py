"""``python -m operators``: run the Sandlåda operators against ``KUBECONFIG`` (or in-cluster).

Equivalent to ``kopf run --all-namespaces --standalone -m operators.tenant -m
operators.notebook -m operators.culler``, with the options taken from `OperatorConfig`
(``SANDLADA_OPERATOR_*``).
"""

from __future__ import annotations

import logging

import kopf

import operators.culler  # registers the idle culler's timer on Notebooks
import operators.notebook  # registers the Notebook handlers
import operators.tenant  # noqa: F401  (registers the handlers)
from operators.config import OperatorConfig


def main() -> None:
    """Run until SIGINT/SIGTERM."""
    config = OperatorConfig()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One INFO line per handled child event is most of the operator's CPU at bulk.
    logging.getLogger("kopf.objects").setLevel(config.kopf_log_level)
    kopf.run(
        clusterwide=True,
        standalone=config.standalone,
        liveness_endpoint=config.health_url,
    )


if __name__ == "__main__":
    main()
