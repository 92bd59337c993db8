"""Seeing a network: line-by-line summaries, diagrams, and the ``neurlink`` command line."""

from .graph import LineGraph as LineGraph
from .graph import graph as graph
from .summary import Summary as Summary
from .summary import SummaryRow as SummaryRow
from .summary import summary as summary
