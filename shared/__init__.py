"""hullwatch core: cloud-agnostic scanning, posture and runtime logic.

This package never imports ``azure.functions`` or ``aws_lambda_powertools``; the
platform adapters in ``functions/`` and ``lambdas/`` depend on it, never the reverse.
"""

__version__ = "0.1.0"
