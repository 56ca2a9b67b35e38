"""Analyses of the stored actions: counts, active users, sessions, funnels, retention, paths.

Each takes a store (``openhouse_cli.store``) and the filter keywords of
``query.query_actions``, and returns plain data in the JSON shapes the
commands print. No click here: ``cli/analytics.py`` parses and renders.
"""

from .buckets import UNITS, Clock
from .counts import DimensionError, SeriesTooLong, active, count, parse_dimensions, stats
from .funnels import ORDERS, funnel
from .paths import paths
from .retention import retention
from .sessions import sessions, timeline
from .steps import Step, StepError, parse_duration, parse_step

__all__ = ["Clock", "DimensionError", "ORDERS", "SeriesTooLong", "Step", "StepError", "UNITS", "active", "count",
           "funnel", "parse_dimensions", "parse_duration", "parse_step", "paths", "retention",
           "sessions", "stats", "timeline"]
