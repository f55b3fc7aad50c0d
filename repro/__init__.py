"""repro: turn production postmortems into reproductions that run as pytest tests.

Data flows down the layers: hosts -> faults -> probes -> history -> checks -> report.
See ../shared/DESIGN.md and README.md.
"""

__version__ = "0.1.0"
